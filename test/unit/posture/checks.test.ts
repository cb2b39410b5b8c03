import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadConfig, mergeConfig } from '../../../src/config/index.ts'
import { checkAdvisories, compareVersions, hasHigh, listensLocally, parseAdvisories, reviewPosture, shippedAdvisories } from '../../../src/posture/index.ts'
import type { Config } from '../../../src/config/index.ts'
import type { Finding, PostureSnapshot } from '../../../src/posture/index.ts'

const DAY = 86_400_000
const NOW = Date.parse('2026-11-30T12:00:00Z')

async function peer (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

async function snapshot (overrides: Partial<PostureSnapshot> = {}, config?: Record<string, unknown>): Promise<PostureSnapshot> {
  const base = await loadConfig()
  return {
    now: NOW,
    home: '/home/agent/.agentnet',
    homeMode: 0o700,
    files: [{ name: 'identity.key', kind: 'file', mode: 0o600 }, { name: 'trust.json', kind: 'file', mode: 0o600 }],
    key: { mode: 0o600, writtenAt: NOW - 10 * DAY },
    config: (config === undefined ? base : mergeConfig(base as unknown as Record<string, unknown>, config)) as unknown as Config,
    configSource: 'test',
    trust: { peers: {}, invites: {} },
    audit: { ok: true, records: 3, last: { seq: 2, hash: 'a'.repeat(64) }, timeRegressions: 0, lastTime: new Date(NOW - DAY).toISOString() },
    versions: { agentnet: '0.1.0', libp2p: '3.3.11' },
    advisories: [],
    live: { running: false, reason: 'not running' },
    ...overrides
  }
}

function find (findings: Finding[], id: string): Finding {
  const f = findings.find(x => x.id === id || x.id.startsWith(id))
  assert.ok(f !== undefined, `no finding ${id} in ${findings.map(x => x.id).join(', ')}`)
  return f
}

describe('posture checks (pure)', () => {
  it('the default configuration on a well-kept home has no high or medium finding', async () => {
    const findings = reviewPosture(await snapshot())
    assert.equal(hasHigh(findings), false)
    assert.deepEqual(findings.filter(f => f.severity === 'medium').map(f => f.id), [])
    // every finding is complete
    for (const f of findings) {
      assert.ok(f.id !== '' && f.title !== '' && f.explanation !== '' && f.fix !== '', JSON.stringify(f))
    }
  })

  it('finds each planted weakness with its severity and fix', async () => {
    const stale = await peer()
    const fresh = await peer()
    const pending = await peer()
    const relay = await peer()
    const s = await snapshot({
      homeMode: 0o755,
      files: [{ name: 'identity.key', kind: 'file', mode: 0o644 }, { name: 'trust.json', kind: 'file', mode: 0o640 }, { name: 'notes.txt', kind: 'file', mode: 0o644 }],
      key: { mode: 0o644, writtenAt: NOW - 400 * DAY },
      trust: {
        peers: {
          [stale]: { state: 'trusted', since: NOW - 200 * DAY, updatedAt: NOW - 200 * DAY, reason: 'old', direction: 'mutual', via: 'request' },
          [fresh]: { state: 'trusted', since: NOW - DAY, updatedAt: NOW - DAY, reason: 'new', direction: 'mutual', via: 'request' },
          [pending]: { state: 'pending-inbound', since: NOW - 10 * DAY, updatedAt: NOW - 10 * DAY, reason: 'let me in', direction: 'inbound', via: 'request' }
        },
        invites: {
          ['b'.repeat(64)]: { createdAt: NOW - 10 * DAY, expiresAt: NOW + 20 * DAY, uses: 5, usesLeft: 4, usedBy: [] },
          ['c'.repeat(64)]: { createdAt: NOW - 2 * DAY, expiresAt: NOW - DAY, uses: 1, usesLeft: 1, usedBy: [] }
        }
      },
      audit: { ok: false, records: 1, firstBad: { line: 2, seq: 1, reason: 'hash does not match' } },
      versions: { agentnet: '0.1.0', libp2p: '3.0.0' },
      advisories: [{ package: 'libp2p', fixedIn: '3.3.11', id: 'TEST-1', severity: 'high', summary: 'a fix' }],
      live: { running: true, rejected: { StaleMessage: 2, FutureMessage: 1 }, relayReservations: [relay] }
    }, {
      messaging: { replayWindowMs: 300_000, maxClockSkewMs: 120_000 },
      tokens: { lifetimeMs: 600_000 },
      trust: { publicServices: ['search'], strict: false, acceptOldKeyOnlySuccession: true },
      nat: { upnp: true, stunServers: ['stun:stun.example.org:3478'] },
      metrics: { listen: '0.0.0.0:9090' },
      dashboard: { listen: '127.0.0.1:8080' }
    })
    const findings = reviewPosture(s)
    const expect: Array<[string, string, RegExp]> = [
      ['home.mode', 'high', /chmod 700/],
      ['home.key-mode', 'high', /chmod 600 .*identity\.key/],
      ['home.file-mode.trust.json', 'high', /chmod 600/],
      ['home.file-mode.notes.txt', 'medium', /chmod 600/],
      ['key.age', 'medium', /agentnet identity rotate/],
      ['config.replay-window', 'medium', /messaging\.replayWindowMs/],
      ['config.clock-skew', 'medium', /messaging\.maxClockSkewMs/],
      ['config.token-lifetime', 'medium', /tokens\.lifetimeMs/],
      ['trust.strict-off-public', 'medium', /trust\.strict: true/],
      ['trust.old-key-only-succession', 'high', /trust\.acceptOldKeyOnlySuccession: false/],
      ['services.public-token-free', 'medium', /tokens\.protectedServices: \["search"\]/],
      ['trust.stale-peers', 'low', /trust revoke/],
      ['trust.open-invite.bbbbbbbbbbbb', 'low', /--ttl/],
      ['trust.pending', 'low', /trust pending/],
      ['network.stun-outside', 'medium', /nat\.stunServers/],
      ['network.relay-outside', 'low', /bootstrap/],
      ['network.upnp', 'medium', /nat\.upnp: false/],
      ['network.metrics-exposed', 'medium', /metrics\.listen/],
      ['audit.chain', 'high', /audit verify/],
      ['clock.offset', 'medium', /NTP/],
      ['version.libp2p.TEST-1', 'high', /npm install libp2p@\^3\.3\.11/]
    ]
    for (const [id, severity, fix] of expect) {
      const f = find(findings, id)
      assert.equal(f.severity, severity, `${id}: ${f.severity}`)
      assert.match(f.fix, fix, id)
    }
    assert.match(find(findings, 'trust.stale-peers').explanation, new RegExp(stale))
    assert.doesNotMatch(find(findings, 'trust.stale-peers').explanation, new RegExp(fresh))
    assert.match(find(findings, 'trust.stale-peers').explanation, /no last-seen data/)
    assert.equal(findings.some(f => f.id === 'network.dashboard-exposed'), false, 'dashboard on 127.0.0.1 is fine')
    assert.equal(findings.some(f => f.id.startsWith('trust.open-invite.cccc')), false, 'an expired invite is not open')
    assert.equal(hasHigh(findings), true)
    assert.equal(findings[0]?.severity, 'high', 'sorted by severity')
  })

  it('reports a key rotation in progress: interrupted, in its grace period, past it, damaged', async () => {
    const r = { old: 'A', new: 'B', ts: NOW - DAY, graceMs: 7 * DAY, notified: 2 }
    const of = async (rotation: PostureSnapshot['rotation']): Promise<Finding> => find(reviewPosture(await snapshot({ rotation })), 'identity.rotation')
    assert.equal((await of({ ...r, state: 'prepared' })).severity, 'low')
    assert.match((await of({ ...r, state: 'prepared' })).fix, /agentnet start/)
    const grace = await of({ ...r, state: 'grace' })
    assert.equal(grace.severity, 'info')
    assert.match(grace.explanation, /2 trusted peer/)
    assert.equal((await of({ ...r, state: 'grace', ts: NOW - 8 * DAY })).severity, 'low')
    assert.equal((await of({ error: 'bad JSON' })).severity, 'high')
    assert.equal(reviewPosture(await snapshot()).some(f => f.id.startsWith('identity.rotation')), false)
  })

  it('uses last-seen data when the node has it', async () => {
    const p = await peer()
    const s = await snapshot({
      trust: { peers: { [p]: { state: 'trusted', since: NOW - 300 * DAY, updatedAt: NOW - 300 * DAY, reason: 'x', direction: 'mutual', via: 'request' } }, invites: {} },
      lastSeen: { [p]: NOW - DAY }
    })
    assert.equal(reviewPosture(s).some(f => f.id === 'trust.stale-peers'), false)
    const s2 = { ...s, lastSeen: { [p]: NOW - 100 * DAY } }
    assert.match(find(reviewPosture(s2), 'trust.stale-peers').explanation, /not seen for more than 90 days/)
  })

  it('reports why the clock offset cannot be measured when nothing was refused', async () => {
    const f = find(reviewPosture(await snapshot({ live: { running: true, rejected: {} } })), 'clock.offset')
    assert.equal(f.severity, 'info')
    assert.match(f.explanation, /no clock exchange/)
  })

  it('accepts STUN servers of the bootstrap network', async () => {
    const id = await peer()
    const s = await snapshot({}, { bootstrap: [`/ip4/203.0.113.7/tcp/4001/p2p/${id}`], nat: { stunServers: ['stun:203.0.113.7:3478'] } })
    assert.equal(reviewPosture(s).some(f => f.id === 'network.stun-outside'), false)
  })

  it('listen addresses: loopback only or beyond', () => {
    assert.equal(listensLocally('127.0.0.1:9090'), true)
    assert.equal(listensLocally('localhost:1'), true)
    assert.equal(listensLocally('[::1]:9090'), true)
    assert.equal(listensLocally('http://127.0.0.1:80/metrics'), true)
    assert.equal(listensLocally('/ip4/127.0.0.1/tcp/9090'), true)
    assert.equal(listensLocally('0.0.0.0:9090'), false)
    assert.equal(listensLocally('/ip4/0.0.0.0/tcp/9090'), false)
    assert.equal(listensLocally('[::]:9090'), false)
  })

  it('versions and the shipped advisories list', async () => {
    assert.equal(compareVersions('3.3.11', '3.3.9'), 1)
    assert.equal(compareVersions('3.3.11', '3.3.11'), 0)
    assert.equal(compareVersions('3.4.0-rc.1', '3.4.0'), -1)
    assert.equal(compareVersions('2.9.9', '3.0.0'), -1)
    const shipped = await shippedAdvisories()
    assert.ok(shipped.length > 0)
    assert.throws(() => parseAdvisories({ advisories: [{ package: 'x' }] }), /advisories\[0\]/)
    const findings = checkAdvisories({ libp2p: '3.3.11', jose: '6.0.0' }, [
      { package: 'libp2p', fixedIn: '3.3.11', id: 'A', severity: 'high', summary: '' },
      { package: 'jose', fixedIn: '6.1.0', id: 'B', severity: 'medium', summary: 'JWS fix' }
    ])
    assert.deepEqual(findings.filter(f => f.severity !== 'info').map(f => f.id), ['version.jose.B'])
  })
})
