/**
 * did:key and the JWS-signed A2A card, checked with implementations
 * independent of src/did: a did:key decoder written here from the did:key
 * spec (multibase base58btc 'z', multicodec varint 0xed 0x01, 32-byte key),
 * and jose verifying the JWS with a key built only from that decoding.
 */

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import canonicalize from 'canonicalize'
import { flattenedVerify, importJWK } from 'jose'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createAgentCard, didKeyFromPeerId, didKeyVerificationMethod, peerIdFromDidKey, publicKeyFromDidKey, verifyAgentCard } from '../../../src/did/index.ts'

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** base58btc decoding, from the Bitcoin alphabet, big-integer style */
function base58Decode (text: string): Uint8Array {
  let n = 0n
  for (const ch of text) {
    const v = ALPHABET.indexOf(ch)
    if (v < 0) throw new Error(`not base58: ${ch}`)
    n = n * 58n + BigInt(v)
  }
  const bytes: number[] = []
  while (n > 0n) { bytes.unshift(Number(n % 256n)); n /= 256n }
  for (const ch of text) { if (ch === '1') bytes.unshift(0); else break }
  return Uint8Array.from(bytes)
}

/** did:key spec: did:key:<multibase(multicodec(key))>; only Ed25519 here */
function decodeDidKey (did: string): Uint8Array {
  const m = /^did:key:z([1-9A-HJ-NP-Za-km-z]+)$/.exec(did)
  if (m?.[1] === undefined) throw new Error('not a base58btc did:key')
  const bytes = base58Decode(m[1])
  assert.equal(bytes[0], 0xed, 'multicodec ed25519-pub, varint byte 1')
  assert.equal(bytes[1], 0x01, 'multicodec ed25519-pub, varint byte 2')
  assert.equal(bytes.length, 34)
  return bytes.subarray(2)
}

describe('did:key', () => {
  it('encodes the peer ID\'s Ed25519 key (independent decoder) and converts back', async () => {
    for (let i = 0; i < 5; i++) {
      const key = await generateKeyPair('Ed25519')
      const peerId = peerIdFromPrivateKey(key)
      const did = didKeyFromPeerId(peerId)
      assert.match(did, /^did:key:z6Mk/, 'every Ed25519 did:key starts z6Mk')
      assert.deepEqual(decodeDidKey(did), key.publicKey.raw)
      assert.equal(peerIdFromDidKey(did).toString(), peerId.toString())
      assert.equal(didKeyVerificationMethod(did), `${did}#${did.slice(8)}`)
    }
  })

  it('matches the did:key spec test vector', () => {
    // the Ed25519 example DID of the W3C CCG did:key spec: decodes and round-trips
    const did = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'
    assert.deepEqual(publicKeyFromDidKey(did), decodeDidKey(did))
    assert.equal(didKeyFromPeerId(peerIdFromDidKey(did)), did)
  })

  it('refuses other codecs, bad base58 and bad fragments', () => {
    assert.throws(() => publicKeyFromDidKey('did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme'), { code: 'InvalidDid' })
    assert.throws(() => publicKeyFromDidKey('did:key:z0OIl'), { code: 'InvalidDid' })
    assert.throws(() => publicKeyFromDidKey('did:web:example.org'), { code: 'InvalidDid' })
    const did = 'did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp'
    assert.throws(() => publicKeyFromDidKey(`${did}#other`), { code: 'InvalidDid' })
  })
})

describe('A2A agent card (JWS, EdDSA)', () => {
  it('verifies with jose and a key taken from the did:key alone', async () => {
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toString()
    const card = await createAgentCard({ name: 'translator', services: ['translate', 'echo'], version: '0.1.0' }, key)
    assert.equal(card.agentnet.peerId, peerId)
    assert.deepEqual(card.skills.map(s => s.id), ['translate', 'echo'])
    const sig = card.signatures?.[0]
    assert.ok(sig !== undefined)
    const header = JSON.parse(Buffer.from(sig.protected, 'base64url').toString()) as { alg: string, kid: string }
    assert.equal(header.alg, 'EdDSA')
    const [did, fragment] = header.kid.split('#')
    assert.equal(fragment, did?.slice('did:key:'.length))
    const x = Buffer.from(decodeDidKey(did ?? '')).toString('base64url')
    const publicKey = await importJWK({ kty: 'OKP', crv: 'Ed25519', x }, 'EdDSA')
    const { signatures: _s, ...unsigned } = card
    const payload = Buffer.from(canonicalize(unsigned) ?? '').toString('base64url')
    await flattenedVerify({ protected: sig.protected, signature: sig.signature, payload }, publicKey)
    // and the did names the peer the card claims
    assert.equal(did, card.agentnet.did)
    assert.deepEqual(decodeDidKey(did ?? ''), key.publicKey.raw)

    const verified = await verifyAgentCard(JSON.stringify(card))
    assert.equal(verified.peerId, peerId)
    assert.equal(verified.kid, header.kid)
    // key order does not matter (canonical JSON), whitespace neither
    const reordered = Object.fromEntries(Object.entries(card).reverse())
    assert.equal((await verifyAgentCard(JSON.stringify(reordered, null, 4))).peerId, peerId)
  })

  it('refuses a card whose content, claimed peer or signer was changed', async () => {
    const key = await generateKeyPair('Ed25519')
    const card = await createAgentCard({ name: 'a', services: ['x'], version: '0.1.0' }, key)
    await assert.rejects(verifyAgentCard({ ...card, name: 'b' }), { code: 'InvalidAgentCard' })
    await assert.rejects(verifyAgentCard({ ...card, skills: [] }), { code: 'InvalidAgentCard' })
    const other = await generateKeyPair('Ed25519')
    const otherId = peerIdFromPrivateKey(other).toString()
    await assert.rejects(verifyAgentCard({ ...card, agentnet: { ...card.agentnet, peerId: otherId } }), /did:key of the claimed peer ID/)
    await assert.rejects(verifyAgentCard({ ...card, url: `agentnet://${otherId}`, agentnet: { ...card.agentnet, peerId: otherId, did: didKeyFromPeerId(otherId) } }), /no valid EdDSA signature/)
    // a card signed by another key for this claim
    const forged = await createAgentCard({ name: 'a', services: ['x'], version: '0.1.0' }, other)
    await assert.rejects(verifyAgentCard({ ...card, signatures: forged.signatures }), /no valid EdDSA signature/)
    await assert.rejects(verifyAgentCard('not json'), /not JSON/)
  })
})
