import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { PENDING_FILE, TRUST_FILE } from '../../src/trust/index.ts'
import { connect, RawPeer, removeHome, restart, startNode } from './trust-helpers.ts'
import type { TestNode } from './trust-helpers.ts'

const MAX_PENDING = 10
const PER_SOURCE = 4
const TTL_MS = 60_000
/** Three flooding networks on loopback, each a /24 of its own (the kernel routes all of 127/8 to lo) */
const FLOOD_NETWORKS = ['127.0.1', '127.0.2', '127.0.3']
const PER_NETWORK = 6

/** The source networks B recorded for the requests it holds, from its audit records */
function pendingSources (b: TestNode): Map<string, number> {
  const sourceOf = new Map<string, string>()
  for (const r of b.audit.records) {
    if (r.type === 'trust.request-received' && typeof r.data.source === 'string') sourceOf.set(r.data.peer as string, r.data.source)
  }
  const counts = new Map<string, number>()
  for (const p of b.trust.pending()) {
    const source = sourceOf.get(p.peerId) ?? '?'
    counts.set(source, (counts.get(source) ?? 0) + 1)
  }
  return counts
}

/**
 * Issue 9: throwaway identities filling the pending queue. Real nodes: the
 * flooders are libp2p nodes with fresh keys dialling from 127.0.{1,2,3}.x,
 * the genuine newcomer a full node dialling over IPv6 (::1), so B sees the
 * real remote address of each connection.
 */
