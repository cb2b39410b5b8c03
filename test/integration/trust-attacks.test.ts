import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { after, before, describe, it } from 'node:test'
import { MAX_REASON_BYTES, ReasonTooLongError, TRUST_PROTOCOL } from '../../src/trust/index.ts'
import { connect, RawPeer, removeHome, restart, startNode } from './trust-helpers.ts'
import type { TestNode } from './trust-helpers.ts'

describe('hostile handshake traffic', () => {
  let b: TestNode
  let c: TestNode
  let m: RawPeer

  before(async () => {
    // generous rate limits: these tests send many frames quickly from one peer (the flood test below uses the defaults)
    ;[b, c, m] = await Promise.all([startNode({ init: { maxPending: 5, ratePerSecond: 1000, rateBurst: 1000 } }), startNode(), RawPeer.create()])
    await m.libp2p.dial(b.addr)
    await connect(c, b)
  })

  after(async () => {
    await m.stop()
    for (const n of [b, c]) {
      await n.stop()
      await removeHome(n.home)
    }
  })

  it('a replayed handshake frame is refused with Replay', async () => {
    const frame = m.frame({ type: 'request', to: b.id, reason: 'first' })
    const first = await m.exchange(b.peerId, frame)
    assert.equal(first.type, 'pending')
    assert.equal(b.trust.stateOf(m.peerId), 'pending-inbound')
    const second = await m.exchange(b.peerId, frame)
    assert.equal(second.type, 'error')
    assert.equal(second.code, 'Replay')
    assert.ok(b.audit.records.some(r => r.type === 'trust.handshake-refused' && r.data.code === 'Replay'))
  })

  it('frames that fail their checks are refused with the protocol error codes', async () => {
    // addressed to c, presented to b
    assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: c.id, reason: 'x' }))).code, 'WrongRecipient')
    // stale and future timestamps
    assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: 'x', ts: Date.now() - 120_000 }))).code, 'StaleMessage')
    assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: 'x', ts: Date.now() + 120_000 }))).code, 'FutureMessage')
    // one byte of the signed payload changed
    const tampered = m.frame({ type: 'request', to: b.id, reason: 'abc' })
    const at = Buffer.from(tampered).indexOf('abc')
    tampered[at] = 'x'.charCodeAt(0)
    assert.equal((await m.exchange(b.peerId, tampered)).code, 'BadSignature')
    // c's genuine frame relayed by m: the sender is not the authenticated peer
    const cSigned = (await RawPeer.create())
    try {
      const frame = cSigned.frame({ type: 'request', to: b.id, reason: 'relayed' })
      assert.equal((await m.exchange(b.peerId, frame)).code, 'SenderMismatch')
    } finally {
      await cSigned.stop()
    }
    // garbage and unknown fields
    assert.equal((await m.exchange(b.peerId, new Uint8Array(100).fill(1))).code, 'MalformedFrame')
    assert.equal((await m.exchange(b.peerId, m.frame({ type: 'pending', to: b.id }))).code, 'MalformedFrame')
  })

  it('an oversized reason is refused locally and by the receiver with ReasonTooLong; control characters with InvalidReason', async () => {
    const long = 'x'.repeat(MAX_REASON_BYTES + 1)
    await assert.rejects(c.request(b.id, long), ReasonTooLongError)
    await assert.rejects(c.request(b.id, 'é'.repeat(513)), ReasonTooLongError) // 1026 UTF-8 bytes
    assert.equal(c.trust.stateOf(b.id), 'none')
    const reply = await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: long }))
    assert.equal(reply.code, 'ReasonTooLong')
    assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: 'hi\u001b[2Jthere' }))).code, 'InvalidReason')
    assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: 'evil\u202Etxt' }))).code, 'InvalidReason')
    // exactly 1 KiB is fine
    assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: 'y'.repeat(MAX_REASON_BYTES) }))).type, 'pending')
    assert.equal(b.trust.pending().find(p => p.peerId === m.peerId.toString())?.reason.length, MAX_REASON_BYTES)
  })

  it('one pending entry per peer: a repeat updates it', async () => {
    const before = b.trust.pending().length
    for (const reason of ['one', 'two', 'three']) {
      assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason }))).type, 'pending')
    }
    const mine = b.trust.pending().filter(p => p.peerId === m.peerId.toString())
    assert.equal(mine.length, 1)
    assert.equal(mine[0]?.reason, 'three')
    assert.equal(b.trust.pending().length, before)
  })

  it('unsolicited approvals and rejections create nothing', async () => {
    const other = await RawPeer.create()
    try {
      assert.equal((await other.exchange(c.addr, other.frame({ type: 'approve', to: c.id }))).code, 'NotRequested')
      assert.equal((await other.exchange(c.addr, other.frame({ type: 'reject', to: c.id }))).code, 'NotRequested')
      assert.equal(c.trust.stateOf(other.peerId), 'none')
      // a revoke from a stranger records nothing either
      assert.equal((await other.exchange(c.addr, other.frame({ type: 'revoke', to: c.id }))).type, 'ok')
      assert.equal(c.trust.stateOf(other.peerId), 'none')
    } finally {
      await other.stop()
    }
  })

  it('a peer holding streams open without writing takes at most maxConcurrentPerPeer handshake slots', async () => {
    const slow = await RawPeer.create()
    const streams = []
    try {
      for (let i = 0; i < 4; i++) streams.push(await slow.libp2p.dialProtocol(b.addr, TRUST_PROTOCOL))
      const deadline = Date.now() + 2000
      while (b.trust.stats().inFlight < 4 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
      assert.equal(b.trust.stats().inFlight, 4)
      // the fifth is refused at once
      assert.equal((await slow.exchange(b.addr, slow.frame({ type: 'request', to: b.id, reason: 'fifth' }))).code, 'Busy')
      // other peers are served meanwhile
      assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: 'meanwhile' }))).type, 'pending')
    } finally {
      for (const stream of streams) stream.abort(new Error('done'))
      await slow.stop()
    }
    const deadline = Date.now() + 2000
    while (b.trust.stats().inFlight > 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    assert.equal(b.trust.stats().inFlight, 0)
  })

  it('pending requests are bounded in total: new peers beyond it get PendingFull, existing ones are kept', async () => {
    const peers: RawPeer[] = []
    try {
      while (b.trust.stats().pending < 5) {
        const p = await RawPeer.create()
        peers.push(p)
        assert.equal((await p.exchange(b.addr, p.frame({ type: 'request', to: b.id, reason: 'fill' }))).type, 'pending')
      }
      const pendingBefore = b.trust.pending().map(p => p.peerId)
      const late = await RawPeer.create()
      peers.push(late)
      const reply = await late.exchange(b.addr, late.frame({ type: 'request', to: b.id, reason: 'too late' }))
      assert.equal(reply.code, 'PendingFull')
      assert.deepEqual(b.trust.pending().map(p => p.peerId), pendingBefore)
      // a peer already pending may still update its request
      assert.equal((await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: 'update while full' }))).type, 'pending')
      // the typed error on the requesting node
      assert.equal(await c.request(b.id, 'full?').catch((err: { code: string }) => err.code), 'PendingFull')
      // once one is decided, there is room again
      await b.reject(peers[0]?.peerId.toString() ?? '')
      assert.equal((await late.exchange(b.addr, late.frame({ type: 'request', to: b.id, reason: 'now' }))).type, 'pending')
    } finally {
      await Promise.all(peers.map(p => p.stop()))
    }
  })
})

