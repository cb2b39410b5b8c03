/**
 * The node:crypto provider (src/groups/crypto.ts) against ts-mls's default
 * one (WebCrypto, @hpke/core): the official vectors (vectors*.test.ts) check
 * what they cover; these check that each primitive interoperates both ways
 * with the default implementation on fresh random inputs (an HPKE seal of one
 * opened by the other, the same derived key pair, signatures verified across),
 * and that tampered inputs are refused with ts-mls's CryptoError.
 */

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createCommit, createGroup, defaultCryptoProvider, getCiphersuiteFromName, getCiphersuiteImpl } from 'ts-mls'
import { CryptoError } from 'ts-mls/mlsError.js'
import { nodeCryptoProvider } from '../../../src/groups/crypto.ts'
import { CIPHER_SUITE } from '../../../src/groups/constants.ts'
import { clientConfig, newKeyPackage } from '../../../src/groups/identity.ts'

const suite = getCiphersuiteFromName(CIPHER_SUITE)
const ours = await getCiphersuiteImpl(suite, nodeCryptoProvider)
const theirs = await getCiphersuiteImpl(suite, defaultCryptoProvider)
const rnd = (n: number): Uint8Array => new Uint8Array(randomBytes(n))

describe('groups: node:crypto MLS provider', () => {
  it('hash, HMAC and HKDF give the default provider\'s bytes', async () => {
    for (const len of [0, 1, 31, 32, 33, 64, 1000]) {
      const data = rnd(len)
      const key = rnd(32)
      assert.deepEqual(await ours.hash.digest(data), await theirs.hash.digest(data))
      assert.deepEqual(await ours.hash.mac(key, data), await theirs.hash.mac(key, data))
      assert.equal(await ours.hash.verifyMac(key, await theirs.hash.mac(key, data), data), true)
      const bad = await theirs.hash.mac(key, data)
      bad[0]! ^= 1
      assert.equal(await ours.hash.verifyMac(key, bad, data), false)
      assert.deepEqual(await ours.kdf.extract(key, data), await theirs.kdf.extract(key, data))
      assert.deepEqual(await ours.kdf.extract(new Uint8Array(0), data), await theirs.kdf.extract(new Uint8Array(0), data))
    }
    for (const len of [1, 12, 16, 32, 33, 64, 100]) {
      const prk = rnd(32)
      const info = rnd(40)
      assert.deepEqual(await ours.kdf.expand(prk, info, len), await theirs.kdf.expand(prk, info, len))
    }
    await assert.rejects(ours.kdf.expand(rnd(32), rnd(4), 255 * 32 + 1), CryptoError)
  })

  it('HPKE: a seal by either provider opens with the other; the same derived key pair; exporter secrets agree', async () => {
    const ikm = rnd(32)
    const a = await ours.hpke.deriveKeyPair(ikm)
    const b = await theirs.hpke.deriveKeyPair(ikm)
    assert.deepEqual(await ours.hpke.exportPublicKey(a.publicKey), await theirs.hpke.exportPublicKey(b.publicKey))
    assert.deepEqual(await ours.hpke.exportPrivateKey(a.privateKey), await theirs.hpke.exportPrivateKey(b.privateKey))
    const pub = await ours.hpke.exportPublicKey(a.publicKey)
    const priv = await ours.hpke.exportPrivateKey(a.privateKey)
    const info = rnd(20)
    const aad = rnd(10)
    const pt = rnd(77)
    const s1 = await ours.hpke.seal(await ours.hpke.importPublicKey(pub), pt, info, aad)
    assert.deepEqual(await theirs.hpke.open(await theirs.hpke.importPrivateKey(priv), s1.enc, s1.ct, info, aad), pt)
    const s2 = await theirs.hpke.seal(await theirs.hpke.importPublicKey(pub), pt, info)
    assert.deepEqual(await ours.hpke.open(await ours.hpke.importPrivateKey(priv), s2.enc, s2.ct, info), pt)
    const e1 = await ours.hpke.exportSecret(await ours.hpke.importPublicKey(pub), info, 32, aad)
    assert.deepEqual(await theirs.hpke.importSecret(await theirs.hpke.importPrivateKey(priv), info, e1.enc, 32, aad), e1.secret)
    const e2 = await theirs.hpke.exportSecret(await theirs.hpke.importPublicKey(pub), info, 32, aad)
    assert.deepEqual(await ours.hpke.importSecret(await ours.hpke.importPrivateKey(priv), info, e2.enc, 32, aad), e2.secret)
    // a fresh pair of ours opens what the default provider sealed to it
    const g = await ours.hpke.generateKeyPair()
    const s3 = await theirs.hpke.seal(await theirs.hpke.importPublicKey(await ours.hpke.exportPublicKey(g.publicKey)), pt, info)
    assert.deepEqual(await ours.hpke.open(g.privateKey, s3.enc, s3.ct, info), pt)
  })

  it('HPKE and AEAD refuse tampering: a flipped ciphertext byte, other info or aad, the all-zero (small-order) key', async () => {
    const kp = await ours.hpke.generateKeyPair()
    const pt = rnd(50)
    const s = await ours.hpke.seal(kp.publicKey, pt, rnd(8), new Uint8Array(0))
    const ct = s.ct.slice()
    ct[3]! ^= 1
    await assert.rejects(ours.hpke.open(kp.privateKey, s.enc, ct, rnd(8)), CryptoError)
    const info = rnd(8)
    const s2 = await ours.hpke.seal(kp.publicKey, pt, info, rnd(4))
    await assert.rejects(ours.hpke.open(kp.privateKey, s2.enc, s2.ct, info, rnd(4)), CryptoError)
    await assert.rejects(ours.hpke.open(kp.privateKey, s2.enc, s2.ct, rnd(8)), CryptoError)
    // X25519 with a small-order public key (all zero) gives the all-zero output: refused (RFC 9180 7.1.4)
    await assert.rejects(ours.hpke.seal(await ours.hpke.importPublicKey(new Uint8Array(32)), pt, info), CryptoError)
    await assert.rejects(ours.hpke.open(kp.privateKey, new Uint8Array(32), s2.ct, info), CryptoError)
    await assert.rejects(ours.hpke.importPublicKey(rnd(31)), CryptoError)
    const key = rnd(16)
    const nonce = rnd(12)
    const sealed = await ours.hpke.encryptAead(key, nonce, undefined, pt)
    assert.deepEqual(await theirs.hpke.decryptAead(key, nonce, undefined, sealed), pt)
    assert.deepEqual(await ours.hpke.decryptAead(key, nonce, undefined, await theirs.hpke.encryptAead(key, nonce, undefined, pt)), pt)
    sealed[0]! ^= 1
    await assert.rejects(ours.hpke.decryptAead(key, nonce, undefined, sealed), CryptoError)
    await assert.rejects(ours.hpke.decryptAead(key, nonce, undefined, sealed.subarray(0, 15)), CryptoError)
  })

  it('Ed25519: signatures verify across providers, from a seed and from ts-mls\'s PKCS#8 keys; a wrong message or key does not', async () => {
    const msg = rnd(100)
    const mine = await ours.signature.keygen()
    assert.equal(mine.signKey.length, 32)
    const sig = await ours.signature.sign(mine.signKey, msg)
    assert.equal(await theirs.signature.verify(mine.publicKey, msg, sig), true)
    const other = await theirs.signature.keygen()
    const sig2 = await theirs.signature.sign(other.signKey, msg)
    assert.equal(await ours.signature.verify(other.publicKey, msg, sig2), true)
    assert.deepEqual(await ours.signature.sign(other.signKey, msg), sig2)
    assert.equal(await ours.signature.verify(other.publicKey, rnd(100), sig2), false)
    assert.equal(await ours.signature.verify(mine.publicKey, msg, sig2), false)
    assert.equal(await ours.signature.verify(rnd(31), msg, sig2), false)
    assert.equal(await ours.signature.verify(other.publicKey, msg, sig2.subarray(1)), false)
  })

  it('Ed25519 key objects are reused only for the same key bytes', async () => {
    const a = await ours.signature.keygen()
    const b = await ours.signature.keygen()
    const msg = rnd(40)
    const key = a.signKey.slice()
    assert.equal(await ours.signature.verify(a.publicKey, msg, await ours.signature.sign(key, msg)), true)
    // the same array, now holding another key (changed in place): signs as that key
    key.set(b.signKey)
    const sig = await ours.signature.sign(key, msg)
    assert.equal(await ours.signature.verify(b.publicKey, msg, sig), true)
    assert.equal(await ours.signature.verify(a.publicKey, msg, sig), false)
    // a verification key seen before still refuses what it did not sign
    assert.equal(await ours.signature.verify(a.publicKey, msg, sig), false)
  })

  it('a long MLS operation gives the event loop back (synchronous primitives would hold it for the whole commit)', async () => {
    const keys = await Promise.all(Array.from({ length: 40 }, async () => generateKeyPair('Ed25519')))
    const kps = await Promise.all(keys.map(async k => newKeyPackage(k, peerIdFromPrivateKey(k), ours)))
    const state = await createGroup(new Uint8Array(16).fill(3), kps[0]!.publicPackage, kps[0]!.privatePackage, [], ours, clientConfig(4))
    let turns = 0
    let done = false
    const spin = (): void => { if (!done) { turns++; setImmediate(spin) } }
    setImmediate(spin)
    const t = performance.now()
    await createCommit({ state, cipherSuite: ours }, { extraProposals: kps.slice(1).map(kp => ({ proposalType: 'add' as const, add: { keyPackage: kp.publicPackage } })), ratchetTreeExtension: true })
    const took = performance.now() - t
    done = true
    // the commit (39 HPKE seals, the tree hash, the key schedule) takes well over one 2 ms slice
    assert.ok(took > 4, `the commit took ${took} ms`)
    assert.ok(turns >= 2, `only ${turns} turns of the event loop in ${took.toFixed(1)} ms`)
  })

  it('only suite 1', async () => {
    await assert.rejects(getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMP256_AES128GCM_SHA256_P256'), nodeCryptoProvider), CryptoError)
  })
})
