import assert from 'node:assert/strict'
import { describe, it, before } from 'node:test'
import {
  BadSignatureError,
  BodyTooLargeError,
  decodeMessage,
  decodeSignedMessage,
  DEFAULT_MAX_BODY_BYTES,
  encodeMessage,
  encodeSignedMessage,
  FutureMessageError,
  InvalidArgumentError,
  MalformedFrameError,
  openEnvelope,
  ProtocolError,
  ReplayCache,
  ReplayError,
  sealEnvelope,
  SenderMismatchError,
  StaleMessageError,
  UnsupportedKeyError,
  UnsupportedVersionError,
  WrongRecipientError
} from '../../../src/protocol/index.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { frameOf, identity, message, NOW, prng, randomInt } from './helpers.ts'
import type { Identity } from './helpers.ts'
import type { Message, OpenContext } from '../../../src/protocol/index.ts'

const WINDOW = 60_000
const SKEW = 30_000

describe('openEnvelope / sealEnvelope', () => {
  let alice: Identity
  let bob: Identity
  let carol: Identity
  let mallory: Identity

  before(async () => {
    ;[alice, bob, carol, mallory] = await Promise.all([identity(), identity(), identity(), identity()])
  })

  /** Bob receiving from `remote` (default Alice) at NOW */
  function ctx (overrides: Partial<OpenContext> = {}): OpenContext {
    return { localPeer: bob.peerId, remotePeer: alice.peerId, now: NOW, replayCache: new ReplayCache(), ...overrides }
  }

  /** Re-encode a frame's payload with `change` applied, keeping the original signature */
  function tamper (frame: Uint8Array, change: (m: Message) => void): Uint8Array {
    const { payload, signature } = decodeSignedMessage(frame)
    const msg = decodeMessage(payload)
    const copy: Message = { ...msg, from: Uint8Array.from(msg.from), to: Uint8Array.from(msg.to), nonce: Uint8Array.from(msg.nonce), body: Uint8Array.from(msg.body) }
    change(copy)
    return encodeSignedMessage({ payload: encodeMessage(copy), signature })
  }

  it('seals a frame that opens on the other side', () => {
    const body = new TextEncoder().encode('{"q":1}')
    const frame = sealEnvelope({ to: bob.peerId, service: 'search', kind: 'request', id: 'r1', ttl: 1500, contentType: 'application/json', body, timestamp: NOW, token: Uint8Array.of(5) }, alice.signer)
    const opened = openEnvelope(frame, ctx())
    const m = opened.message
    assert.equal(m.version, 1)
    assert.deepEqual(m.from, Uint8Array.from(alice.bytes))
    assert.deepEqual(m.to, Uint8Array.from(bob.bytes))
    assert.equal(m.service, 'search')
    assert.equal(m.kind, 'request')
    assert.equal(m.id, 'r1')
    assert.equal(m.inReplyTo, '')
    assert.equal(m.nonce.length, 16)
    assert.equal(m.timestamp, NOW)
    assert.equal(m.ttl, 1500)
    assert.equal(m.contentType, 'application/json')
    assert.deepEqual(m.token, Uint8Array.of(5))
    assert.deepEqual(m.body, body)
    assert.ok(opened.fromPeer.equals(alice.peerId))
    assert.deepEqual(opened.payload, decodeSignedMessage(frame).payload)
    assert.equal(opened.signature.length, 64)
  })

  it('fills defaults, a fresh nonce and the current time', () => {
    const before = Date.now()
    const frames = [0, 1].map(() => sealEnvelope({ to: bob.bytes, service: 's', kind: 'oneway', id: 'x' }, alice.signer))
    const after = Date.now()
    const [a, b] = frames.map((f) => decodeMessage(decodeSignedMessage(f).payload)) as [Message, Message]
    assert.notDeepEqual(a.nonce, b.nonce)
    assert.ok(a.timestamp >= before && a.timestamp <= after)
    assert.equal(a.contentType, 'application/octet-stream')
    assert.equal(a.body.length, 0)
    assert.equal(a.token.length, 0)
    assert.equal(a.ttl, 0)
    // opened with the real clock (ctx.now defaulted)
    assert.equal(openEnvelope(frames[0] as Uint8Array, { localPeer: bob.bytes, remotePeer: alice.peerId, replayCache: new ReplayCache() }).message.kind, 'oneway')
  })

  it('rejects a tampered payload field as BadSignature', () => {
    // addressed to Carol, so that changing `to` to Bob passes the recipient check
    const original = frameOf(message(alice, carol, { token: Uint8Array.of(1) }), alice.signer)
    const cases: Record<string, (m: Message) => void> = {
      to: (m) => { m.to = bob.bytes },
      body: (m) => { m.to = bob.bytes; m.body = new TextEncoder().encode('hellO') },
      service: (m) => { m.to = bob.bytes; m.service = 'admin' },
      timestamp: (m) => { m.to = bob.bytes; m.timestamp += 1 },
      nonce: (m) => { m.to = bob.bytes; m.nonce[0] = (m.nonce[0] as number) ^ 0x01 },
      kind: (m) => { m.to = bob.bytes; m.kind = 'oneway' },
      id: (m) => { m.to = bob.bytes; m.id = 'req-evil' },
      inReplyTo: (m) => { m.to = bob.bytes; m.inReplyTo = 'x' },
      ttl: (m) => { m.to = bob.bytes; m.ttl = 1 },
      contentType: (m) => { m.to = bob.bytes; m.contentType = 'application/json' },
      token: (m) => { m.to = bob.bytes; m.token = Uint8Array.of(2) }
    }
    for (const [field, change] of Object.entries(cases)) {
      const cache = new ReplayCache()
      assert.throws(() => openEnvelope(tamper(original, change), ctx({ replayCache: cache })), BadSignatureError, field)
      assert.equal(cache.size, 0, 'nothing recorded for a rejected frame')
    }
    // the untampered frame is rejected only because it is for Carol
    assert.throws(() => openEnvelope(original, ctx()), WrongRecipientError)
    assert.doesNotThrow(() => openEnvelope(original, ctx({ localPeer: carol.peerId })))
  })

  it('rejects a flipped signature bit as BadSignature', () => {
    const frame = frameOf(message(alice, bob), alice.signer)
    const bad = Uint8Array.from(frame)
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x80
    assert.throws(() => openEnvelope(bad, ctx()), BadSignatureError)
  })

  it('rejects a spoofed sender', () => {
    // Mallory signs a message that claims to be from Alice, over Mallory's own connection
    const spoof = frameOf(message(alice, bob), mallory.signer)
    assert.throws(() => openEnvelope(spoof, ctx({ remotePeer: mallory.peerId })), SenderMismatchError)
    // ... and when Mallory somehow sits on a connection authenticated as Alice, the signature fails
    assert.throws(() => openEnvelope(spoof, ctx({ remotePeer: alice.peerId })), BadSignatureError)
    // a genuine frame of Alice relayed by Mallory is not Mallory's either
    const genuine = frameOf(message(alice, bob), alice.signer)
    assert.throws(() => openEnvelope(genuine, ctx({ remotePeer: mallory.peerId })), SenderMismatchError)
  })

  it('rejects a frame for another recipient', () => {
    const frame = frameOf(message(alice, carol), alice.signer)
    assert.throws(() => openEnvelope(frame, ctx()), (err: unknown) => err instanceof WrongRecipientError && err.code === 'WrongRecipient')
    // localPeer given as multihash bytes works the same
    assert.throws(() => openEnvelope(frame, ctx({ localPeer: bob.bytes })), WrongRecipientError)
    assert.doesNotThrow(() => openEnvelope(frame, ctx({ localPeer: carol.bytes })))
  })

  it('applies the window and skew with inclusive bounds', () => {
    const open = (timestamp: number, extra: Partial<OpenContext> = {}): void => {
      openEnvelope(frameOf(message(alice, bob, { timestamp }), alice.signer), ctx(extra))
    }
    assert.doesNotThrow(() => open(NOW - WINDOW))
    assert.throws(() => open(NOW - WINDOW - 1), (err: unknown) => err instanceof StaleMessageError && err.code === 'StaleMessage' && err.timestamp === NOW - WINDOW - 1)
    assert.doesNotThrow(() => open(NOW + SKEW))
    assert.throws(() => open(NOW + SKEW + 1), (err: unknown) => err instanceof FutureMessageError && err.code === 'FutureMessage')
    assert.doesNotThrow(() => open(NOW))
    // custom window and skew
    const cache = new ReplayCache({ windowMs: 120_000 })
    assert.doesNotThrow(() => open(NOW - 120_000, { replayCache: cache, windowMs: 120_000 }))
    assert.throws(() => open(NOW - 120_001, { replayCache: cache, windowMs: 120_000 }), StaleMessageError)
    assert.doesNotThrow(() => open(NOW - 30_000, { windowMs: 30_000 }))
    assert.throws(() => open(NOW - 30_001, { windowMs: 30_000 }), StaleMessageError)
    assert.doesNotThrow(() => open(NOW, { maxSkewMs: 0 }))
    assert.throws(() => open(NOW + 1, { maxSkewMs: 0 }), FutureMessageError)
    assert.throws(() => open(NOW + 5001, { maxSkewMs: 5000 }), FutureMessageError)
  })

  it('rejects a replay, including after the sender re-sends the same frame much later in the window', () => {
    const cache = new ReplayCache()
    const frame = frameOf(message(alice, bob), alice.signer)
    openEnvelope(frame, ctx({ replayCache: cache }))
    assert.throws(() => openEnvelope(frame, ctx({ replayCache: cache })), (err: unknown) => err instanceof ReplayError && err.code === 'Replay')
    assert.throws(() => openEnvelope(frame, ctx({ replayCache: cache, now: NOW + WINDOW })), ReplayError)
    // past the window it is stale, never accepted again
    assert.throws(() => openEnvelope(frame, ctx({ replayCache: cache, now: NOW + WINDOW + 1 })), StaleMessageError)
    // the same nonce from another sender is a different message
    const fromCarol = frameOf(message(carol, bob, { nonce: decodeMessage(decodeSignedMessage(frame).payload).nonce }), carol.signer)
    assert.doesNotThrow(() => openEnvelope(fromCarol, ctx({ replayCache: cache, remotePeer: carol.peerId })))
  })

  it('records the nonce only when every check passed', () => {
    const cache = new ReplayCache()
    const msg = message(alice, bob)
    const badSig = frameOf(msg, mallory.signer)
    assert.throws(() => openEnvelope(badSig, ctx({ replayCache: cache })), BadSignatureError)
    assert.equal(cache.has(alice.peerId.toString(), msg.nonce), false)
    assert.doesNotThrow(() => openEnvelope(frameOf(msg, alice.signer), ctx({ replayCache: cache })))
    assert.equal(cache.has(alice.peerId.toString(), msg.nonce), true)
  })

  it('enforces the body limit', () => {
    const frame = frameOf(message(alice, bob, { body: new Uint8Array(1000) }), alice.signer)
    assert.doesNotThrow(() => openEnvelope(frame, ctx({ maxBodyBytes: 1000 })))
    assert.throws(() => openEnvelope(frame, ctx({ maxBodyBytes: 999 })), (err: unknown) => err instanceof BodyTooLargeError && err.size === 1000 && err.limit === 999)
    const big = frameOf(message(alice, bob, { body: new Uint8Array(DEFAULT_MAX_BODY_BYTES + 1) }), alice.signer)
    assert.throws(() => openEnvelope(big, ctx()), BodyTooLargeError)
    const max = frameOf(message(alice, bob, { body: new Uint8Array(DEFAULT_MAX_BODY_BYTES) }), alice.signer)
    assert.doesNotThrow(() => openEnvelope(max, ctx()))
  })

  it('rejects malformed frames and other versions', () => {
    assert.throws(() => openEnvelope(new Uint8Array(0), ctx()), MalformedFrameError)
    assert.throws(() => openEnvelope(Uint8Array.of(1, 2, 3), ctx()), MalformedFrameError)
    const v2 = frameOf(message(alice, bob, { version: 2 }), alice.signer)
    assert.throws(() => openEnvelope(v2, ctx()), UnsupportedVersionError)
    // a short nonce is malformed, even when correctly signed
    const short = Uint8Array.from([
      0x08, 1,
      0x12, alice.bytes.length, ...alice.bytes,
      0x1a, bob.bytes.length, ...bob.bytes,
      0x42, 15, ...new Uint8Array(15).fill(1)
    ])
    assert.throws(() => decodeMessage(short), MalformedFrameError)
    assert.throws(() => openEnvelope(encodeSignedMessage({ payload: short, signature: alice.signer.sign(short) }), ctx()), MalformedFrameError)
  })

  it('rejects peers whose key is not Ed25519', async () => {
    const secp = peerIdFromPrivateKey(await generateKeyPair('secp256k1'))
    const msg = { ...message(alice, bob), from: secp.toMultihash().bytes }
    const frame = frameOf(msg, alice.signer)
    assert.throws(() => openEnvelope(frame, ctx({ remotePeer: secp })), UnsupportedKeyError)
  })

  it('checks in the documented order', () => {
    const cache = new ReplayCache()
    const stale = NOW - WINDOW - 1
    // malformed beats everything
    assert.throws(() => openEnvelope(Uint8Array.of(0x0a, 0x05, 0x08), ctx()), MalformedFrameError)
    // version before body size, sender, recipient, signature, time
    const v2 = frameOf(message(mallory, carol, { version: 2, body: new Uint8Array(50), timestamp: stale }), mallory.signer)
    assert.throws(() => openEnvelope(v2, ctx({ maxBodyBytes: 10 })), UnsupportedVersionError)
    // body size before sender
    const big = frameOf(message(mallory, carol, { body: new Uint8Array(50), timestamp: stale }), alice.signer)
    assert.throws(() => openEnvelope(big, ctx({ maxBodyBytes: 10 })), BodyTooLargeError)
    // sender before recipient
    const both = frameOf(message(mallory, carol, { timestamp: stale }), alice.signer)
    assert.throws(() => openEnvelope(both, ctx()), SenderMismatchError)
    // recipient before signature (wrong recipient AND badly signed)
    const wrongAndBad = frameOf(message(alice, carol, { timestamp: stale }), mallory.signer)
    assert.throws(() => openEnvelope(wrongAndBad, ctx()), WrongRecipientError)
    // signature before time (stale AND badly signed)
    const staleAndBad = frameOf(message(alice, bob, { timestamp: stale }), mallory.signer)
    assert.throws(() => openEnvelope(staleAndBad, ctx()), BadSignatureError)
    const futureAndBad = frameOf(message(alice, bob, { timestamp: NOW + SKEW + 1 }), mallory.signer)
    assert.throws(() => openEnvelope(futureAndBad, ctx()), BadSignatureError)
    // time before replay: a recorded nonce, replayed after the window, is stale
    const good = frameOf(message(alice, bob), alice.signer)
    openEnvelope(good, ctx({ replayCache: cache }))
    assert.throws(() => openEnvelope(good, ctx({ replayCache: cache, now: NOW + WINDOW + 1 })), StaleMessageError)
    // replayed with a bad signature (same nonce): signature first
    const forged = tamper(good, (m) => { m.body = Uint8Array.of(0) })
    assert.throws(() => openEnvelope(forged, ctx({ replayCache: cache })), BadSignatureError)
  })

  it('validates its options', () => {
    const frame = frameOf(message(alice, bob), alice.signer)
    assert.throws(() => openEnvelope(frame, ctx({ windowMs: 29_999 })), InvalidArgumentError)
    assert.throws(() => openEnvelope(frame, ctx({ windowMs: 300_001, replayCache: new ReplayCache({ windowMs: 400_000 }) })), InvalidArgumentError)
    // a verifier window wider than the cache's would forget nonces it still accepts
    assert.throws(() => openEnvelope(frame, ctx({ windowMs: 120_000 })), InvalidArgumentError)
    assert.throws(() => openEnvelope(frame, ctx({ maxBodyBytes: -1 })), InvalidArgumentError)
    assert.throws(() => openEnvelope(frame, ctx({ maxSkewMs: Number.NaN })), InvalidArgumentError)
    assert.throws(() => openEnvelope(frame, ctx({ now: Number.NaN })), InvalidArgumentError)
    assert.throws(() => sealEnvelope({ to: bob.peerId, service: 's', kind: 'request', id: 'i', ttl: -5 }, alice.signer), InvalidArgumentError)
  })

  it('throws only ProtocolErrors for mutated frames, and never accepts a modified payload', () => {
    const rand = prng(0xfeed)
    const frame = frameOf(message(alice, bob), alice.signer)
    const payload = decodeSignedMessage(frame).payload
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from(frame)
      const flips = 1 + randomInt(rand, 3)
      for (let f = 0; f < flips; f++) bytes[randomInt(rand, bytes.length)] = randomInt(rand, 256)
      try {
        const opened = openEnvelope(bytes, ctx())
        // only possible if the mutations restored the original payload and signature
        assert.deepEqual(opened.payload, payload)
      } catch (err) {
        assert.ok(err instanceof ProtocolError, `unexpected ${String(err)}`)
      }
    }
  })
})
