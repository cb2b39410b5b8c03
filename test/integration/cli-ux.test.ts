/**
 * The command line as people and scripts use it, with real processes and
 * sockets: lifecycle (start --detach, wait, id while starting, stop), data in
 * and out (stdin, files, binary, JSON, URLs, multiaddrs, listen --exec),
 * errors that say what to do, logs, completion.
 */

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { BIN, makeHome, removeHome, runCli, runJson } from '../helpers/cli.ts'
import { VERSION } from '../../src/cli/main.ts'

const LOOPBACK = ['--listen', '/ip4/127.0.0.1/tcp/0']

/** Run the CLI with `input` on stdin */
async function runWithInput (args: string[], input: Buffer | string): Promise<{ code: number | null, stdout: Buffer, stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  const out: Buffer[] = []
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => out.push(d))
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.end(input)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  return { code, stdout: Buffer.concat(out), stderr }
}

function assertOneActionableLine (stderr: string): void {
  const lines = stderr.trim().split('\n')
  assert.equal(lines.length, 1, `one line on stderr, got:\n${stderr}`)
  assert.match(lines[0]!, /^agentnet: /)
  assert.doesNotMatch(stderr, /params\.|All promises were rejected|Missing newline|EEXIST|\n\s+at /)
}

describe('usage, completion, version', () => {
  it('--version matches package.json', async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    assert.equal(VERSION, pkg.version)
    assert.equal((await runCli(['--version'])).stdout.trim(), pkg.version)
  })

  it('a mistyped command is one line with a suggestion, exit 2', async () => {
    const typo = await runCli(['sned', 'x'])
    assert.equal(typo.code, 2)
    assertOneActionableLine(typo.stderr)
    assert.match(typo.stderr, /did you mean send\?/)
    const sub = await runCli(['trust', 'aprove', 'x'])
    assert.equal(sub.code, 2)
    assert.match(sub.stderr, /did you mean approve\?/)
    const option = await runCli(['send', 'a', 'b', 'c', '--jsn'])
    assert.equal(option.code, 2)
    assertOneActionableLine(option.stderr)
    assert.match(option.stderr, /--json/)
    const missing = await runCli(['send', '--json'])
    assert.equal(missing.code, 2)
    assertOneActionableLine(missing.stderr)
    assert.equal(JSON.parse(missing.stdout).error.code, 'UsageError')
  })

  it('prints completion scripts for bash, zsh and fish', async () => {
    const bash = await runCli(['completion', 'bash'])
    assert.equal(bash.code, 0)
    assert.match(bash.stdout, /complete -o default -F _agentnet agentnet/)
    assert.match(bash.stdout, /"trust"\) words="request pending approve reject revoke list/)
    const syntax = spawn('bash', ['-n'], { stdio: ['pipe', 'ignore', 'pipe'] })
    syntax.stdin.end(bash.stdout)
    assert.equal(await new Promise(resolve => syntax.on('close', resolve)), 0, 'bash -n accepts the script')
    assert.match((await runCli(['completion', 'zsh'])).stdout, /^#compdef agentnet/)
    const fish = await runCli(['completion', 'fish'])
    assert.match(fish.stdout, /complete -c agentnet -n '__fish_use_subcommand' -a send/)
    assert.equal((await runCli(['completion', 'tcsh'])).code, 2)
  })
})

