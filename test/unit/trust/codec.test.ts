import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  BadSignatureError,
  createSigner,
  decodeMessage,
  decodeSignedMessage,
  FutureMessageError,
  MalformedFrameError,
  MESSAGE_SIGNATURE_SCHEME,
  ReplayCache,
  ReplayError,
  SenderMismatchError,
  StaleMessageError,
  TRUST_SIGNATURE_SCHEME,
  WrongRecipientError
} from '../../../src/protocol/index.ts'
import {
  checkReason,
  decodeInvite,
  decodeTrustFrame,
  encodeInvite,
  ERROR_CONTENT_TYPE,
  INVITE_SIGNATURE_SCHEME,
  InvalidReasonError,
  InviteInvalidError,
  MAX_REASON_BYTES,
  openTrustFrame,
  ReasonTooLongError,
  readHandshake,
  sealTrustFrame,
  TEXT_CONTENT_TYPE,
  TRUST_PROTOCOL
} from '../../../src/trust/index.ts'
import type { Message, MessageSigner } from '../../../src/protocol/index.ts'
import type { PeerId } from '@libp2p/interface'

interface Who { peerId: PeerId, trust: MessageSigner, invite: MessageSigner, msg: MessageSigner }

async function who (): Promise<Who> {
  const key = await generateKeyPair('Ed25519')
  return { peerId: peerIdFromPrivateKey(key), trust: createSigner(key, TRUST_SIGNATURE_SCHEME), invite: createSigner(key, INVITE_SIGNATURE_SCHEME), msg: createSigner(key, MESSAGE_SIGNATURE_SCHEME) }
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const enc = (s: string): Uint8Array => new TextEncoder().encode(s)

describe('trust frames: agent-protocol envelopes under the trust scheme', () => {
  let alice: Who
  let bob: Who
  const ctx = (remote: PeerId, local: PeerId, replayCache = new ReplayCache()): Parameters<typeof openTrustFrame>[1] =>
    ({ localPeer: local, remotePeer: remote, replayCache, windowMs: 60_000, maxSkewMs: 30_000 })
  /** an envelope payload with every field chosen by the test, for the content checks */
  const envelope = (over: Partial<Message>): Message => ({
    version: 1,
    from: alice.peerId.toMultihash().bytes,
    to: bob.peerId.toMultihash().bytes,
    service: 'request',
    kind: 'request',
    id: 'id-1',
    inReplyTo: '',
    nonce: new Uint8Array(randomBytes(16)),
    timestamp: Date.now(),
    ttl: 0,
    contentType: TEXT_CONTENT_TYPE,
    token: new Uint8Array(0),
    body: enc('hi'),
    ...over
  })

  before(async () => {
    alice = await who()
    bob = await who()
  })

  it('the protocol is 2.0.0 and its signatures bind that payload type', () => {
    assert.equal(TRUST_PROTOCOL, '/agentnet/trust/2.0.0')
    assert.equal(TRUST_SIGNATURE_SCHEME.domain, 'agentnet-trust')
    assert.equal(TRUST_SIGNATURE_SCHEME.payloadType, '/agentnet/trust/2.0.0')
  })

  it('a request is a SignedMessage: service = type, kind request, the reason as a text body', () => {
    const frame = sealTrustFrame({ type: 'request', to: bob.peerId, reason: 'hello', id: 'r-1', ts: 1_700_000_000_000 }, alice.trust)
    assert.equal(frame[0], 0x0a, 'SignedMessage field 1')
    const m = decodeMessage(decodeSignedMessage(frame).payload)
    assert.equal(m.version, 1)
    assert.equal(m.service, 'request')
    assert.equal(m.kind, 'request')
    assert.equal(m.id, 'r-1')
    assert.equal(m.inReplyTo, '')
    assert.equal(m.timestamp, 1_700_000_000_000)
    assert.equal(m.contentType, TEXT_CONTENT_TYPE)
    assert.equal(new TextDecoder().decode(m.body), 'hello')
    const read = decodeTrustFrame(frame)
    assert.deepEqual({ type: read.type, initiator: read.initiator, from: read.from, to: read.to, reason: read.reason }, { type: 'request', initiator: true, from: alice.peerId.toString(), to: bob.peerId.toString(), reason: 'hello' })
    // replies: kind response (error for error), in_reply_to = the id answered
    const reply = decodeMessage(decodeSignedMessage(sealTrustFrame({ type: 'pending', to: alice.peerId, re: 'r-1' }, bob.trust)).payload)
    assert.deepEqual([reply.kind, reply.service, reply.inReplyTo, reply.body.length, reply.contentType], ['response', 'pending', 'r-1', 0, ''])
    const error = decodeMessage(decodeSignedMessage(sealTrustFrame({ type: 'error', to: alice.peerId, re: '', code: 'Busy', message: 'later' }, bob.trust)).payload)
    assert.deepEqual([error.kind, error.service, error.contentType, new TextDecoder().decode(error.body)], ['error', 'error', ERROR_CONTENT_TYPE, '{"code":"Busy","message":"later"}'])
    const opened = openTrustFrame(sealTrustFrame({ type: 'request', to: bob.peerId, reason: 'hi' }, alice.trust), ctx(alice.peerId, bob.peerId))
    assert.equal(opened.type, 'request')
    assert.equal(opened.reason, 'hi')
  })

  it('checks sender, recipient, signature, freshness and replay with the envelope\'s error classes', () => {
    const cache = new ReplayCache()
    const frame = sealTrustFrame({ type: 'request', to: bob.peerId, reason: 'x' }, alice.trust)
    assert.throws(() => openTrustFrame(frame, ctx(bob.peerId, bob.peerId, cache)), SenderMismatchError)
    assert.throws(() => openTrustFrame(frame, ctx(alice.peerId, alice.peerId, cache)), WrongRecipientError)
    openTrustFrame(frame, ctx(alice.peerId, bob.peerId, cache))
    assert.throws(() => openTrustFrame(frame, ctx(alice.peerId, bob.peerId, cache)), ReplayError)
    const bad = Uint8Array.from(frame)
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 1
    assert.throws(() => openTrustFrame(bad, ctx(alice.peerId, bob.peerId)), BadSignatureError)
    const old = sealTrustFrame({ type: 'request', to: bob.peerId, reason: 'x', ts: Date.now() - 61_000 }, alice.trust)
    assert.throws(() => openTrustFrame(old, ctx(alice.peerId, bob.peerId)), StaleMessageError)
    const future = sealTrustFrame({ type: 'request', to: bob.peerId, reason: 'x', ts: Date.now() + 31_000 }, alice.trust)
    assert.throws(() => openTrustFrame(future, ctx(alice.peerId, bob.peerId)), FutureMessageError)
    // the same payload signed as an agent message or as an invite is not a trust frame, and the reverse
    const payload = decodeSignedMessage(frame).payload
    for (const other of [alice.msg, alice.invite]) {
      const resigned = Uint8Array.from(frame)
      resigned.set(other.sign(payload), frame.length - 64)
      assert.throws(() => openTrustFrame(resigned, ctx(alice.peerId, bob.peerId)), BadSignatureError)
    }
    // a trust-protocol 1.0.0 frame (0x01 || JSON || signature) is not an envelope
    const v1 = Uint8Array.from([1, ...enc('{"v":1,"type":"request"}'), ...alice.trust.sign(enc('{"v":1,"type":"request"}'))])
    assert.throws(() => openTrustFrame(v1, ctx(alice.peerId, bob.peerId)), MalformedFrameError)
  })

  it('succession and invite: the record or code is the body, required, base64url, bounded', () => {
    const record = 'eyJwYXlsb2FkIjoiIn0'
    const m = openTrustFrame(sealTrustFrame({ type: 'succession', to: bob.peerId, succession: record }, alice.trust), ctx(alice.peerId, bob.peerId))
    assert.equal(m.type, 'succession')
    assert.equal(m.succession, record)
    assert.throws(() => readHandshake(envelope({ service: 'succession', body: new Uint8Array(0), contentType: '' })), MalformedFrameError, 'the record is required')
    assert.throws(() => readHandshake(envelope({ service: 'succession', body: enc('not base64url!') })), MalformedFrameError)
    assert.throws(() => readHandshake(envelope({ service: 'succession', body: enc('A'.repeat(2049)) })), MalformedFrameError)
    assert.throws(() => readHandshake(envelope({ service: 'invite', body: new Uint8Array(0), contentType: '' })), MalformedFrameError)
    assert.equal(readHandshake(envelope({ service: 'invite', body: enc('AAAA') })).invite, 'AAAA')
  })

  it('refuses envelopes that are not trust messages', () => {
    for (const [what, over] of [
      ['unknown type', { service: 'hug' }],
      ['a reply type as an initiator', { service: 'pending', body: new Uint8Array(0), contentType: '' }],
      ['an initiator type as a reply', { service: 'request', kind: 'response', inReplyTo: 'x' }],
      ['one-way kind', { kind: 'oneway' }],
      ['error kind for a non-error', { service: 'ok', kind: 'error', inReplyTo: 'x', body: new Uint8Array(0), contentType: '' }],
      ['an initiator answering something', { inReplyTo: 'x' }],
      ['a ttl', { ttl: 5 }],
      ['a token', { token: enc('t') }],
      ['another content type', { contentType: 'application/json' }],
      ['a body where none belongs', { service: 'approve' }],
      ['error body not JSON', { service: 'error', kind: 'error', inReplyTo: 'x', contentType: ERROR_CONTENT_TYPE, body: enc('{') }],
      ['error body with extra keys', { service: 'error', kind: 'error', inReplyTo: 'x', contentType: ERROR_CONTENT_TYPE, body: enc('{"code":"Busy","message":"","x":1}') }],
      ['error code not letters', { service: 'error', kind: 'error', inReplyTo: 'x', contentType: ERROR_CONTENT_TYPE, body: enc('{"code":"!!","message":""}') }],
      ['error without its content type', { service: 'error', kind: 'error', inReplyTo: 'x', body: enc('{"code":"Busy","message":""}') }]
    ] as Array<[string, Partial<Message>]>) {
      assert.throws(() => readHandshake(envelope(over)), MalformedFrameError, what)
    }
    assert.throws(() => readHandshake(envelope({ body: enc('x'.repeat(MAX_REASON_BYTES + 1)) })), ReasonTooLongError)
    assert.throws(() => readHandshake(envelope({ body: Uint8Array.from([0xff, 0xfe]) })), InvalidReasonError)
    assert.throws(() => readHandshake(envelope({ body: enc('hi\u001b[2J') })), InvalidReasonError)
    // well-formed ones pass
    assert.equal(readHandshake(envelope({ service: 'approve', body: new Uint8Array(0), contentType: '' })).type, 'approve')
    assert.equal(readHandshake(envelope({ service: 'reject', body: new Uint8Array(0), contentType: '' })).reason, undefined)
    assert.deepEqual(readHandshake(envelope({ service: 'error', kind: 'error', contentType: ERROR_CONTENT_TYPE, inReplyTo: 'x', body: enc('{"code":"Busy","message":"later"}') })).code, 'Busy')
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
