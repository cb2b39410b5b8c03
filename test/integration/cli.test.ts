import assert from 'node:assert/strict'
import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'
import type { RunningNode } from '../helpers/cli.ts'

describe('CLI with two real nodes on 127.0.0.1', () => {
  let homeA: string
  let homeB: string
  let nodeA: RunningNode | undefined
  let nodeB: RunningNode | undefined

  before(async () => {
    homeA = await makeHome()
    homeB = await makeHome()
  })

  after(async () => {
    await nodeA?.stop()
    await nodeB?.stop()
    await removeHome(homeA)
    await removeHome(homeB)
  })

  it('init creates a private key once and never overwrites it', async () => {
    const created = await runJson<{ peerId: string }>(['init', '--home', homeA])
    assert.match(created.peerId, /^12D3KooW/)
    const keyFile = join(homeA, 'identity.key')
    const before = await readFile(keyFile)
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600)
    assert.equal((await stat(homeA)).mode & 0o777, 0o700)

    const again = await runCli(['init', '--home', homeA])
    assert.equal(again.code, 1)
    assert.match(again.stderr, /already exists/)
    assert.deepEqual(await readFile(keyFile), before)

    const id = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeA])
    assert.equal(id.peerId, created.peerId)
    assert.deepEqual(id.addresses, [], 'no addresses while the node is not running')
  })

  it('B connects to A by multiaddr and pings it; status shows a direct connection', async () => {
    nodeA = await startNode(homeA)
    nodeB = await startNode(homeB)
    const idA = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeA])
    assert.ok(idA.addresses.length > 0)
    const address = idA.addresses.find(a => a.includes('/tcp/'))
    assert.ok(address != null && address.endsWith(`/p2p/${idA.peerId}`), "full multiaddr with /p2p/")

    const connected = await runJson<{ peerId: string, address: string }>(['connect', address, '--home', homeB])
    assert.equal(connected.peerId, idA.peerId)

    const pong = await runJson<{ peerId: string, rttMs: number }>(['ping', address, '--home', homeB])
    assert.equal(pong.peerId, idA.peerId)
    assert.ok(pong.rttMs >= 0 && pong.rttMs < 5000)

    // by peer ID alone once the peer store knows an address
    const pong2 = await runJson<{ peerId: string }>(['ping', idA.peerId, '--home', homeB])
    assert.equal(pong2.peerId, idA.peerId)

    const peers = await runJson<Array<{ peerId: string, addresses: string[] }>>(['peers', '--home', homeB])
    assert.ok(peers.some(p => p.peerId === idA.peerId))

    const status = await runJson<{ peerId: string, connections: Array<{ peerId: string, direct: boolean }> }>(['status', '--home', homeB])
    const toA = status.connections.find(c => c.peerId === idA.peerId)
    assert.ok(toA != null)
    assert.equal(toA.direct, true)
  })

  it('a second start on a running home is refused', async () => {
    const second = await runCli(['start', '--home', homeA, '--listen', '/ip4/127.0.0.1/tcp/0'])
    assert.notEqual(second.code, 0)
    assert.match(second.stderr, /already running/)
    // and the first node still answers
    const id = await runJson<{ addresses: string[] }>(['id', '--home', homeA])
    assert.ok(id.addresses.length > 0)
  })

  it('A restarts with the same peer ID and removes its socket on SIGTERM', async () => {
    const before = await runJson<{ peerId: string }>(['id', '--home', homeA])
    assert.equal(await nodeA?.stop(), 0)
    await assert.rejects(stat(join(homeA, 'agentnet.sock')), /ENOENT/)
    await assert.rejects(stat(join(homeA, 'node.lock')), /ENOENT/)
    nodeA = await startNode(homeA)
    const afterRestart = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeA])
    assert.equal(afterRestart.peerId, before.peerId)
    const pong = await runJson<{ peerId: string }>(['ping', afterRestart.addresses[0] ?? '', '--home', homeB])
    assert.equal(pong.peerId, before.peerId)
  })

  it('a node killed with SIGKILL leaves a stale socket that the next start replaces', async () => {
    const peerId = (await runJson<{ peerId: string }>(['id', '--home', homeA])).peerId
    await nodeA?.stop('SIGKILL')
    await stat(join(homeA, 'agentnet.sock')) // the crash left it behind
    const client = await runCli(['status', '--home', homeA])
    assert.equal(client.code, 1)
    assert.match(client.stderr, /no node is running/)
    nodeA = await startNode(homeA)
    const id = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeA])
    assert.equal(id.peerId, peerId)
    assert.ok(id.addresses.length > 0)
  })
})

describe('CLI refuses bad set-ups with one clear line', () => {
  it('refuses a key file readable by others', async () => {
    const home = await makeHome()
    try {
      await runJson(['init', '--home', home])
      await chmod(join(home, 'identity.key'), 0o644)
      const result = await runCli(['start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0'])
      assert.equal(result.code, 1)
      assert.match(result.stderr, /^agentnet: key file .* mode 0644/m)
    } finally {
      await removeHome(home)
    }
  })

  it('refuses a corrupt key file without touching it', async () => {
    const home = await makeHome()
    try {
      await writeFile(join(home, 'identity.key'), Buffer.from('not a key'), { mode: 0o600 })
      const result = await runCli(['start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0'])
      assert.equal(result.code, 1)
      assert.match(result.stderr, /corrupt/)
      assert.equal(await readFile(join(home, 'identity.key'), 'utf8'), 'not a key')
    } finally {
      await removeHome(home)
    }
  })

  it('names an unknown config key and a bad value', async () => {
    const home = await makeHome()
    try {
      const file = join(home, 'config.json')
      await writeFile(file, JSON.stringify({ listne: [] }))
      const unknown = await runCli(['start', '--home', home, '--config', file])
      assert.equal(unknown.code, 1)
      assert.match(unknown.stderr, /unknown key "listne"/)
      assert.equal(unknown.stderr.trim().split('\n').length, 1)

      await writeFile(file, JSON.stringify({ messaging: { replayWindowMs: 5 } }))
      const bad = await runCli(['start', '--home', home, '--config', file])
      assert.equal(bad.code, 1)
      assert.match(bad.stderr, /messaging\.replayWindowMs must be an integer from 30000 to 300000/)

      const badAddr = await runCli(['start', '--home', home, '--listen', 'not-a-multiaddr'])
      assert.equal(badAddr.code, 1)
      assert.match(badAddr.stderr, /listen\[0\] is not a valid multiaddr/)
    } finally {
      await removeHome(home)
    }
  })

  it('reports usage errors with exit code 2 and a JSON error with --json', async () => {
    const usage = await runCli(['ping'])
    assert.equal(usage.code, 2)
    assert.match(usage.stderr, /missing required argument/)

    const home = await makeHome()
    try {
      const notRunning = await runCli(['status', '--home', home, '--json'])
      assert.equal(notRunning.code, 1)
      assert.equal(JSON.parse(notRunning.stdout).error.code, 'NodeNotRunning')
    } finally {
      await removeHome(home)
    }
  })

  it('prints help', async () => {
    const help = await runCli(['--help'])
    assert.equal(help.code, 0)
    assert.match(help.stdout, /Usage: agentnet/)
    assert.match(help.stdout, /start/)
  })
})