describe('lifecycle: start --detach, wait, id while starting, stop', () => {
  let home: string
  before(async () => { home = await makeHome('an-life-') })
  after(async () => {
    await runCli(['stop', '--home', home])
    await removeHome(home)
  })

  it('id while the node starts never prints empty addresses with exit 0', async () => {
    const child = spawn(process.execPath, [BIN, 'start', '--home', home, ...LOOPBACK], { stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr.resume()
    // as soon as `start` announced itself, before libp2p is loaded
    while (!existsSync(join(home, 'node.starting')) && !existsSync(join(home, 'agentnet.sock'))) {
      await new Promise(resolve => setTimeout(resolve, 5))
    }
    const id = await runCli(['id', '--home', home, '--json'])
    if (id.code === 0) {
      assert.ok(JSON.parse(id.stdout).addresses.length > 0, `addresses while starting: ${id.stdout}`)
    } else {
      assert.match(id.stderr, /starting/)
    }
    const ready = await runJson<{ ready: boolean, listening: boolean }>(['wait', '--home', home, '--timeout', '30'])
    assert.equal(ready.ready, true)
    const stopped = await runJson<{ stopped: boolean }>(['stop', '--home', home])
    assert.equal(stopped.stopped, true)
    assert.equal(await new Promise(resolve => child.exitCode != null ? resolve(child.exitCode) : child.on('close', resolve)), 0)
    assert.equal(existsSync(join(home, 'agentnet.sock')), false)
    assert.equal(existsSync(join(home, 'node.lock')), false)
  })

  it('start --detach returns once listening, logs JSON milestones to the home; stop waits for the exit', async () => {
    const started = await runJson<{ peerId: string, addresses: string[], pid: number, log: string }>(['start', '--detach', '--home', home, ...LOOPBACK])
    assert.ok(started.addresses.length > 0)
    assert.equal(started.log, join(home, 'agentnet.log'))
    const again = await runCli(['start', '--detach', '--home', home, ...LOOPBACK])
    assert.equal(again.code, 1)
    assertOneActionableLine(again.stderr)
    assert.match(again.stderr, /already running/)
    const stopped = await runJson<{ stopped: boolean, pid: number }>(['stop', '--home', home])
    assert.equal(stopped.pid, started.pid)
    assert.throws(() => process.kill(started.pid, 0))
    const log = (await readFile(started.log, 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { milestone?: string, msg: string })
    assert.ok(log.some(l => l.milestone === 'listening'))
    assert.ok(log.some(l => l.msg === 'node stopped'))
    const none = await runJson<{ stopped: boolean, running: boolean }>(['stop', '--home', home])
    assert.deepEqual(none, { stopped: false, running: false })
  })

  it('with a bootstrap peer, start --detach and wait return once the DHT is joined; the log has the milestones', async () => {
    const boot = await makeHome('an-boot-')
    try {
      const config = join(boot, 'server.json')
      await writeFile(config, JSON.stringify({ dht: { mode: 'server' } }))
      const a = await runJson<{ addresses: string[] }>(['start', '--detach', '--home', boot, ...LOOPBACK, '--config', config])
      await runJson(['start', '--detach', '--home', home, ...LOOPBACK, '--bootstrap', a.addresses[0]!, '--config', config])
      const state = await runJson<{ ready: boolean, bootstrap: { configured: number, connected: number }, dht: string }>(['wait', '--home', home])
      assert.deepEqual([state.ready, state.bootstrap, state.dht], [true, { configured: 1, connected: 1 }, 'ready'])
      await runJson(['stop', '--home', home])
      const milestones = (await readFile(join(home, 'agentnet.log'), 'utf8')).trim().split('\n').map(l => (JSON.parse(l) as { milestone?: string }).milestone)
      for (const m of ['listening', 'bootstrap-connected', 'dht-ready']) assert.ok(milestones.includes(m), `${m} in ${milestones.join(',')}`)
    } finally {
      await runCli(['stop', '--home', home])
      await runCli(['stop', '--home', boot])
      await removeHome(boot)
    }
  })

  it('a node that cannot start says why, with --detach too', async () => {
    const bad = await runCli(['start', '--detach', '--home', home, '--listen', 'not-a-multiaddr'])
    assert.equal(bad.code, 1)
    assertOneActionableLine(bad.stderr)
    assert.match(bad.stderr, /not a valid multiaddr/)
    const notReady = await runCli(['wait', '--home', home, '--timeout', '0.3'])
    assert.equal(notReady.code, 1)
    assertOneActionableLine(notReady.stderr)
  })

  it('on a terminal format the log is readable lines; --log-format json gives JSON', async () => {
    const child = spawn(process.execPath, [BIN, 'start', '--home', home, ...LOOPBACK, '--log-format', 'pretty'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    await runJson(['wait', '--home', home])
    await runJson(['stop', '--home', home])
    await new Promise(resolve => child.exitCode != null ? resolve(null) : child.on('close', resolve))
    assert.match(stderr, /^\d\d:\d\d:\d\d INFO {2}listening {2}peerId=12D3KooW\w+ addresses=\/ip4\/127\.0\.0\.1/m)
    assert.doesNotMatch(stderr, /^\{/m)
  })
})

describe('two nodes: errors people can act on, data in and out', () => {
  let homeA: string
  let homeB: string
  let peerA: string
  let addressA: string
  const listeners: Array<ReturnType<typeof spawn>> = []

  before(async () => {
    homeA = await makeHome('an-ux-a-')
    homeB = await makeHome('an-ux-b-')
    const a = await runJson<{ peerId: string, addresses: string[] }>(['start', '--detach', '--home', homeA, ...LOOPBACK])
    await runJson(['start', '--detach', '--home', homeB, ...LOOPBACK])
    peerA = a.peerId
    addressA = a.addresses[0]!
  })

  after(async () => {
    for (const l of listeners) l.kill()
    await runCli(['stop', '--home', homeA])
    await runCli(['stop', '--home', homeB])
    await removeHome(homeA)
    await removeHome(homeB)
  })

  async function listen (args: string[]): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'listen', ...args, '--home', homeA], { stdio: ['ignore', 'ignore', 'pipe'] })
    listeners.push(child)
    await new Promise<void>(resolve => child.stderr.on('data', (d: Buffer) => { if (d.toString().includes('listening on service')) resolve() }))
  }

  it('the first ping by multiaddr, then by peer ID, to a fresh peer succeeds', async () => {
    const first = await runJson<{ peerId: string }>(['ping', addressA, '--home', homeB])
    assert.equal(first.peerId, peerA)
    for (let i = 0; i < 3; i++) {
      assert.equal((await runJson<{ peerId: string }>(['ping', peerA, '--home', homeB])).peerId, peerA)
    }
  })

  it('an untrusted send says how to get trust; an unreachable peer is PeerUnreachable', async () => {
    await listen(['echo', '--echo'])
    const untrusted = await runCli(['send', peerA, 'echo', 'hi', '--home', homeB, '--json'])
    assert.equal(untrusted.code, 1)
    assertOneActionableLine(untrusted.stderr)
    assert.match(untrusted.stderr, /agentnet trust request/)
    assert.equal(JSON.parse(untrusted.stdout).error.code, 'UntrustedPeer')

    const nobody = '12D3KooWCLMrLzLivZUYyGNWvKRW5mzrP3WUSYkngP8en26Zp6nr'
    for (const args of [['send', nobody, 'echo', 'x', '--timeout', '2'], ['ping', nobody], ['ping', '/ip4/127.0.0.1/tcp/1/p2p/' + nobody]]) {
      const result = await runCli([...args, '--home', homeB, '--json'])
      assert.equal(result.code, 1, args.join(' '))
      assertOneActionableLine(result.stderr)
      assert.equal(JSON.parse(result.stdout).error.code, 'PeerUnreachable', `${args.join(' ')}: ${result.stderr}`)
    }
    const badService = await runCli(['send', peerA, 'bad service!', 'x', '--home', homeB])
    assert.equal(badService.code, 2)
    assertOneActionableLine(badService.stderr)
  })

  it('after an invite: stdin, files (binary too), JSON, agentnet:// URLs and multiaddrs', async () => {
    const code = (await runCli(['invite', 'create', '--home', homeA])).stdout.trim()
    assert.equal((await runJson<{ peerId: string }>(['invite', 'accept', code, '--home', homeB])).peerId, peerA)

    const fromStdin = await runWithInput(['send', peerA, 'echo', '-', '--home', homeB], 'line one\nline two\n')
    assert.equal(fromStdin.code, 0, fromStdin.stderr)
    assert.equal(fromStdin.stdout.toString(), 'line one\nline two\n')

    // high bytes only: random ASCII can spell an e-mail address by chance, which the guard would block
    const bytes = Buffer.from(randomBytes(64 * 1024).map(x => x | 0x80))
    bytes[0] = 0xff // not UTF-8: travels as bytes
    const file = join(homeB, 'blob.bin')
    await writeFile(file, bytes)
    const binary = await runWithInput(['send', peerA, 'echo', '--file', file, '--home', homeB], '')
    assert.equal(binary.code, 0, binary.stderr)
    assert.ok(binary.stdout.equals(bytes), 'binary round trip')
    const binaryStdin = await runWithInput(['send', peerA, 'echo', '-', '--home', homeB, '--json'], bytes)
    assert.equal(Buffer.from(JSON.parse(binaryStdin.stdout.toString()).bodyBase64, 'base64').equals(bytes), true)

    const json = await runJson<{ body: unknown }>(['send', peerA, 'echo', '{"a": [1, 2]}', '--json-body', '--home', homeB])
    assert.deepEqual(json.body, { a: [1, 2] })
    const notJson = await runCli(['send', peerA, 'echo', '{nope', '--json-body', '--home', homeB])
    assert.equal(notJson.code, 2)

    const url = await runJson<{ body: unknown }>(['send', `agentnet://${peerA}/echo`, 'by URL', '--home', homeB])
    assert.equal(url.body, 'by URL')
    const byAddress = await runJson<{ from: string, body: unknown }>(['send', addressA, 'echo', 'by multiaddr', '--home', homeB])
    assert.deepEqual([byAddress.from, byAddress.body], [peerA, 'by multiaddr'])
    const text = await runCli(['send', peerA, 'echo', 'typed', '--home', homeB])
    assert.equal(text.stdout, 'typed\n')
  })

  it('listen --exec answers with the command\'s stdout, and with an error when it fails', async () => {
    await listen(['upper', '--exec', 'tr a-z A-Z'])
    await listen(['fails', '--exec', 'echo "no disk" >&2; exit 3'])
    const upper = await runJson<{ body: unknown }>(['send', peerA, 'upper', 'shout', '--home', homeB])
    assert.equal(upper.body, 'SHOUT')
    const failed = await runCli(['send', peerA, 'fails', 'x', '--home', homeB, '--json'])
    assert.equal(failed.code, 1)
    assertOneActionableLine(failed.stderr)
    assert.equal(JSON.parse(failed.stdout).error.code, 'ExecFailed')
    assert.match(failed.stderr, /status 3: no disk/)
  })

  it('alias add refuses to repoint a petname without --force', async () => {
    const other = '12D3KooWCLMrLzLivZUYyGNWvKRW5mzrP3WUSYkngP8en26Zp6nr'
    await runJson(['alias', 'add', 'alice', peerA, '--home', homeB])
    await runJson(['alias', 'add', 'alice', peerA, '--home', homeB])
    const clash = await runCli(['alias', 'add', 'alice', other, '--home', homeB, '--json'])
    assert.equal(clash.code, 1)
    assertOneActionableLine(clash.stderr)
    assert.match(clash.stderr, /--force/)
    assert.equal(JSON.parse(clash.stdout).error.code, 'AliasExists')
    assert.equal((await runJson<{ peerId: string }>(['alias', 'add', 'alice', other, '--force', '--home', homeB])).peerId, other)
  })
})
