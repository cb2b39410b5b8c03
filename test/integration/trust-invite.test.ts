import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createSigner, TRUST_SIGNATURE_SCHEME } from '../../src/protocol/index.ts'
import {
  encodeInvite,
  INVITE_SIGNATURE_SCHEME,
  InviteExpiredError,
  InviteInvalidError,
  InviteUsedUpError
} from '../../src/trust/index.ts'
import { codeOf, RawPeer, removeHome, restart, send, startNode } from './trust-helpers.ts'
import type { TestNode } from './trust-helpers.ts'

/** Change one base64url character of `code` at `index` to another valid one */
function alter (code: string, index: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const old = code[index] as string
  const replacement = alphabet[(alphabet.indexOf(old) + 17) % alphabet.length] as string
  return code.slice(0, index) + replacement + code.slice(index + 1)
}

describe('invites between real nodes', () => {
  let a: TestNode
  let b: TestNode
  let c: TestNode
  let raw: RawPeer

  before(async () => {
    ;[a, b, c, raw] = await Promise.all([startNode(), startNode(), startNode(), RawPeer.create()])
  })

  after(async () => {
    await raw.stop()
    for (const n of [a, b, c]) {
      await n.stop()
      await removeHome(n.home)
    }
  })

  it('an invite is accepted once: both sides trust each other and messages flow; a second use is InviteUsedUp', async () => {
    const invite = await a.trust.createInvite({ ttlMs: 60_000, uses: 1 })
    assert.match(invite.code, /^[A-Za-z0-9_-]+$/)
    assert.ok(invite.code.length < 300, `compact code (${invite.code.length} chars)`)
    assert.deepEqual(invite.addresses, a.libp2p.getMultiaddrs().map(m => m.toString().replace(`/p2p/${a.id}`, '')))
    assert.equal(a.trust.invites()[0]?.usesLeft, 1)

    // b has never been connected to a: the code alone is enough to find it
    const accepted = await b.trust.acceptInvite(invite.code)
    assert.equal(accepted.peerId, a.id)
    assert.equal(b.trust.isTrusted(a.id), true)
    assert.equal(a.trust.isTrusted(b.id), true)
    assert.equal(a.trust.get(b.id)?.via, 'invite')
    assert.equal(a.trust.invites()[0]?.usesLeft, 0)
    assert.equal(await send(b, a, 'echo', 'invited'), 'invited')
    assert.equal(await send(a, b, 'echo', 'inviter'), 'inviter')
    assert.ok(a.audit.types().includes('trust.invite-created'))
    assert.ok(a.audit.types(b.id).includes('trust.invite-used'))
    assert.ok(b.audit.types(a.id).includes('trust.invite-accepted'))

    // a second use, by another peer
    await assert.rejects(c.trust.acceptInvite(invite.code), InviteUsedUpError)
    assert.equal(c.trust.isTrusted(a.id), false)
    assert.equal(a.trust.isTrusted(c.id), false)
    assert.ok(a.audit.types(c.id).includes('trust.invite-refused'))
    // the peer that used it may present it again (e.g. after a lost reply) without using it up twice
    await b.trust.acceptInvite(invite.code)
    assert.equal(a.trust.invites()[0]?.usesLeft, 0)
  })

  it('uses left are persisted: a used-up invite stays used up after the inviter restarts', async () => {
    const invite = await a.trust.createInvite({ ttlMs: 60_000, uses: 2 })
    const d = await startNode()
    try {
      await d.trust.acceptInvite(invite.code)
      a = await restart(a)
      assert.equal(a.trust.invites().find(i => i.id === invite.id)?.usesLeft, 1)
      assert.equal(a.trust.isTrusted(d.id), true)
      await c.trust.acceptInvite(invite.code)
      const e = await startNode()
      try {
        await assert.rejects(e.trust.acceptInvite(invite.code), InviteUsedUpError)
      } finally {
        await e.stop()
        await removeHome(e.home)
      }
    } finally {
      await d.stop()
      await removeHome(d.home)
    }
  })

  it('an expired invite is refused with InviteExpired, locally and by the inviter', async () => {
    const invite = await a.trust.createInvite({ ttlMs: 1, uses: 1 })
    await new Promise(resolve => setTimeout(resolve, 5))
    await assert.rejects(b.trust.acceptInvite(invite.code), InviteExpiredError)
    // presented anyway, the inviter refuses it too
    const reply = await raw.exchange(a.addr, raw.frame({ type: 'invite', to: a.id, invite: invite.code }))
    assert.equal(reply.type, 'error')
    assert.equal(reply.code, 'InviteExpired')
    assert.equal(a.trust.isTrusted(raw.peerId), false)
  })

  it('a forged invite (naming the inviter, signed by another key) is refused with InviteInvalid, locally and by the inviter', async () => {
    const mallory = await generateKeyPair('Ed25519')
    const signer = createSigner(mallory, TRUST_SIGNATURE_SCHEME)
    // Mallory's signer, but the code names a's peer ID
    const forgedSigner = { peerId: a.peerId, from: a.peerId.toMultihash().bytes, sign: (p: Uint8Array) => createSigner(mallory, INVITE_SIGNATURE_SCHEME).sign(p) }
    const forged = encodeInvite({ secret: randomBytes(16), expiresAt: Date.now() + 60_000, uses: 5, addresses: [a.addr] }, forgedSigner)
    await assert.rejects(c.trust.acceptInvite(forged), InviteInvalidError)
    const reply = await raw.exchange(a.addr, raw.frame({ type: 'invite', to: a.id, invite: forged }))
    assert.equal(reply.code, 'InviteInvalid')
    // a genuine invite of another node presented to a: InviteInvalid too
    const others = encodeInvite({ secret: randomBytes(16), expiresAt: Date.now() + 60_000, uses: 5, addresses: [a.addr] }, createSigner(mallory, INVITE_SIGNATURE_SCHEME))
    assert.equal((await raw.exchange(a.addr, raw.frame({ type: 'invite', to: a.id, invite: others }))).code, 'InviteInvalid')
    // a handshake signature is not an invite signature (domain separation)
    const crossSigned = encodeInvite({ secret: randomBytes(16), expiresAt: Date.now() + 60_000, uses: 5, addresses: [] }, signer)
    assert.doesNotThrow(() => peerIdFromPrivateKey(mallory))
    await assert.rejects(c.trust.acceptInvite(crossSigned), InviteInvalidError)
    // an invite a signed itself but never stored (e.g. issued by a's key elsewhere): InviteInvalid
    const unknown = encodeInvite({ secret: randomBytes(16), expiresAt: Date.now() + 60_000, uses: 5, addresses: [a.addr] }, createSigner(a.key, INVITE_SIGNATURE_SCHEME))
    assert.equal(await codeOf(c.trust.acceptInvite(unknown)), 'InviteInvalid')
    assert.equal(a.trust.isTrusted(c.id), true) // from the previous test, unchanged
    assert.equal(a.trust.isTrusted(raw.peerId), false)
  })

  it('an altered invite (any one character changed) is refused with InviteInvalid and uses nothing up', async () => {
    const invite = await a.trust.createInvite({ ttlMs: 60_000, uses: 1 })
    const positions = [0, 5, 20, 30, 45, 60, Math.floor(invite.code.length / 2), invite.code.length - 30, invite.code.length - 2, invite.code.length - 1]
    for (const i of positions) {
      const altered = alter(invite.code, i)
      assert.notEqual(altered, invite.code)
      await assert.rejects(b.trust.acceptInvite(altered), InviteInvalidError, `position ${i}`)
    }
    // presented to the inviter directly
    const reply = await raw.exchange(a.addr, raw.frame({ type: 'invite', to: a.id, invite: alter(invite.code, 40) }))
    assert.equal(reply.code, 'InviteInvalid')
    assert.equal(a.trust.invites().find(i => i.id === invite.id)?.usesLeft, 1)
    // the genuine code still works
    await raw.exchange(a.addr, raw.frame({ type: 'invite', to: a.id, invite: invite.code })).then(r => assert.equal(r.type, 'approve'))
    assert.equal(a.trust.isTrusted(raw.peerId), true)
  })
})
