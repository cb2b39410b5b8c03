/**
 * `/agentnet/msg/2.0.0` signs the message with its body replaced by the
 * body's SHA-256 (`signingPayload`): the exact bytes, and the attacks that
 * must still fail (a changed body, the digest form passed off as the message,
 * a version 1 signature).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { before, describe, it } from 'node:test'
import {
  BadSignatureError,
  createSigner,
  decodeMessage,
  decodeSignedMessage,
  encodeMessage,
  encodeSignedMessage,
  MalformedFrameError,
  MLS_SIGNATURE_SCHEME,
  openEnvelope,
  openEnvelopeAsync,
  PAYLOAD_TYPE,
  ReplayCache,
  sealEnvelope,
  signatureScheme,
  signedData,
  signingPayload,
  uvarint,
  verifySignature
} from '../../../src/protocol/index.ts'
import { identity, message, NOW } from './helpers.ts'
import type { Identity } from './helpers.ts'

const te = new TextEncoder()
const sha256 = (b: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(b).digest())

describe('body digest signing (/agentnet/msg/2.0.0)', () => {
  let alice: Identity
  let bob: Identity

  before(async () => {
    alice = await identity()
    bob = await identity()
  })

  const open = (frame: Uint8Array): ReturnType<typeof openEnvelope> =>
    openEnvelope(frame, { localPeer: bob.peerId, remotePeer: alice.peerId, replayCache: new ReplayCache(), now: NOW })

  it('signs exactly prefix || uvarint(len) || header || 0x6a 0x20 || SHA-256(body), for every body size', async () => {
    assert.equal(PAYLOAD_TYPE, '/agentnet/msg/2.0.0')
    for (const size of [0, 1, 127, 128, 70_000]) {
      const body = new Uint8Array(size).map((_, i) => i * 13)
      const frame = sealEnvelope({ to: bob.peerId, service: 'echo', kind: 'request', id: `d${size}`, body, timestamp: NOW }, alice.signer)
      const { payload, signature } = decodeSignedMessage(frame)
      const bodyField = size === 0 ? [] : [0x6a, ...uvarint(size), ...body]
      const header = payload.subarray(0, payload.length - bodyField.length)
      assert.deepEqual([...payload.subarray(header.length)], bodyField, 'the body is the last field')
      const expected = Uint8Array.from([
        ...uvarint(12), ...te.encode('agentnet-msg'),
        ...uvarint(19), ...te.encode('/agentnet/msg/2.0.0'),
        ...uvarint(header.length + 34), ...header, 0x6a, 0x20, ...sha256(body)
      ])
      assert.deepEqual(signedData(signingPayload(payload, body)), expected)
      // an independent Ed25519 implementation agrees that this is what was signed
      assert.equal(await alice.key.publicKey.verify(expected, signature), true)
      assert.deepEqual(open(frame).message.body, body)
    }
  })

  it('the signing payload is itself a canonical message whose body is the digest', () => {
    const m = message(alice, bob, { body: te.encode('some body') })
    const payload = encodeMessage(m)
    const digestForm = signingPayload(payload, m.body)
    assert.deepEqual(digestForm, encodeMessage({ ...m, body: sha256(m.body) }))
    assert.deepEqual(decodeMessage(digestForm).body, sha256(m.body))
  })

  it('attack: one changed body byte fails the signature, inline and on the async path', async () => {
    const body = new Uint8Array(100_000).fill(1)
    const frame = sealEnvelope({ to: bob.peerId, service: 'echo', kind: 'request', id: 't', body, timestamp: NOW }, alice.signer)
    const tampered = Uint8Array.from(frame)
    const at = tampered.length - 64 - 2 - 500
    tampered[at] = (tampered[at] as number) ^ 0x01
    assert.throws(() => open(tampered), BadSignatureError)
    await assert.rejects(openEnvelopeAsync(tampered, { localPeer: bob.peerId, remotePeer: alice.peerId, replayCache: new ReplayCache(), now: NOW }), BadSignatureError)
  })

  it('attack: the digest form sent as the message, with the genuine signature, is refused', () => {
    const frame = sealEnvelope({ to: bob.peerId, service: 'echo', kind: 'request', id: 'x', body: te.encode('pay 10'), timestamp: NOW }, alice.signer)
    const { payload, signature } = decodeSignedMessage(frame)
    const digestForm = signingPayload(payload, decodeMessage(payload).body)
    // the receiver hashes whatever body arrives: the digest as a body is hashed again
    assert.throws(() => open(encodeSignedMessage({ payload: digestForm, signature })), BadSignatureError)
  })

  it('attack: a version 1 signature (whole payload, payload type /agentnet/msg/1.0.0) is refused', () => {
    const v1 = createSigner(alice.key, signatureScheme('agentnet-msg', '/agentnet/msg/1.0.0'))
    const payload = encodeMessage(message(alice, bob))
    assert.throws(() => open(encodeSignedMessage({ payload, signature: v1.sign(payload) })), BadSignatureError)
    // nor the whole payload under the 2.0.0 type
    assert.throws(() => open(encodeSignedMessage({ payload, signature: alice.signer.sign(payload) })), BadSignatureError)
  })

  it('schemes without bodyDigest (MLS frames) still sign the whole payload', () => {
    const mls = createSigner(alice.key, MLS_SIGNATURE_SCHEME)
    const frame = sealEnvelope({ to: bob.peerId, service: 'commit', kind: 'oneway', id: 'g', body: te.encode('group frame'), timestamp: NOW }, mls)
    const { payload, signature } = decodeSignedMessage(frame)
    assert.equal(verifySignature(alice.peerId, payload, signature, MLS_SIGNATURE_SCHEME), true)
    assert.equal(openEnvelope(frame, { localPeer: bob.peerId, remotePeer: alice.peerId, replayCache: new ReplayCache(), now: NOW, scheme: MLS_SIGNATURE_SCHEME }).message.id, 'g')
  })

  it('refuses a body that is not the end of the payload', () => {
    const m = message(alice, bob, { body: te.encode('abc') })
    assert.throws(() => signingPayload(encodeMessage(m), te.encode('abd!')), MalformedFrameError)
  })
})
