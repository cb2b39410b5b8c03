import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  BadSignatureError,
  createSigner,
  FutureMessageError,
  MalformedFrameError,
  ReplayCache,
  ReplayError,
  SenderMismatchError,
  StaleMessageError,
  TRUST_SIGNATURE_SCHEME,
  UnsupportedVersionError,
  WrongRecipientError
} from '../../../src/protocol/index.ts'
import {
  checkReason,
  decodeHandshake,
  decodeInvite,
  encodeHandshake,
  encodeInvite,
  INVITE_SIGNATURE_SCHEME,
  InvalidReasonError,
  InviteInvalidError,
  MAX_REASON_BYTES,
  openHandshake,
  ReasonTooLongError
} from '../../../src/trust/index.ts'
import type { MessageSigner } from '../../../src/protocol/index.ts'
import type { PeerId } from '@libp2p/interface'

interface Who { peerId: PeerId, trust: MessageSigner, invite: MessageSigner }

async function who (): Promise<Who> {
  const key = await generateKeyPair('Ed25519')
  return { peerId: peerIdFromPrivateKey(key), trust: createSigner(key, TRUST_SIGNATURE_SCHEME), invite: createSigner(key, INVITE_SIGNATURE_SCHEME) }
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

describe('handshake frames', () => {
  let alice: Who
  let bob: Who
  const ctx = (remote: PeerId, local: PeerId, replayCache = new ReplayCache()): Parameters<typeof openHandshake>[1] =>
    ({ local, remote, replayCache, windowMs: 60_000, maxSkewMs: 30_000 })

  before(async () => {
    alice = await who()
    bob = await who()
  })

  it('round-trips: version byte, JSON payload in a fixed key order, 64-byte signature', () => {
    const body = encodeHandshake({ type: 'request', to: bob.peerId, reason: 'hello', ts: 1_700_000_000_000, nonce: 'AAAAAAAAAAAAAAAAAAAAAA' }, alice.trust)
    assert.equal(body[0], 1)
    const payload = new TextDecoder().decode(body.subarray(1, body.length - 64))
    assert.equal(payload, `{"v":1,"type":"request","from":"${alice.peerId.toString()}","to":"${bob.peerId.toString()}","nonce":"AAAAAAAAAAAAAAAAAAAAAA","ts":1700000000000,"re":"","reason":"hello"}`)
    const { message } = decodeHandshake(body)
    assert.equal(message.reason, 'hello')
    const opened = openHandshake(encodeHandshake({ type: 'request', to: bob.peerId, reason: 'hi' }, alice.trust), ctx(alice.peerId, bob.peerId))
    assert.equal(opened.type, 'request')
  })

  it('checks sender, recipient, signature, freshness and replay, in that order', () => {
    const cache = new ReplayCache()
    const frame = encodeHandshake({ type: 'request', to: bob.peerId, reason: 'x' }, alice.trust)
    assert.throws(() => openHandshake(frame, ctx(bob.peerId, bob.peerId, cache)), SenderMismatchError)
    assert.throws(() => openHandshake(frame, ctx(alice.peerId, alice.peerId, cache)), WrongRecipientError)
    openHandshake(frame, ctx(alice.peerId, bob.peerId, cache))
    assert.throws(() => openHandshake(frame, ctx(alice.peerId, bob.peerId, cache)), ReplayError)
    const bad = Uint8Array.from(frame)
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1
    assert.throws(() => openHandshake(bad, ctx(alice.peerId, bob.peerId)), BadSignatureError)
    const old = encodeHandshake({ type: 'request', to: bob.peerId, reason: 'x', ts: Date.now() - 61_000 }, alice.trust)
    assert.throws(() => openHandshake(old, ctx(alice.peerId, bob.peerId)), StaleMessageError)
    const future = encodeHandshake({ type: 'request', to: bob.peerId, reason: 'x', ts: Date.now() + 31_000 }, alice.trust)
    assert.throws(() => openHandshake(future, ctx(alice.peerId, bob.peerId)), FutureMessageError)
    // an agent-message or invite signature over the same payload is not a trust signature
    const inviteSigned = Uint8Array.from(frame)
    inviteSigned.set(alice.invite.sign(frame.subarray(1, frame.length - 64)), frame.length - 64)
    assert.throws(() => openHandshake(inviteSigned, ctx(alice.peerId, bob.peerId)), BadSignatureError)
  })

  it('succession: the record rides in its own field, only in a succession message', () => {
    const record = 'eyJwYXlsb2FkIjoiIn0'
    const body = encodeHandshake({ type: 'succession', to: bob.peerId, succession: record }, alice.trust)
    const m = openHandshake(body, ctx(alice.peerId, bob.peerId))
    assert.equal(m.type, 'succession')
    assert.equal(m.succession, record)
    const raw = (fields: Record<string, unknown>): Uint8Array => {
      const payload = new TextEncoder().encode(JSON.stringify({ v: 1, from: alice.peerId.toString(), to: bob.peerId.toString(), nonce: 'AAAAAAAAAAAAAAAAAAAAAA', ts: Date.now(), re: '', ...fields }))
      const out = new Uint8Array(1 + payload.length + 64)
      out[0] = 1
      out.set(payload, 1)
      return out
    }
    assert.throws(() => decodeHandshake(raw({ type: 'succession' })), MalformedFrameError, 'the record is required')
    assert.throws(() => decodeHandshake(raw({ type: 'succession', succession: 'not base64url!' })), MalformedFrameError)
    assert.throws(() => decodeHandshake(raw({ type: 'succession', succession: 'A'.repeat(2049) })), MalformedFrameError)
    assert.throws(() => decodeHandshake(raw({ type: 'request', reason: 'x', succession: record })), MalformedFrameError, 'not in other messages')
  })

  it('refuses malformed payloads', () => {
    const sign = (json: string, version = 1): Uint8Array => {
      const payload = new TextEncoder().encode(json)
      return Uint8Array.from([version, ...payload, ...alice.trust.sign(payload)])
    }
    const base = { v: 1, type: 'request', from: alice.peerId.toString(), to: bob.peerId.toString(), nonce: 'AAAAAAAAAAAAAAAAAAAAAA', ts: Date.now(), re: '', reason: 'x' }
    assert.throws(() => decodeHandshake(sign(JSON.stringify(base), 2)), UnsupportedVersionError)
    assert.throws(() => decodeHandshake(sign(JSON.stringify({ ...base, v: 2 }))), UnsupportedVersionError)
    for (const bad of [
      '[1,2]', 'null', '{', JSON.stringify({ ...base, extra: 1 }), JSON.stringify({ ...base, type: 'hug' }),
      JSON.stringify({ ...base, nonce: 'short' }), JSON.stringify({ ...base, nonce: 'AAAAAAAAAAAAAAAAAAAAAB' }), // non-canonical base64url
      JSON.stringify({ ...base, ts: -1 }), JSON.stringify({ ...base, ts: 1.5 }), JSON.stringify({ ...base, re: 'x' }),
      JSON.stringify({ ...base, reason: undefined }), JSON.stringify({ ...base, type: 'approve' }), // approve has no reason
      JSON.stringify({ ...base, type: 'error', code: '!!', message: '' })
    ]) {
      assert.throws(() => decodeHandshake(sign(bad)), MalformedFrameError, bad)
    }
    assert.throws(() => decodeHandshake(new Uint8Array(10)), MalformedFrameError)
    assert.throws(() => decodeHandshake(sign(JSON.stringify({ ...base, reason: 'x'.repeat(MAX_REASON_BYTES + 1) }))), ReasonTooLongError)
    assert.throws(() => decodeHandshake(sign(JSON.stringify({ ...base, reason: 5 }))), InvalidReasonError)
  })

  it('reasons: ≤ 1 KiB of UTF-8, no controls but TAB/LF, no bidi overrides, no lone surrogates', () => {
    assert.equal(checkReason('x'.repeat(MAX_REASON_BYTES)), 'x'.repeat(MAX_REASON_BYTES))
    assert.equal(checkReason('line one\n\tline two — ünïcödé ✓'), 'line one\n\tline two — ünïcödé ✓')
    assert.throws(() => checkReason('x'.repeat(MAX_REASON_BYTES + 1)), ReasonTooLongError)
    assert.throws(() => checkReason('€'.repeat(342)), ReasonTooLongError) // 1026 bytes
    for (const bad of ['\u0000', 'a\rb', '\u001b[31m', '\u007f', '\u0085', '\u202e', '\u2066', '\ud800']) {
      assert.throws(() => checkReason(bad), InvalidReasonError, JSON.stringify(bad))
    }
  })
})

describe('invite codes', () => {
  let alice: Who
  let mallory: Who
  let code: string
  const secret = randomBytes(16)
  const addresses = [multiaddr('/ip4/127.0.0.1/tcp/4001'), multiaddr('/ip6/::1/tcp/4001')]

  before(async () => {
    alice = await who()
    mallory = await who()
    code = encodeInvite({ secret, expiresAt: 1_800_000_000_000, uses: 3, addresses: [addresses[0]!.encapsulate(`/p2p/${alice.peerId.toString()}`), addresses[1]!] }, alice.invite)
  })

  it('round-trips, compact, without the inviter\'s own /p2p suffix', () => {
    assert.match(code, /^[A-Za-z0-9_-]+$/)
    assert.ok(code.length < 250, `${code.length} chars`)
    const invite = decodeInvite(code)
    assert.ok(invite.inviter.equals(alice.peerId))
    assert.deepEqual(invite.addresses.map(a => a.toString()), addresses.map(a => a.toString()))
    assert.equal(invite.expiresAt, 1_800_000_000_000)
    assert.equal(invite.uses, 3)
    assert.deepEqual(Buffer.from(invite.secret), secret)
    // surrounding whitespace (copy-paste) is tolerated
    assert.ok(decodeInvite(`  ${code}\n`).inviter.equals(alice.peerId))
  })

  it('every single-character change is refused as InviteInvalid', () => {
    for (let i = 0; i < code.length; i++) {
      for (const step of [1, 31]) {
        const old = code[i] as string
        const changed = code.slice(0, i) + (BASE64URL[(BASE64URL.indexOf(old) + step) % 64] as string) + code.slice(i + 1)
        assert.throws(() => decodeInvite(changed), InviteInvalidError, `position ${i}`)
      }
    }
    // dropped and added characters
    assert.throws(() => decodeInvite(code.slice(0, -1)), InviteInvalidError)
    assert.throws(() => decodeInvite(code + 'A'), InviteInvalidError)
    assert.throws(() => decodeInvite(code.slice(1)), InviteInvalidError)
    for (const junk of ['', '!!!', 'a+b/c=', 'x'.repeat(5000)]) assert.throws(() => decodeInvite(junk), InviteInvalidError)
  })

  it('refuses codes signed by another key, or with a handshake signature', () => {
    const asAlice = { peerId: alice.peerId, from: alice.peerId.toMultihash().bytes, sign: mallory.invite.sign }
    assert.throws(() => decodeInvite(encodeInvite({ secret, expiresAt: 1_800_000_000_000, uses: 1, addresses: [] }, asAlice)), InviteInvalidError)
    assert.throws(() => decodeInvite(encodeInvite({ secret, expiresAt: 1_800_000_000_000, uses: 1, addresses: [] }, alice.trust)), InviteInvalidError)
    // mallory's own invite is valid — as mallory's
    assert.ok(decodeInvite(encodeInvite({ secret, expiresAt: 1_800_000_000_000, uses: 1, addresses: [] }, mallory.invite)).inviter.equals(mallory.peerId))
  })

  it('validates what it encodes', () => {
    assert.throws(() => encodeInvite({ secret: randomBytes(8), expiresAt: 1, uses: 1, addresses: [] }, alice.invite), InviteInvalidError)
    assert.throws(() => encodeInvite({ secret, expiresAt: 1, uses: 0, addresses: [] }, alice.invite), InviteInvalidError)
    assert.throws(() => encodeInvite({ secret, expiresAt: 1, uses: 1001, addresses: [] }, alice.invite), InviteInvalidError)
    assert.throws(() => encodeInvite({ secret, expiresAt: 1, uses: 1, addresses: Array(9).fill(addresses[0]) }, alice.invite), InviteInvalidError)
  })
})
