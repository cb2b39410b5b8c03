/**
 * deploy/: the systemd units, the Dockerfile, the compose file and the
 * container entry point.
 *
 * - `systemd-analyze verify` (and `security --offline`) on the units, with
 *   /opt/agentnet rewritten to this checkout so that the executables they
 *   name exist; skipped, saying so, where systemd-analyze is not installed.
 * - Docker cannot run here (no daemon, no buildx, no compose plugin, no
 *   hadolint): the Dockerfile and compose file get lint-level checks of what
 *   the deployment relies on (multi-stage, non-root, HEALTHCHECK through
 *   `agentnet status`, copied paths exist, bootstrap wiring).
 * - The entry point runs for real outside Docker: a bootstrap node publishes
 *   its address in a shared folder and an agent started by the same script
 *   waits for it and bootstraps from it.
 */

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { constants } from 'node:fs'
import { access, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, it } from 'node:test'
import { BIN, makeHome, removeHome, runJson } from '../helpers/cli.ts'
import type { ChildProcess } from 'node:child_process'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEPLOY = join(ROOT, 'deploy')
const UNITS = ['agentnet.service', 'agentnet-bootstrap.service']

function hasCommand (command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

/** `Key=value` lines of a unit file's [Service] section */
function serviceSection (unit: string): Map<string, string[]> {
  const keys = new Map<string, string[]>()
  let section = ''
  for (const raw of unit.split('\n')) {
    const line = raw.trim()
    if (line.startsWith('[')) section = line
    else if (section === '[Service]' && line !== '' && !line.startsWith('#')) {
      const eq = line.indexOf('=')
      const key = line.slice(0, eq)
      keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1)])
    }
  }
  return keys
}

describe('deploy: systemd units', () => {
  let dir: string | undefined
  after(async () => { if (dir !== undefined) await rm(dir, { recursive: true, force: true }) })

  it('systemd-analyze verify passes on both units (no warnings either)', async (t) => {
    if (!hasCommand('systemd-analyze')) {
      t.skip('systemd-analyze not installed (Debian: apt-get install systemd; .ci/run installs it)')
      return
    }
    dir = await mkdtemp(join(tmpdir(), 'an-units-'))
    for (const name of UNITS) {
      const text = await readFile(join(DEPLOY, 'systemd', name), 'utf8')
      // installed at /opt/agentnet; verify checks that ExecStart's binary exists, so point it at this checkout
      await writeFile(join(dir, name), text.replaceAll('/opt/agentnet/', ROOT))
    }
    const files = UNITS.map(name => join(dir ?? '', name))
    const verify = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' })
    assert.equal(verify.status, 0, `systemd-analyze verify failed:\n${verify.stdout}${verify.stderr}`)
    assert.equal(verify.stderr.trim(), '', `systemd-analyze verify warned:\n${verify.stderr}`)
    for (const file of files) {
      const security = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', file], { encoding: 'utf8' })
      const score = /Overall exposure level for \S+: ([\d.]+)/.exec(security.stdout)
      if (score === null) {
        t.diagnostic(`systemd-analyze security --offline not available: ${security.stderr.trim()}`)
        continue
      }
      t.diagnostic(`${file}: exposure ${score[1]}`)
      assert.ok(Number(score[1]) <= 2, `exposure level ${score[1]} of ${file} is above 2.0 ("OK" is below 4):\n${security.stdout}`)
    }
  })

  it('both units are hardened, restart on failure and wait for readiness', async () => {
    for (const name of UNITS) {
      const s = serviceSection(await readFile(join(DEPLOY, 'systemd', name), 'utf8'))
      const one = (key: string): string | undefined => s.get(key)?.at(-1)
      assert.equal(one('NoNewPrivileges'), 'yes', name)
      assert.equal(one('ProtectSystem'), 'strict', name)
      assert.equal(one('ProtectHome'), 'yes', name)
      assert.equal(one('PrivateTmp'), 'yes', name)
      assert.equal(one('Restart'), 'on-failure', name)
      assert.equal(one('CapabilityBoundingSet'), '', name)
      assert.ok(one('User') === 'agentnet' || one('DynamicUser') === 'yes', `${name}: a dedicated user`)
      assert.ok(one('StateDirectory') !== undefined, `${name}: StateDirectory`)
      assert.match(one('Environment') ?? '', /./)
      assert.ok(s.get('Environment')?.some(e => e === `AGENTNET_HOME=/var/lib/${one('StateDirectory') ?? ''}`), `${name}: the home is the StateDirectory`)
      assert.match(one('ExecStart') ?? '', /agentnet\.js start .*--home \$\{AGENTNET_HOME\}/)
      assert.match(one('ExecStartPost') ?? '', /agentnet\.js status --home/, `${name}: readiness by agent status`)
      assert.equal(s.get('MemoryDenyWriteExecute'), undefined, `${name}: V8's JIT needs W+X memory`)
    }
  })
})