describe('a flood of trust requests from throwaway identities', () => {
  let b: TestNode
  let newcomer: TestNode
  let now = Date.now()
  const flooders: RawPeer[] = []
  const outcomes = new Map<string, number>()

  before(async () => {
    b = await startNode({
      listen: ['/ip4/127.0.0.1/tcp/0', '/ip6/::1/tcp/0'],
      clock: () => now,
      init: { maxPending: MAX_PENDING, maxPendingPerSource: PER_SOURCE, pendingTtlMs: TTL_MS }
    })
    newcomer = await startNode({ listen: ['/ip6/::1/tcp/0'] })
  })

  after(async () => {
    await Promise.all(flooders.map(async f => f.stop()))
    for (const n of [b, newcomer]) {
      await n.stop()
      await removeHome(n.home)
    }
  })

  const ip4Addr = (): string => b.libp2p.getMultiaddrs().map(a => a.toString()).find(a => a.startsWith('/ip4/')) ?? ''
  const ip6Addr = (): string => b.libp2p.getMultiaddrs().map(a => a.toString()).find(a => a.startsWith('/ip6/')) ?? ''

  it(`${FLOOD_NETWORKS.length * PER_NETWORK} throwaway identities from ${FLOOD_NETWORKS.length} networks fill the queue, each network at most its share; trust.json is not rewritten`, async () => {
    // a decision first, so trust.json exists: the flood must not touch it
    await b.trust.createInvite({ ttlMs: 3_600_000 })
    const before = { text: await readFile(join(b.home, TRUST_FILE), 'utf8'), mtime: (await stat(join(b.home, TRUST_FILE))).mtimeMs }
    for (const net of FLOOD_NETWORKS) {
      for (let i = 1; i <= PER_NETWORK; i++) flooders.push(await RawPeer.create({ localAddress: `${net}.${i}` }))
    }
    const target = multiaddr(ip4Addr())
    await Promise.all(flooders.map(async (f, i) => {
      const reply = await f.exchange(target, f.frame({ type: 'request', to: b.id, reason: `throwaway ${i}` }))
      const outcome = reply.type === 'error' ? reply.code ?? 'error' : reply.type
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
    }))
    const sources = pendingSources(b)
    assert.equal(b.trust.pending().length, MAX_PENDING, JSON.stringify(Object.fromEntries(outcomes)))
    for (const net of FLOOD_NETWORKS) assert.ok((sources.get(`ip4/${net}.0/24`) ?? 0) <= PER_SOURCE, JSON.stringify(Object.fromEntries(sources)))
    // the real remote addresses were used: three networks, nothing from 127.0.0.x
    assert.deepEqual([...sources.keys()].sort(), FLOOD_NETWORKS.map(n => `ip4/${n}.0/24`))
    // every request was answered; those that did not stay were refused (PendingFull) or made room for a less-represented network
    const evictions = b.audit.records.filter(r => r.type === 'trust.request-evicted').length
    assert.equal((outcomes.get('pending') ?? 0) + (outcomes.get('PendingFull') ?? 0), FLOOD_NETWORKS.length * PER_NETWORK, JSON.stringify(Object.fromEntries(outcomes)))
    assert.equal((outcomes.get('PendingFull') ?? 0) + evictions, FLOOD_NETWORKS.length * PER_NETWORK - MAX_PENDING)
    assert.equal(b.trust.stats().pendingSources, FLOOD_NETWORKS.length)
    // pending requests went to the journal, trust.json is as it was
    assert.equal(await readFile(join(b.home, TRUST_FILE), 'utf8'), before.text)
    assert.equal((await stat(join(b.home, TRUST_FILE))).mtimeMs, before.mtime)
    const journal = (await readFile(join(b.home, PENDING_FILE), 'utf8')).trim().split('\n')
    assert.ok(journal.length >= MAX_PENDING, `${journal.length} journal lines`)
  })

  it('another throwaway identity from a flooding network at its share gets PendingFull', async () => {
    const sources = pendingSources(b)
    const full = FLOOD_NETWORKS.find(n => sources.get(`ip4/${n}.0/24`) === PER_SOURCE) ?? FLOOD_NETWORKS[0] as string
    const late = await RawPeer.create({ localAddress: `${full}.200` })
    flooders.push(late)
    const reply = await late.exchange(multiaddr(ip4Addr()), late.frame({ type: 'request', to: b.id, reason: 'one more' }))
    assert.equal(reply.code, 'PendingFull')
    assert.equal(b.trust.stateOf(late.peerId), 'none')
  })

  it('a genuine newcomer from another network still gets in: the oldest request of the most-represented network makes room', async () => {
    const before = b.trust.pending().map(p => p.peerId)
    const largest = Math.max(...pendingSources(b).values())
    await newcomer.libp2p.dial(multiaddr(ip6Addr()))
    const result = await newcomer.request(b.id, 'I am the weather agent of Alice')
    assert.equal(result.state, 'pending-outbound')
    const after = b.trust.pending().map(p => p.peerId)
    assert.ok(after.includes(newcomer.id))
    assert.equal(after.length, MAX_PENDING)
    const evicted = before.filter(p => !after.includes(p))
    assert.equal(evicted.length, 1)
    const record = b.audit.records.find(r => r.type === 'trust.request-evicted' && r.data.for === newcomer.id)
    assert.equal(record?.data.peer, evicted[0])
    assert.equal(record?.data.for, newcomer.id)
    assert.ok(b.audit.records.some(r => r.type === 'trust.request-received' && r.data.peer === newcomer.id && r.data.source === 'ip6/0:0:0::/48'))
    // it was one of the most-represented network's
    const sources = pendingSources(b)
    assert.ok(Math.max(...[...sources].filter(([s]) => s.startsWith('ip4/')).map(([, n]) => n)) <= largest)
  })

  it('pending requests survive a restart with their source networks; then they expire after pendingTtlMs (injectable clock)', async () => {
    const before = b.trust.pending().map(p => p.peerId).sort()
    b = await restart(b, { clock: () => now, init: { maxPending: MAX_PENDING, maxPendingPerSource: PER_SOURCE, pendingTtlMs: TTL_MS } })
    assert.deepEqual(b.trust.pending().map(p => p.peerId).sort(), before)
    assert.equal(b.trust.stats().pendingSources, FLOOD_NETWORKS.length + 1)
    // not yet
    now += TTL_MS - 1_000
    assert.equal(b.trust.pending().length, MAX_PENDING)
    now += 2_000
    assert.equal(b.trust.pending().length, 0)
    assert.equal(b.trust.stateOf(newcomer.id), 'none')
    // and durably so
    now = Date.now()
    b = await restart(b, { clock: () => now, init: { maxPending: MAX_PENDING, maxPendingPerSource: PER_SOURCE, pendingTtlMs: TTL_MS } })
    assert.equal(b.trust.pending().length, 0)
    assert.equal(b.trust.stats().pending, 0)
    // the newcomer asks again and is pending once more
    await connect(newcomer, b)
    assert.equal((await newcomer.request(b.id, 'asking again')).state, 'pending-outbound')
    assert.deepEqual(b.trust.pending().map(p => p.peerId), [newcomer.id])
  })
})
