/**
 * `agentnet doctor`, `agentnet card` and the did in `agentnet id`, as real CLI
 * processes on temporary homes: a deliberately weak home and config yields
 * each planted weakness with its severity and fix (exit 1); the default
 * configuration yields no high finding (exit 0); after --record-baseline,
 * each planted change is drift, and an edited baseline is tampered.
 */

import assert from 'node:assert/strict'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'

interface Finding { id: string, severity: string, title: string, explanation: string, fix: string }
interface Report { findings: Finding[], high: boolean, baseline: string, running: boolean, counts: Record<string, number>, peerId: string }

const DAY = 86_400_000

async function doctor (args: string[]): Promise<{ code: number | null, report: Report }> {
  const result = await runCli(['doctor', '--json', ...args])
  assert.ok(result.stdout.trim().startsWith('{'), `doctor printed: ${result.stdout} ${result.stderr}`)
  return { code: result.code, report: JSON.parse(result.stdout) as Report }
}

function get (report: Report, id: string): Finding {
  const f = report.findings.find(x => x.id === id || x.id.startsWith(id))
  assert.ok(f !== undefined, `no ${id} in ${report.findings.map(x => `${x.id}:${x.severity}`).join(', ')}`)
  return f
}

async function peer (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

describe('agentnet doctor (CLI)', () => {
  const homes: string[] = []
  after(async () => { await Promise.all(homes.map(removeHome)) })
  async function home (): Promise<string> {
    const h = await makeHome('an-doc-')
    homes.push(h)
    await runJson(['init', '--home', h])
    return h
  }

  it('the default configuration has no high-severity finding and exits 0', async () => {
    const h = await home()
    const { code, report } = await doctor(['--home', h])
    assert.equal(code, 0)
    assert.equal(report.high, false)
    assert.equal(report.counts.high, 0)
    assert.equal(report.baseline, 'none')
    assert.equal(report.running, false)
    get(report, 'baseline.none')
    const text = await runCli(['doctor', '--home', h])
    assert.equal(text.code, 0)
    assert.match(text.stdout, /0 high/)
  })

  it('finds each planted weakness with its severity and fix, and exits 1', async () => {
    const h = await home()
    const stale = await peer()
    const pending = await peer()
    const now = Date.now()
    await writeFile(join(h, 'trust.json'), JSON.stringify({
      version: 1,
      peers: {
        [stale]: { state: 'trusted', since: now - 200 * DAY, updatedAt: now - 200 * DAY, reason: 'long ago', direction: 'mutual', via: 'request' },
        [pending]: { state: 'pending-inbound', since: now - 9 * DAY, updatedAt: now - 9 * DAY, reason: 'please', direction: 'inbound', via: 'request' }
      },
      invites: { ['d'.repeat(64)]: { createdAt: now - 10 * DAY, expiresAt: now + 30 * DAY, uses: 3, usesLeft: 3, usedBy: [] } }
    }))
    await writeFile(join(h, 'audit.log'), '{"seq":0,"time":"2026-01-01T00:00:00.000Z","type":"x","data":{},"prev":"0","hash":"0"}\n')
    const weak = join(h, 'weak.json')
    await writeFile(weak, JSON.stringify({
      messaging: { replayWindowMs: 300000, maxClockSkewMs: 120000 },
      tokens: { lifetimeMs: 900000 },
      trust: { publicServices: ['search'], strict: false },
      nat: { upnp: true, stunServers: ['stun:stun.example.org:3478'] }
    }))
    await chmod(join(h, 'identity.key'), 0o644)
    await chmod(h, 0o755)
    const { code, report } = await doctor(['--home', h, '--config', weak])
    assert.equal(code, 1)
    assert.equal(report.high, true)
    const planted: Array<[string, string, RegExp]> = [
      ['home.mode', 'high', /chmod 700/],
      ['home.key-mode', 'high', /chmod 600 .*identity\.key/],
      ['config.replay-window', 'medium', /messaging\.replayWindowMs/],
      ['config.clock-skew', 'medium', /messaging\.maxClockSkewMs/],
      ['config.token-lifetime', 'medium', /tokens\.lifetimeMs/],
      ['trust.strict-off-public', 'medium', /trust\.strict: true/],
      ['services.public-token-free', 'medium', /tokens\.protectedServices/],
      ['trust.stale-peers', 'low', /trust revoke/],
      ['trust.open-invite.', 'low', /--ttl/],
      ['trust.pending', 'low', /trust approve\|reject/],
      ['network.stun-outside', 'medium', /nat\.stunServers/],
      ['network.upnp', 'medium', /nat\.upnp: false/],
      ['audit.chain', 'high', /audit verify/]
    ]
    for (const [id, severity, fix] of planted) {
      const f = get(report, id)
      assert.equal(f.severity, severity, `${id} is ${f.severity}`)
      assert.match(f.fix, fix, id)
    }
    // the human report names them too, and the key is not printed
    const text = await runCli(['doctor', '--home', h, '--config', weak])
    assert.equal(text.code, 1)
    assert.match(text.stdout, /HIGH/)
    const key = await readFile(join(h, 'identity.key'))
    assert.ok(!text.stdout.includes(key.subarray(4, 36).toString('base64')) && !text.stdout.includes(key.subarray(4, 36).toString('hex')))
  })

  it('reports drift from the recorded baseline, then a tampered baseline', async () => {
    const h = await home()
    const approvedConfig = join(h, 'approved.json')
    await writeFile(approvedConfig, JSON.stringify({ trust: { strict: true }, tokens: { protectedServices: ['vault'] } }))
    await writeFile(join(h, 'guard-policies.json'), JSON.stringify({ '*': { allow: [] } }), { mode: 0o600 })
    const recorded = await runJson(['doctor', '--record-baseline', '--home', h, '--config', approvedConfig])
    assert.ok(recorded.recordedAt > 0)
    const clean = await doctor(['--home', h, '--config', approvedConfig])
    assert.equal(clean.code, 0)
    assert.equal(clean.report.baseline, 'intact')
    assert.deepEqual(clean.report.findings.filter(f => f.id.startsWith('drift.')), [])

    // planted changes: strict off, token protection dropped, window widened, new trusted peer, guard policy changed
    const newPeer = await peer()
    const drifted = join(h, 'drifted.json')
    await writeFile(drifted, JSON.stringify({ trust: { strict: false }, tokens: { protectedServices: [] }, messaging: { replayWindowMs: 180000 } }))
    const now = Date.now()
    await writeFile(join(h, 'trust.json'), JSON.stringify({ version: 1, peers: { [newPeer]: { state: 'trusted', since: now, updatedAt: now, reason: 'x', direction: 'mutual', via: 'invite' } }, invites: {} }), { mode: 0o600 })
    await writeFile(join(h, 'guard-policies.json'), JSON.stringify({ '*': { allow: ['pii'] } }))
    const { code, report } = await doctor(['--home', h, '--config', drifted])
    assert.equal(code, 1)
    assert.equal(report.baseline, 'intact')
    assert.equal(get(report, 'drift.trust.strict').severity, 'high')
    assert.equal(get(report, 'drift.tokens.protectedServices').severity, 'high')
    assert.equal(get(report, 'drift.messaging.replayWindowMs').severity, 'medium')
    assert.equal(get(report, `drift.trusted-peer.${newPeer}`).severity, 'medium')
    assert.equal(get(report, 'drift.guard-policies').severity, 'medium')

    // tamper: widen the approved window in the baseline file itself
    const file = join(h, 'posture-baseline.json')
    const text = await readFile(file, 'utf8')
    await writeFile(file, text.replace('"messaging.replayWindowMs": 60000', '"messaging.replayWindowMs": 180000'))
    const tampered = await doctor(['--home', h, '--config', drifted])
    assert.equal(tampered.code, 1)
    assert.equal(tampered.report.baseline, 'tampered')
    assert.equal(get(tampered.report, 'baseline.tampered').severity, 'high')
    assert.equal(tampered.report.findings.some(f => f.id.startsWith('drift.')), false)
  })

  it('reads live data from a running node', async () => {
    const h = await home()
    const node = await startNode(h, ['--log-level', 'silent'])
    try {
      const { report } = await doctor(['--home', h])
      assert.equal(report.running, true)
      const clock = get(report, 'clock.offset')
      assert.equal(clock.severity, 'info')
      assert.match(clock.explanation, /no clock exchange/)
      get(report, 'audit.chain')
    } finally {
      await node.stop()
    }
  })
})

describe('agentnet id / card (CLI)', () => {
  const homes: string[] = []
  after(async () => { await Promise.all(homes.map(removeHome)) })

  it('id shows the did:key; card export writes a card that card verify accepts and an edit breaks', async () => {
    const h = await makeHome('an-card-')
    homes.push(h)
    const { peerId } = await runJson(['init', '--home', h])
    const id = await runJson(['id', '--home', h])
    assert.equal(id.peerId, peerId)
    assert.match(id.did, /^did:key:z6Mk/)
    const cfg = join(h, 'card.config.json')
    await writeFile(cfg, JSON.stringify({ card: { name: 'weather', services: ['forecast'] } }))
    const out = join(h, 'card.json')
    const exported = await runJson(['card', 'export', '--home', h, '--config', cfg, '--out', out])
    assert.equal(exported.did, id.did)
    const verified = await runJson(['card', 'verify', out])
    assert.equal(verified.ok, true)
    assert.equal(verified.peerId, peerId)
    assert.equal(verified.did, id.did)
    assert.deepEqual(verified.services, ['forecast'])
    const card = JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>
    await writeFile(out, JSON.stringify({ ...card, name: 'not weather' }))
    const bad = await runCli(['card', 'verify', out, '--json'])
    assert.equal(bad.code, 1)
    assert.equal(JSON.parse(bad.stdout).error.code, 'InvalidAgentCard')
  })
})

describe('agentnet identity rotate / status (CLI)', () => {
  const homes: string[] = []
  after(async () => { await Promise.all(homes.map(removeHome)) })

  // a running node rotates live: test/integration/rotation-live.test.ts
  it('rotates a stopped node\'s key, refuses while a rotation is in progress, and doctor reports it', async () => {
    const h = await makeHome('an-rot-')
    homes.push(h)
    const { peerId } = await runJson(['init', '--home', h])
    await runJson(['doctor', '--home', h, '--record-baseline', '--offline'])
    const rotated = await runJson(['identity', 'rotate', '--home', h, '--grace', '1h'])
    assert.equal(rotated.old, peerId)
    assert.notEqual(rotated.new, peerId)
    assert.equal(rotated.graceMs, 3_600_000)
    assert.match(rotated.did, /^did:key:z6Mk/)
    assert.equal((await runJson(['id', '--home', h])).peerId, rotated.new)
    const status = await runJson(['identity', 'status', '--home', h])
    assert.deepEqual([status.rotating, status.state, status.old, status.new], [true, 'grace', peerId, rotated.new])
    const again = await runCli(['identity', 'rotate', '--home', h, '--json'])
    assert.equal(again.code, 1)
    assert.equal(JSON.parse(again.stdout).error.code, 'RotationInProgress')
    const { report } = await doctor(['--home', h, '--offline'])
    assert.equal(get(report, 'identity.rotation-in-progress').severity, 'info')
    assert.equal(report.baseline, 'intact', 'the approved baseline was signed again by the new key')
  })
})