describe('deploy: Dockerfile and compose file (lint level: Docker cannot run here)', () => {
  it('Dockerfile: multi-stage, non-root, HEALTHCHECK through agentnet status, copied paths exist', async () => {
    const text = await readFile(join(DEPLOY, 'Dockerfile'), 'utf8')
    const lines = text.split('\n').filter(l => !l.trimStart().startsWith('#'))
    const joined = lines.join('\n').replace(/\\\n/g, ' ')
    const instructions = joined.split('\n').map(l => l.trim()).filter(l => l !== '')
    const froms = instructions.filter(l => /^FROM /i.test(l))
    assert.ok(froms.length >= 2, 'multi-stage: two or more FROM')
    assert.ok(froms.every(l => / AS [a-z]+$/i.test(l)), 'every stage is named')
    assert.ok(!/:latest\b/.test(joined), 'no :latest tag')
    const final = instructions.slice(instructions.lastIndexOf(froms.at(-1) ?? ''))
    assert.ok(final.some(l => /^COPY --from=/.test(l)), 'the final stage copies from the build stage')
    const user = final.filter(l => /^USER /.test(l)).at(-1)
    assert.ok(user !== undefined && !/^USER (root|0)(:|$)/.test(user), `the final stage runs as a non-root user (${user ?? 'none'})`)
    const health = final.find(l => /^HEALTHCHECK /.test(l))
    assert.match(health ?? '', /CMD \[.*"\/opt\/agentnet\/bin\/agentnet\.js", "status"/, 'HEALTHCHECK runs agentnet status')
    assert.ok(!instructions.some(l => /^ADD /.test(l)), 'COPY, not ADD')
    for (const l of instructions.filter(l => /^COPY (?!--from)/.test(l))) {
      const parts = l.replace(/--\S+/g, '').split(/\s+/).slice(1, -1)
      for (const path of parts) await access(join(ROOT, path))
    }
    const entry = /^ENTRYPOINT \["([^"]+)"/m.exec(joined)?.[1]
    assert.equal(entry, '/opt/agentnet/deploy/docker-entrypoint.sh')
    await access(join(ROOT, 'deploy/docker-entrypoint.sh'), constants.X_OK)
    assert.equal(spawnSync('sh', ['-n', join(ROOT, 'deploy/docker-entrypoint.sh')]).status, 0, 'the entry point parses')
  })

  it('compose: two bootstrap nodes and two agents, agents wait for healthy bootstrap nodes', async () => {
    const text = await readFile(join(DEPLOY, 'compose.yaml'), 'utf8')
    assert.ok(!text.includes('\t'), 'YAML: no tabs')
    const services = [...text.matchAll(/^ {2}([a-z0-9-]+):\s*$/gm)].map(m => m[1])
    for (const name of ['bootstrap-1', 'bootstrap-2', 'agent-1', 'agent-2']) assert.ok(services.includes(name), `service ${name}`)
    const block = (name: string): string => {
      const start = text.indexOf(`\n  ${name}:\n`)
      const next = text.slice(start + 1).search(/\n {2}[a-z0-9-]+:\n|\n[a-z]/)
      return text.slice(start, next === -1 ? undefined : start + 1 + next)
    }
    for (const name of ['bootstrap-1', 'bootstrap-2']) assert.match(block(name), /AGENTNET_PROFILE: bootstrap/)
    for (const name of ['agent-1', 'agent-2']) {
      assert.match(block(name), /bootstrap-1:\s+condition: service_healthy/)
      assert.match(block(name), /bootstrap-2:\s+condition: service_healthy/)
      assert.doesNotMatch(block(name), /AGENTNET_PROFILE/)
    }
    assert.match(text, /dockerfile: deploy\/Dockerfile/)
    assert.match(text, /context: \.\./)
    await stat(join(DEPLOY, 'Dockerfile'))
  })
})

