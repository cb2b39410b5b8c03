import assert from 'node:assert/strict'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import { NotPendingError, RefusedError } from '../../src/trust/index.ts'
import { codeOf, connect, RawPeer, removeHome, send, startNode } from './trust-helpers.ts'
import type { PendingRequest, TrustChange } from '../../src/trust/index.ts'
import type { TestNode } from './trust-helpers.ts'

describe('trust handshake between real nodes', () => {
  let a: TestNode
  let b: TestNode
  let c: TestNode
  let d: TestNode

  before(async () => {
    ;[a, b, c, d] = await Promise.all([
      startNode(),
      startNode({ init: { publicServices: ['card'] } }),
      startNode(),
      startNode()
    ])
    await Promise.all([connect(a, b), connect(c, b), connect(a, c), connect(d, b), connect(d, a)])
  })

  after(async () => {
    for (const n of [a, b, c, d]) {
      await n.stop()
      await removeHome(n.home)
    }
  })

  it('private by default: an untrusted peer gets UntrustedPeer, public services still answer', async () => {
    assert.equal(a.trust.stateOf(b.id), 'none')
    assert.equal(await codeOf(send(a, b, 'echo')), 'UntrustedPeer')
    assert.equal(await send(a, b, 'card'), 'public card')
    // the trust gate is a plain InboundGate too
    assert.throws(() => b.trust.gate({ service: 'echo' } as never, a.peerId), { code: 'UntrustedPeer' })
  })

  it('request → pending (event) on B → approve → both trusted and messages flow both ways', async () => {
    const changes: TrustChange[] = []
    b.trust.on('changed', change => changes.push(change))
    const pendingEvent = once(b.trust, 'pending') as Promise<[PendingRequest]>
    const result = await a.request(b.id, 'I am the weather agent of Alice')
    assert.deepEqual(result, { peerId: b.id, state: 'pending-outbound' })
    const [event] = await pendingEvent
    assert.equal(event.peerId, a.id)
    assert.equal(event.reason, 'I am the weather agent of Alice')
    assert.deepEqual(b.trust.pending().map(p => [p.peerId, p.reason]), [[a.id, 'I am the weather agent of Alice']])
    assert.equal(b.trust.stateOf(a.id), 'pending-inbound')
    assert.equal(a.trust.stateOf(b.id), 'pending-outbound')
    // still refused while pending
    assert.equal(await codeOf(send(a, b)), 'UntrustedPeer')

    const approved = await b.trust.approve(a.id)
    assert.equal(approved.state, 'trusted')
    assert.equal(approved.delivered, true)
    assert.equal(b.trust.isTrusted(a.id), true)
    assert.equal(a.trust.isTrusted(b.id), true)
    assert.deepEqual(b.trust.pending(), [])
    assert.equal(await send(a, b, 'echo', 'from a'), 'from a')
    assert.equal(await send(b, a, 'echo', 'from b'), 'from b')

    const entry = b.trust.list().find(e => e.peerId === a.id)
    assert.equal(entry?.state, 'trusted')
    assert.equal(entry?.direction, 'inbound')
    assert.equal(entry?.reason, 'I am the weather agent of Alice')
    assert.equal(typeof entry?.since, 'number')
    assert.deepEqual(b.audit.types(a.id), ['trust.request-received', 'trust.approved'])
    assert.deepEqual(changes.filter(c => c.peerId === a.id).map(c => [c.previous, c.state]), [['none', 'pending-inbound'], ['pending-inbound', 'trusted']])
    assert.deepEqual(a.audit.types(b.id), ['trust.request-sent', 'trust.approved-by-peer'])
  })

  it('reject → not trusted on either side; later requests are refused', async () => {
    await c.request(b.id, 'let me in')
    assert.equal(b.trust.stateOf(c.id), 'pending-inbound')
    const rejected = await b.reject(c.id, 'no thanks')
    assert.equal(rejected.delivered, true)
    assert.equal(b.trust.stateOf(c.id), 'rejected')
    assert.equal(c.trust.stateOf(b.id), 'rejected-by-peer')
    assert.equal(b.trust.isTrusted(c.id), false)
    assert.equal(await codeOf(send(c, b)), 'UntrustedPeer')
    await assert.rejects(c.request(b.id, 'please?'), (err: Error) => err instanceof RefusedError && (err as RefusedError).remote === b.id)
    assert.equal(c.trust.stateOf(b.id), 'rejected-by-peer')
    await assert.rejects(b.trust.approve(c.id), NotPendingError)
    assert.ok(b.audit.types(c.id).includes('trust.rejected'))
    assert.ok(b.audit.types(c.id).includes('trust.request-refused'))
  })

  it('mutual requests establish trust with no manual step (one after the other)', async () => {
    await c.request(a.id, 'c asks a')
    assert.equal(a.trust.stateOf(c.id), 'pending-inbound')
    const result = await a.request(c.id, 'a asks c')
    assert.equal(result.state, 'trusted')
    assert.equal(a.trust.isTrusted(c.id), true)
    assert.equal(c.trust.isTrusted(a.id), true)
    assert.equal(a.trust.get(c.id)?.direction, 'mutual')
    assert.equal(c.trust.get(a.id)?.direction, 'mutual')
    assert.equal(await send(c, a, 'echo', 'mutual'), 'mutual')
    assert.ok(a.audit.types(c.id).includes('trust.mutual'))
    assert.ok(c.audit.types(a.id).includes('trust.mutual'))
  })

  it('mutual requests establish trust with no manual step (simultaneous)', async () => {
    const [x, y] = await Promise.all([d.request(b.id, 'd asks b'), b.request(d.id, 'b asks d')])
    assert.ok(x.state === 'trusted' || y.state === 'trusted')
    assert.equal(d.trust.isTrusted(b.id), true)
    assert.equal(b.trust.isTrusted(d.id), true)
    assert.equal(await send(d, b, 'echo', 'both'), 'both')
  })

  it('approve works only on a pending request', async () => {
    assert.equal(a.trust.stateOf(d.id), 'none')
    await assert.rejects(a.trust.approve(d.id), NotPendingError)
    await d.request(a.id, 'd asks a')
    assert.equal(d.trust.stateOf(a.id), 'pending-outbound')
    await a.trust.approve(d.id)
    assert.equal(d.trust.isTrusted(a.id), true)
    assert.equal(a.trust.isTrusted(d.id), true)
    await assert.rejects(a.trust.approve(d.id), NotPendingError)
  })

  it('an approval that never arrived is repaired when the requester asks again', async () => {
    const raw = await RawPeer.create()
    try {
      const first = await raw.exchange(b.addr, raw.frame({ type: 'request', to: b.id, reason: 'raw asks' }))
      assert.equal(first.type, 'pending')
      // the raw peer runs no trust service: the approval cannot be delivered
      const approved = await b.trust.approve(raw.peerId)
      assert.equal(approved.delivered, false)
      assert.match(approved.error ?? '', /./)
      assert.equal(b.trust.isTrusted(raw.peerId), true)
      const again = await raw.exchange(b.addr, raw.frame({ type: 'request', to: b.id, reason: 'raw asks again' }))
      assert.equal(again.type, 'approve')
    } finally {
      await raw.stop()
    }
  })
})
