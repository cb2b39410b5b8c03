import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { RevokedByPeerError, TRUST_PROTOCOL, UntrustedPeerError } from '../../src/trust/index.ts'
import { codeOf, connect, encoder, removeHome, send, startNode } from './trust-helpers.ts'
import type { TestNode } from './trust-helpers.ts'

/**
 * Assert that `target` refuses a connection from `dialer`: the dial fails, or
 * (the gater decides on the inbound side once Noise is done) the connection
 * the dialer sees is closed at once and no stream gets through.
 */
async function assertRefused (dialer: TestNode, target: TestNode): Promise<void> {
  try {
    const connection = await dialer.libp2p.dial(target.addr)
    const deadline = Date.now() + 2000
    while (connection.status === 'open' && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
    assert.notEqual(connection.status, 'open', 'the connection is closed by the gater')
  } catch {
    // refused outright
  }
  assert.equal(target.libp2p.getConnections(dialer.peerId).length, 0)
  await assert.rejects(dialer.libp2p.dialProtocol(target.addr, TRUST_PROTOCOL, { signal: AbortSignal.timeout(2000) }))
}

async function waitFor (check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

async function trustEachOther (x: TestNode, y: TestNode): Promise<void> {
  await connect(x, y)
  await x.request(y.id, 'pair')
  await y.trust.approve(x.id)
  assert.equal(x.trust.isTrusted(y.id) && y.trust.isTrusted(x.id), true)
}

describe('revocation between real nodes', () => {
  let a: TestNode
  let b: TestNode

  before(async () => {
    ;[a, b] = await Promise.all([startNode(), startNode()])
    await trustEachOther(a, b)
  })

  after(async () => {
    for (const n of [a, b]) {
      await n.stop()
      await removeHome(n.home)
    }
  })

  it('revoke during a stream of messages: connection closed at once, next message refused on both sides', async () => {
    // b streams messages to a
    let delivered = 0
    const failures: string[] = []
    let streaming = true
    const stream = (async () => {
      while (streaming) {
        try {
          const { body } = await b.outbox.admit({ kind: 'oneway', body: encoder.encode(`m${delivered}`), contentType: 'text/plain' })
          await b.messaging.send(a.peerId, 'echo', body, 'text/plain', { oneway: true, timeoutMs: 1000 })
          delivered++
        } catch (err) {
          failures.push(String((err as { code?: unknown }).code ?? (err as Error).message))
        }
        await new Promise(resolve => setTimeout(resolve, 2))
      }
    })()
    try {
      while (delivered < 20) await new Promise(resolve => setTimeout(resolve, 5))
      const closed = new Promise<number>(resolve => {
        const onClose = (evt: CustomEvent): void => {
          if (evt.detail.remotePeer.equals(b.peerId)) {
            a.libp2p.removeEventListener('connection:close', onClose)
            resolve(performance.now())
          }
        }
        a.libp2p.addEventListener('connection:close', onClose)
      })
      const started = performance.now()
      const result = await a.revoke(b.id, 'compromised')
      const revokeMs = performance.now() - started
      const closedAt = await Promise.race([closed, new Promise<number>(resolve => setTimeout(() => resolve(Infinity), 3000))])
      assert.ok(closedAt - started < 1000, `connection closed ${Math.round(closedAt - started)} ms after revoke`)
      assert.ok(revokeMs < 1000, `revoke took ${Math.round(revokeMs)} ms`)
      assert.equal(result.state, 'revoked')
      assert.equal(result.delivered, true)
      assert.ok(result.closedConnections >= 1)
      assert.equal(a.libp2p.getConnections(b.peerId).length, 0)

      // the revoked side recorded it before a closed the connection
      assert.equal(b.trust.stateOf(a.id), 'revoked-by-peer')
      assert.equal(b.trust.get(a.id)?.note, 'compromised')
      assert.deepEqual(a.revoked, [b.id])

      await new Promise(resolve => setTimeout(resolve, 50))
    } finally {
      streaming = false
      await stream
    }
    assert.ok(delivered >= 20)
    // the messages b kept sending after the revocation were refused by a
    assert.ok(failures.includes('UntrustedPeer'), `failures: ${failures.join(', ')}`)

    // b's agents learn at once, without a round trip
    assert.throws(() => b.trust.outboundCheck(a.id), (err: Error) => err instanceof RevokedByPeerError && (err as RevokedByPeerError).code === 'RevokedByPeer')
    // and if b sends anyway, a's gate refuses it (a new connection is opened, the message refused)
    assert.equal(await codeOf(send(b, a, 'echo', 'after')), 'UntrustedPeer')
    // the other direction: a refuses to send locally, and b refuses a's messages
    assert.throws(() => a.trust.outboundCheck(b.id), UntrustedPeerError)
    assert.equal(await codeOf(send(a, b, 'echo', 'after')), 'UntrustedPeer')
    assert.equal(a.trust.isTrusted(b.id), false)
    assert.equal(b.trust.isTrusted(a.id), false)
    // a refuses b's new requests; b's new request therefore fails with Refused
    assert.equal(await codeOf(b.request(a.id, 'sorry')), 'Refused')

    assert.ok(a.audit.types(b.id).includes('trust.revoked'))
    assert.ok(b.audit.types(a.id).includes('trust.revoked-by-peer'))
    const entry = a.trust.list().find(e => e.peerId === b.id)
    assert.equal(entry?.state, 'revoked')
  })

  it('trust can be restored after a revocation by a new request from the side that revoked', async () => {
    const result = await a.request(b.id, 'let us start over')
    assert.equal(result.state, 'pending-outbound')
    assert.equal(b.trust.stateOf(a.id), 'pending-inbound')
    await b.trust.approve(a.id)
    assert.equal(a.trust.isTrusted(b.id), true)
    assert.equal(b.trust.isTrusted(a.id), true)
    assert.doesNotThrow(() => b.trust.outboundCheck(a.id))
    assert.equal(await send(b, a, 'echo', 'again'), 'again')
  })
})

describe('strict mode (connection gater)', () => {
  let s: TestNode
  let friend: TestNode
  let stranger: TestNode
  let bootstrap: TestNode

  before(async () => {
    ;[friend, stranger, bootstrap] = await Promise.all([startNode(), startNode(), startNode()])
    s = await startNode({ gater: true, allowPeers: [bootstrap.id], init: { strict: true, staticPeers: [friend.id] } })
  })

  after(async () => {
    for (const n of [s, friend, stranger, bootstrap]) {
      await n.stop()
      await removeHome(n.home)
    }
  })

  it('refuses connections from peers that are neither trusted nor allowed; admits trusted and allowed ones', async () => {
    assert.equal(s.trust.strict, true)
    await assertRefused(stranger, s)
    await friend.libp2p.dial(s.addr)
    await bootstrap.libp2p.dial(s.addr)
    await waitFor(() => s.libp2p.getConnections(friend.peerId).length === 1, 'the static peer connection')
    await waitFor(() => s.libp2p.getConnections(bootstrap.peerId).length === 1, 'the allowed peer connection')
    assert.equal(await send(friend, s, 'echo', 'static'), 'static')
    assert.equal(s.trust.admitsInbound(stranger.peerId), false)
  })

  it('admits a peer this node asked for trust, so its approval can come back', async () => {
    await s.libp2p.dial(stranger.addr)
    await s.request(stranger.id, 'strict node asks')
    await s.libp2p.hangUp(stranger.peerId)
    const result = await stranger.trust.approve(s.id)
    assert.equal(result.delivered, true)
    assert.equal(s.trust.isTrusted(stranger.id), true)
  })

  it('admits unknown peers while it holds a live invite, and refuses revoked ones', async () => {
    const other = await startNode()
    try {
      await assertRefused(other, s)
      const invite = await s.trust.createInvite({ ttlMs: 60_000, uses: 1 })
      await other.trust.acceptInvite(invite.code)
      assert.equal(s.trust.isTrusted(other.id), true)
      await s.revoke(other.id)
      await assertRefused(other, s)
      // the invite is used up: strangers are refused again
      const late = await startNode()
      try {
        await assertRefused(late, s)
      } finally {
        await late.stop()
        await removeHome(late.home)
      }
    } finally {
      await other.stop()
      await removeHome(other.home)
    }
  })
})
