import assert from 'node:assert/strict'
import { describe, it, before } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  createSigner,
  MESSAGE_SIGNATURE_SCHEME,
  PAYLOAD_TYPE,
  PUBLIC_KEY_CACHE_SIZE,
  signatureScheme,
  signedData,
  SIGNING_DOMAIN,
  TOKEN_SIGNATURE_SCHEME,
  UnsupportedKeyError,
  verifySignature
} from '../../../src/protocol/index.ts'
import * as signing from '../../../src/protocol/signing.ts'
import { identity } from './helpers.ts'
import type { Identity } from './helpers.ts'

function uvarint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return out
}

describe('signing', () => {
  let alice: Identity
  let bob: Identity

  before(async () => {
    alice = await identity()
    bob = await identity()
  })

  it('exports the RFC 0002 domain and payload type', () => {
    assert.equal(SIGNING_DOMAIN, 'agentnet-msg')
    assert.equal(PAYLOAD_TYPE, '/agentnet/msg/2.0.0')
  })

  it('signs exactly uvarint(len(domain)) || domain || uvarint(len(type)) || type || uvarint(len(payload)) || payload', () => {
    const te = new TextEncoder()
    for (const length of [0, 1, 127, 128, 300, 20_000]) {
      const payload = new Uint8Array(length).map((_, i) => i * 7)
      const expected = Uint8Array.from([
        ...uvarint(12), ...te.encode('agentnet-msg'),
        ...uvarint(19), ...te.encode('/agentnet/msg/2.0.0'),
        ...uvarint(length), ...payload
      ])
      assert.deepEqual(signedData(payload), expected)
    }
    // the constant part, spelled out
    assert.equal(Buffer.from(signedData(new Uint8Array(0))).toString('hex'),
      '0c' + Buffer.from('agentnet-msg').toString('hex') + '13' + Buffer.from('/agentnet/msg/2.0.0').toString('hex') + '00')
  })

  it('produces the same signature as @libp2p/crypto over the same bytes (Ed25519 is deterministic)', async () => {
    const payload = new TextEncoder().encode('payload bytes')
    const ours = alice.signer.sign(payload)
    const theirs = await alice.key.sign(signedData(payload))
    assert.deepEqual(ours, Uint8Array.from(theirs))
    assert.equal(await alice.key.publicKey.verify(signedData(payload), ours), true)
  })

  it('verifies only the right key, payload and domain', async () => {
    const payload = new TextEncoder().encode('payload bytes')
    const sig = alice.signer.sign(payload)
    assert.equal(verifySignature(alice.peerId, payload, sig), true)
    assert.equal(verifySignature(bob.peerId, payload, sig), false, 'other key')
    assert.equal(verifySignature(alice.peerId, Uint8Array.from([...payload, 0]), sig), false, 'other payload')
    const flipped = Uint8Array.from(sig)
    flipped[10] = (flipped[10] as number) ^ 1
    assert.equal(verifySignature(alice.peerId, payload, flipped), false, 'flipped signature bit')
    assert.equal(verifySignature(alice.peerId, payload, sig.subarray(0, 63)), false, 'short signature')
    assert.equal(verifySignature(alice.peerId, payload, new Uint8Array(64)), false, 'zero signature')
    // a signature over the raw payload (no domain separation) is not accepted
    assert.equal(verifySignature(alice.peerId, payload, Uint8Array.from(await alice.key.sign(payload))), false)
  })

  it('keeps signature schemes apart', async () => {
    const payload = new TextEncoder().encode('{"iss":"x"}')
    const tokenSig = createSigner(alice.key, TOKEN_SIGNATURE_SCHEME).sign(payload)
    assert.equal(verifySignature(alice.peerId, payload, tokenSig, TOKEN_SIGNATURE_SCHEME), true)
    assert.equal(verifySignature(alice.peerId, payload, tokenSig), false, 'a token signature is not a message signature')
    assert.equal(verifySignature(alice.peerId, payload, alice.signer.sign(payload), TOKEN_SIGNATURE_SCHEME), false)

    // every scheme defined in signing.ts has its own domain
    const schemes = Object.values(signing).filter((v): v is signing.SignatureScheme => typeof v === 'object' && v !== null && 'domain' in v)
    assert.ok(schemes.length >= 2)
    assert.equal(new Set(schemes.map((s) => s.domain)).size, schemes.length)
    assert.equal(MESSAGE_SIGNATURE_SCHEME.domain, SIGNING_DOMAIN)
    assert.ok(Object.isFrozen(signatureScheme('a', 'b')))
  })

  it('accepts only Ed25519 keys', async () => {
    const secp = await generateKeyPair('secp256k1')
    assert.throws(() => createSigner(secp), UnsupportedKeyError)
    const secpPeer = peerIdFromPrivateKey(secp)
    assert.throws(() => verifySignature(secpPeer, new Uint8Array(1), new Uint8Array(64)), (err: unknown) => err instanceof UnsupportedKeyError && err.code === 'UnsupportedKey')
  })

  it('refuses a private key whose public half does not match its seed', async () => {
    const other = await generateKeyPair('Ed25519')
    const franken = { ...alice.key, type: 'Ed25519' as const, raw: Uint8Array.from([...alice.key.raw.subarray(0, 32), ...other.publicKey.raw]) }
    assert.throws(() => createSigner(franken as typeof alice.key), /does not match/)
  })

  it('keeps verifying correctly beyond the public key cache size', async () => {
    const payload = Uint8Array.of(1, 2, 3)
    const first = await identity()
    const firstSig = first.signer.sign(payload)
    assert.equal(verifySignature(first.peerId, payload, firstSig), true)
    // push `first` out of the LRU, then check it is rebuilt correctly
    for (let i = 0; i <= PUBLIC_KEY_CACHE_SIZE; i++) {
      const key = await generateKeyPair('Ed25519')
      assert.equal(verifySignature(peerIdFromPrivateKey(key), payload, firstSig), false)
    }
    assert.equal(verifySignature(first.peerId, payload, firstSig), true)
    assert.equal(verifySignature(bob.peerId, payload, firstSig), false)
  })
})