describe('deploy: the container entry point, run outside Docker', () => {
  const cleanup: Array<() => Promise<void>> = []
  after(async () => { for (const c of cleanup.reverse()) await c() })

  async function entrypoint (home: string, env: Record<string, string>, args: string[]): Promise<ChildProcess> {
    const child = spawn('sh', [join(DEPLOY, 'docker-entrypoint.sh'), ...args], {
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, AGENTNET_HOME: home, AGENTNET_BIN: BIN, ...env },
      stdio: ['ignore', 'ignore', 'pipe']
    })
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise(resolve => child.once('close', resolve))
    cleanup.push(async () => {
      child.kill('SIGTERM')
      await exited
      await removeHome(home)
    })
    Object.defineProperty(child, 'log', { get: () => stderr })
    return child
  }

  it('a bootstrap node publishes its address; an agent waits for it and bootstraps from it', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'an-shared-'))
    cleanup.push(async () => { await rm(shared, { recursive: true, force: true }) })
    const config = join(shared, 'no-stun.json')
    await writeFile(config, JSON.stringify({ nat: { stunServerPort: 0 } }))
    const [homeB, homeA] = [await makeHome('an-boot-'), await makeHome('an-agent-')]
    // the agent starts first and waits for the bootstrap node's address
    const agent = await entrypoint(homeA, { AGENTNET_SHARED: shared, AGENTNET_NAME: 'agent-1', AGENTNET_WAIT_FOR: 'bootstrap-1' }, ['--listen', '/ip4/127.0.0.1/tcp/0'])
    const boot = await entrypoint(homeB, { AGENTNET_SHARED: shared, AGENTNET_NAME: 'bootstrap-1', AGENTNET_PROFILE: 'bootstrap', AGENTNET_CONFIG: config }, ['start', '--listen', '/ip4/127.0.0.1/tcp/0'])
    const deadline = Date.now() + 90_000
    let published = ''
    let bootstrapId = ''
    let connected = false
    while (Date.now() < deadline && !connected) {
      await new Promise(resolve => setTimeout(resolve, 500))
      assert.equal(boot.exitCode, null, `the bootstrap entry point exited: ${(boot as unknown as { log: string }).log}`)
      assert.equal(agent.exitCode, null, `the agent entry point exited: ${(agent as unknown as { log: string }).log}`)
      if (published === '') {
        published = (await readdir(shared)).includes('bootstrap-1.addr') ? (await readFile(join(shared, 'bootstrap-1.addr'), 'utf8')).trim() : ''
        continue
      }
      try {
        bootstrapId ||= (await runJson<{ peerId: string }>(['id', '--home', homeB])).peerId
        const status = await runJson<{ connections: Array<{ peerId: string }> }>(['status', '--home', homeA])
        connected = status.connections.some(c => c.peerId === bootstrapId)
      } catch {
        // the agent is still starting
      }
    }
    assert.match(published, /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/, 'the bootstrap node published its multiaddr')
    assert.ok(published.endsWith(bootstrapId))
    assert.ok(connected, `the agent connected to the bootstrap node:\n${(agent as unknown as { log: string }).log}`)
    // SIGTERM reaches the node through the entry point, and it exits cleanly
    const exited = new Promise<number | null>(resolve => agent.once('close', resolve))
    agent.kill('SIGTERM')
    assert.equal(await exited, 0)
  })
})