describe('replayed handshake frames across a restart', () => {
  it('trust nonces share the node\'s replay cache, saved at a clean stop: a captured request is still a Replay after the restart', async () => {
    let b = await startNode({ persistReplay: true, init: { ratePerSecond: 1000, rateBurst: 1000 } })
    const m = await RawPeer.create()
    try {
      const frame = m.frame({ type: 'request', to: b.id, reason: 'captured' })
      assert.equal((await m.exchange(b.addr, frame)).type, 'pending')
      // the same cache holds agent-message nonces: the trust frame's is one of its entries
      assert.equal(b.messaging.replayCache.countFor(m.peerId.toString()), 1)
      b = await restart(b, { persistReplay: true, init: { ratePerSecond: 1000, rateBurst: 1000 } })
      assert.equal(b.messaging.replayCache.countFor(m.peerId.toString()), 1)
      const again = await m.exchange(b.addr, frame)
      assert.equal(again.type, 'error')
      assert.equal(again.code, 'Replay')
      // a fresh frame from the same peer is fine
      assert.equal((await m.exchange(b.addr, m.frame({ type: 'request', to: b.id, reason: 'fresh' }))).type, 'pending')
    } finally {
      await m.stop()
      await b.stop()
      await removeHome(b.home)
    }
  })
})

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function heapUsed (): number {
  gc()
  return process.memoryUsage().heapUsed
}

describe('a flood of handshake requests', () => {
  let b: TestNode
  let c: TestNode
  let m: RawPeer

  before(async () => {
    ;[b, c, m] = await Promise.all([startNode(), startNode(), RawPeer.create()])
    await m.libp2p.dial(b.addr)
    await connect(c, b)
  })

  after(async () => {
    await m.stop()
    for (const n of [b, c]) {
      await n.stop()
      await removeHome(n.home)
    }
  })

  it('10,000 requests from one peer are rate-limited with bounded memory; another peer\'s request still reaches pending', async () => {
    const TOTAL = 10_000
    const CONCURRENCY = 12
    const outcomes = new Map<string, number>()
    let sent = 0
    let legit: Promise<unknown> | undefined
    const heapBefore = heapUsed()
    const started = performance.now()
    const worker = async (): Promise<void> => {
      while (sent < TOTAL) {
        const i = sent++
        if (i === TOTAL / 2) legit = c.request(b.id, 'a legitimate request during the flood')
        let outcome: string
        try {
          const reply = await m.exchange(b.peerId, m.frame({ type: 'request', to: b.id, reason: `flood ${i}` }))
          outcome = reply.type === 'error' ? reply.code ?? 'error' : reply.type
        } catch {
          outcome = 'stream-reset'
        }
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1)
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, worker))
    const seconds = (performance.now() - started) / 1000
    await legit

    const count = (k: string): number => outcomes.get(k) ?? 0
    const total = [...outcomes.values()].reduce((x, y) => x + y, 0)
    assert.equal(total, TOTAL)
    // token bucket: burst 10 + 5/s
    const allowed = 10 + Math.ceil(5 * seconds) + 1
    assert.ok(count('pending') <= allowed, `${count('pending')} accepted in ${seconds.toFixed(1)} s (≤ ${allowed})`)
    assert.ok(count('RateLimited') >= TOTAL - allowed - count('stream-reset') - count('Busy'), JSON.stringify(Object.fromEntries(outcomes)))
    assert.ok(count('RateLimited') > TOTAL * 0.9, JSON.stringify(Object.fromEntries(outcomes)))

    // the legitimate request got through
    assert.equal(c.trust.stateOf(b.id), 'pending-outbound')
    const pending = b.trust.pending()
    assert.deepEqual(pending.map(p => p.peerId).sort(), [c.id, m.peerId.toString()].sort())
    assert.equal(pending.find(p => p.peerId === c.id)?.reason, 'a legitimate request during the flood')

    // bounded state: one pending entry per peer, a handful of buckets and nonces, no handshake left in flight
    const stats = b.trust.stats()
    assert.equal(stats.pending, 2)
    assert.ok(stats.rateLimitedPeers <= 2)
    assert.ok(stats.replayEntries <= allowed + 2, `replay cache holds ${stats.replayEntries}`)
    assert.equal(stats.inFlight, 0)
    assert.ok(stats.rateLimited >= count('RateLimited'))
    // rate-limited frames are audited once per episode, not once each
    const refusals = b.audit.records.filter(r => r.type === 'trust.handshake-refused' && r.data.code === 'RateLimited').length
    assert.ok(refusals <= allowed, `${refusals} audit records for rate limiting`)
    const heapGrowthMiB = (heapUsed() - heapBefore) / 1024 / 1024
    assert.ok(heapGrowthMiB < 16, `heap grew ${heapGrowthMiB.toFixed(1)} MiB`)
    console.log(`# flood: ${TOTAL} requests in ${seconds.toFixed(2)} s, outcomes ${JSON.stringify(Object.fromEntries(outcomes))}, heap +${heapGrowthMiB.toFixed(1)} MiB, stats ${JSON.stringify(stats)}`)
  })
})
