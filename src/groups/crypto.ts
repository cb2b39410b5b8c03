/**
 * A ts-mls `CryptoProvider` for the one suite the groups use,
 * MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, on node:crypto's synchronous
 * primitives.
 *
 * Why: ts-mls's default provider runs every hash, HMAC, HKDF step, X25519
 * and AES-GCM operation as a WebCrypto call (a key import, then an async job
 * on the thread pool). MLS makes hundreds of small ones per commit (the
 * secret tree alone is one HKDF-Expand per node, the tree hash one SHA-256
 * per node, a commit with a path one HPKE seal per resolution node), and a
 * WebCrypto HMAC costs ~65 µs against ~7 µs for `createHmac` (X25519:
 * ~130 µs against ~35 µs). Profiles of a 100-member group put most of the
 * committer's `createCommit` and of each member's commit processing there.
 * The algorithms are the same, only their implementation differs; the
 * official RFC 9420 test vectors run through this provider
 * (test/unit/groups/vectors*.test.ts).
 *
 * HPKE (RFC 9180) is base mode, single-shot, with DHKEM(X25519, HKDF-SHA256),
 * HKDF-SHA256 and AES-128-GCM: the KEM and key schedule below follow the RFC's
 * sections 4 and 5.1 step by step (`labeledExtract`/`labeledExpand` with the
 * suite IDs of 7.1, 7.2 and 7.3). An all-zero X25519 output is refused
 * (RFC 9180 7.1.4). Ed25519 signatures are node:crypto's (the same keys as
 * the libp2p identity, see identity.ts).
 *
 * Synchronous primitives never give the event loop back, so a long MLS
 * operation (a commit in a large group: tens of ms) would hold up every frame
 * behind it, the acks of other groups included. Every operation first checks
 * how long the event loop has been held ({@link pace}) and, past
 * {@link SLICE_MS}, yields once with `setImmediate`; WebCrypto yielded at
 * every call.
 *
 * @module
 */

import {
  createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman,
  generateKeyPairSync, randomBytes, sign as edSign, timingSafeEqual, verify as edVerify
} from 'node:crypto'
import { CryptoError } from 'ts-mls/mlsError.js'
import type { CiphersuiteImpl, CiphersuiteName, CryptoProvider, Hpke, Kdf, PrivateKey, PublicKey, Signature } from 'ts-mls'
import type { Hash } from 'ts-mls/crypto/hash.js'
import type { KeyObject } from 'node:crypto'

const SUITE: CiphersuiteName = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'

/** SHA-256 output length, HKDF-SHA256's Nh */
const NH = 32
/** AES-128-GCM: key, nonce and tag lengths */
const NK = 16
const NN = 12
const TAG = 16
/** X25519 key and DH output length */
const NX = 32

const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex')
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex')
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex')

/** Longest stretch of MLS crypto work between two turns of the event loop, ms. */
export const SLICE_MS = 2

let sliceStart = performance.now()
let turnPending = false
const RESOLVED = Promise.resolve()

/** Yield to the event loop when this turn's crypto work has run past {@link SLICE_MS}. */
function pace (): Promise<void> {
  const now = performance.now()
  if (!turnPending) {
    // a new turn of the event loop since the last call: start a new slice
    turnPending = true
    sliceStart = now
    setImmediate(() => { turnPending = false })
    return RESOLVED
  }
  if (now - sliceStart < SLICE_MS) return RESOLVED
  return new Promise(resolve => setImmediate(resolve))
}

const u8 = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
const i2osp2 = (n: number): Uint8Array => Uint8Array.of(n >> 8, n & 0xff)
/** a fresh array (Buffer.concat would put small results, secrets among them, in Node's shared pool) */
function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
const encoder = new TextEncoder()
const ascii = (s: string): Uint8Array => encoder.encode(s)
/** the bytes of the HPKE labels (a handful of constants, used on every seal and open) */
const labels = new Map<string, Uint8Array>()
function labelBytes (s: string): Uint8Array {
  let bytes = labels.get(s)
  if (bytes === undefined) {
    bytes = ascii(s)
    labels.set(s, bytes)
  }
  return bytes
}

// ------------------------------------------------------------------ hash, HMAC, HKDF (RFC 5869)

function digest (data: Uint8Array): Uint8Array {
  return u8(createHash('sha256').update(data).digest())
}

function mac (key: Uint8Array, data: Uint8Array): Uint8Array {
  return u8(createHmac('sha256', key).update(data).digest())
}

/** HKDF-Extract; an empty salt is HashLen zeros, which HMAC's key padding makes the same */
function extract (salt: Uint8Array, ikm: Uint8Array): Uint8Array {
  return mac(salt, ikm)
}

const ONE = Uint8Array.of(1)

/** HKDF-Expand: T(i) = HMAC(prk, T(i-1) || info || i), the first `length` bytes of T(1) || T(2) || … */
function expand (prk: Uint8Array, info: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > 255 * NH) throw new CryptoError(`HKDF-Expand length ${length} out of range`)
  // nearly every call (MLS labels, HPKE keys and nonces) wants one block
  if (length <= NH) return u8(createHmac('sha256', prk).update(info).update(ONE).digest()).slice(0, length)
  const out = new Uint8Array(length)
  let t: Uint8Array = new Uint8Array(0)
  for (let i = 1, o = 0; o < length; i++, o += NH) {
    t = u8(createHmac('sha256', prk).update(t).update(info).update(Uint8Array.of(i)).digest())
    out.set(t.subarray(0, Math.min(NH, length - o)), o)
  }
  return out
}

// ------------------------------------------------------------------ Ed25519

/**
 * Key objects of signing keys, by the array ts-mls passes (a state's
 * `signaturePrivateKey`, the same array for every message), with the bytes
 * they were made from: a key changed in place is not served from here.
 */
const signingKeys = new WeakMap<Uint8Array, { bytes: Uint8Array, key: KeyObject }>()

function edPrivate (signKey: Uint8Array): KeyObject {
  const known = signingKeys.get(signKey)
  if (known !== undefined && known.bytes.length === signKey.length && timingSafeEqual(known.bytes, signKey)) return known.key
  // ts-mls hands over a 32-byte seed (our identity keys) or a PKCS#8 document (its own keygen)
  const key = signKey.length === 32
    ? createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, signKey]), format: 'der', type: 'pkcs8' })
    : createPrivateKey({ key: Buffer.from(signKey), format: 'der', type: 'pkcs8' })
  signingKeys.set(signKey, { bytes: signKey.slice(), key })
  return key
}

/** How many verification keys {@link edPublic} keeps (the members of the groups this node is in, typically) */
const VERIFY_KEY_CACHE = 1024
const verifyKeys = new Map<string, KeyObject>()

/** The key object of an Ed25519 public key: every MLS message's signature is checked with its sender's (~20 µs to make) */
function edPublic (publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey).toString('base64')
  let key = verifyKeys.get(id)
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI, publicKey]), format: 'der', type: 'spki' })
    if (verifyKeys.size >= VERIFY_KEY_CACHE) verifyKeys.delete(verifyKeys.keys().next().value as string)
    verifyKeys.set(id, key)
  }
  return key
}

export const signature: Signature = {
  async sign (signKey, message) {
    await pace()
    return u8(edSign(null, message, edPrivate(signKey)))
  },
  async verify (publicKey, message, sig) {
    await pace()
    if (publicKey.length !== 32 || sig.length !== 64) return false
    try {
      return edVerify(null, message, edPublic(publicKey), sig)
    } catch {
      return false
    }
  },
  async keygen () {
    await pace()
    const seed = randomBytes(32)
    const pub = createPublicKey(edPrivate(seed)).export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI.length)
    return { signKey: u8(seed), publicKey: u8(pub) }
  }
}

// ------------------------------------------------------------------ HPKE (RFC 9180), base mode

/** An X25519 key as ts-mls passes it around: raw bytes and node:crypto's key object. */
interface XKey { type: 'private' | 'public', raw: Uint8Array, key: KeyObject, pub?: Uint8Array }

function xPrivate (raw: Uint8Array): XKey {
  if (raw.length !== NX) throw new CryptoError('X25519 private key must be 32 bytes')
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8, raw]), format: 'der', type: 'pkcs8' })
  return { type: 'private', raw: raw.slice(), key }
}

function xPublic (raw: Uint8Array): XKey {
  if (raw.length !== NX) throw new CryptoError('X25519 public key must be 32 bytes')
  return { type: 'public', raw: raw.slice(), key: createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' }) }
}

/** The raw public key of a private key (computed once per key) */
function publicBytes (sk: XKey): Uint8Array {
  if (sk.pub === undefined) sk.pub = u8(createPublicKey(sk.key).export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI.length))
  return sk.pub
}

function publicOf (sk: XKey): XKey {
  return xPublic(publicBytes(sk))
}

function asX (k: PrivateKey | PublicKey, type: 'private' | 'public'): XKey {
  const x = k as unknown as XKey
  if (x === null || typeof x !== 'object' || x.type !== type || !(x.raw instanceof Uint8Array)) throw new CryptoError(`not an X25519 ${type} key of this provider`)
  return x
}

function dh (sk: KeyObject, pk: KeyObject): Uint8Array {
  let out: Uint8Array
  try {
    out = u8(diffieHellman({ privateKey: sk, publicKey: pk }))
  } catch (err) {
    throw new CryptoError(`X25519 failed: ${(err as Error).message}`)
  }
  if (out.every(b => b === 0)) throw new CryptoError('X25519 produced the all-zero value')
  return out
}

const HPKE_V1 = ascii('HPKE-v1')
/** suite_id of the KEM: "KEM" || I2OSP(0x0020, 2) */
const KEM_SUITE = concat(ascii('KEM'), i2osp2(0x0020))
/** suite_id of HPKE: "HPKE" || kem 0x0020 || kdf 0x0001 || aead 0x0001 */
const HPKE_SUITE = concat(ascii('HPKE'), i2osp2(0x0020), i2osp2(0x0001), i2osp2(0x0001))

function labeledExtract (suite: Uint8Array, salt: Uint8Array, label: string, ikm: Uint8Array): Uint8Array {
  return extract(salt, concat(HPKE_V1, suite, labelBytes(label), ikm))
}

function labeledExpand (suite: Uint8Array, prk: Uint8Array, label: string, info: Uint8Array, length: number): Uint8Array {
  return expand(prk, concat(i2osp2(length), HPKE_V1, suite, labelBytes(label), info), length)
}

const EMPTY = new Uint8Array(0)

/** DHKEM ExtractAndExpand (RFC 9180 4.1) */
function sharedSecret (dhOut: Uint8Array, enc: Uint8Array, pkR: Uint8Array): Uint8Array {
  const prk = labeledExtract(KEM_SUITE, EMPTY, 'eae_prk', dhOut)
  return labeledExpand(KEM_SUITE, prk, 'shared_secret', concat(enc, pkR), NH)
}

function generate (): XKey {
  const { privateKey } = generateKeyPairSync('x25519')
  const raw = u8(privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(X25519_PKCS8.length))
  return { type: 'private', raw, key: privateKey }
}

/** Encap (RFC 9180 4.1); the ephemeral key is never exported (one HPKE seal per resolution node of a commit's path) */
function encap (pkR: XKey): { secret: Uint8Array, enc: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  const enc = u8(publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI.length))
  return { secret: sharedSecret(dh(privateKey, pkR.key), enc, pkR.raw), enc }
}

function decap (enc: Uint8Array, skR: XKey): Uint8Array {
  return sharedSecret(dh(skR.key, xPublic(enc).key), enc, publicBytes(skR))
}

/** psk_id_hash of mode_base (no PSK): a constant */
const PSK_ID_HASH = labeledExtract(HPKE_SUITE, EMPTY, 'psk_id_hash', EMPTY)

/** KeySchedule (RFC 9180 5.1), mode_base: the key and base nonce, or the exporter secret */
function keySchedule (secretIn: Uint8Array, info: Uint8Array): { secret: Uint8Array, context: Uint8Array } {
  const infoHash = labeledExtract(HPKE_SUITE, EMPTY, 'info_hash', info)
  return { context: concat(Uint8Array.of(0x00), PSK_ID_HASH, infoHash), secret: labeledExtract(HPKE_SUITE, secretIn, 'secret', EMPTY) }
}

function aeadKeys (secretIn: Uint8Array, info: Uint8Array): { key: Uint8Array, nonce: Uint8Array } {
  const { secret, context } = keySchedule(secretIn, info)
  return { key: labeledExpand(HPKE_SUITE, secret, 'key', context, NK), nonce: labeledExpand(HPKE_SUITE, secret, 'base_nonce', context, NN) }
}

/** Export (RFC 9180 5.3) of a fresh context */
function exported (secretIn: Uint8Array, info: Uint8Array, exporterContext: Uint8Array, length: number): Uint8Array {
  const { secret, context } = keySchedule(secretIn, info)
  return labeledExpand(HPKE_SUITE, labeledExpand(HPKE_SUITE, secret, 'exp', context, NH), 'sec', exporterContext, length)
}

function aeadSeal (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  if (key.length !== NK || nonce.length !== NN) throw new CryptoError('AES-128-GCM: bad key or nonce length')
  const c = createCipheriv('aes-128-gcm', key, nonce, { authTagLength: TAG })
  if (aad.length > 0) c.setAAD(aad)
  return concat(c.update(plaintext), c.final(), c.getAuthTag())
}

function aeadOpen (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (key.length !== NK || nonce.length !== NN) throw new CryptoError('AES-128-GCM: bad key or nonce length')
  if (ciphertext.length < TAG) throw new CryptoError('AES-128-GCM: ciphertext shorter than its tag')
  try {
    const d = createDecipheriv('aes-128-gcm', key, nonce, { authTagLength: TAG })
    if (aad.length > 0) d.setAAD(aad)
    d.setAuthTag(ciphertext.subarray(ciphertext.length - TAG))
    return concat(d.update(ciphertext.subarray(0, ciphertext.length - TAG)), d.final())
  } catch {
    throw new CryptoError('AES-128-GCM: authentication failed')
  }
}

const asPrivate = (x: XKey): PrivateKey => x as unknown as PrivateKey
const asPublic = (x: XKey): PublicKey => x as unknown as PublicKey

export const hpke: Hpke = {
  async seal (publicKey, plaintext, info, aad) {
    await pace()
    const { secret, enc } = encap(asX(publicKey, 'public'))
    const ks = aeadKeys(secret, info)
    return { ct: aeadSeal(ks.key, ks.nonce, aad ?? EMPTY, plaintext), enc }
  },
  async open (privateKey, kemOutput, ciphertext, info, aad) {
    await pace()
    const ks = aeadKeys(decap(kemOutput, asX(privateKey, 'private')), info)
    return aeadOpen(ks.key, ks.nonce, aad ?? EMPTY, ciphertext)
  },
  async exportSecret (publicKey, exporterContext, length, info) {
    await pace()
    const { secret, enc } = encap(asX(publicKey, 'public'))
    return { enc, secret: exported(secret, info, exporterContext, length) }
  },
  async importSecret (privateKey, exporterContext, kemOutput, length, info) {
    await pace()
    return exported(decap(kemOutput, asX(privateKey, 'private')), info, exporterContext, length)
  },
  async importPrivateKey (k) { await pace(); return asPrivate(xPrivate(k)) },
  async importPublicKey (k) { await pace(); return asPublic(xPublic(k)) },
  async exportPublicKey (k) { return asX(k, 'public').raw.slice() },
  async exportPrivateKey (k) { return asX(k, 'private').raw.slice() },
  async encryptAead (key, nonce, aad, plaintext) { await pace(); return aeadSeal(key, nonce, aad ?? EMPTY, plaintext) },
  async decryptAead (key, nonce, aad, ciphertext) { await pace(); return aeadOpen(key, nonce, aad ?? EMPTY, ciphertext) },
  /** DeriveKeyPair (RFC 9180 7.1.3): for X25519 the expanded bytes are the private key as they are */
  async deriveKeyPair (ikm) {
    await pace()
    const prk = labeledExtract(KEM_SUITE, EMPTY, 'dkp_prk', ikm)
    const sk = xPrivate(labeledExpand(KEM_SUITE, prk, 'sk', EMPTY, NX))
    return { privateKey: asPrivate(sk), publicKey: asPublic(publicOf(sk)) }
  },
  async generateKeyPair () {
    await pace()
    const sk = generate()
    return { privateKey: asPrivate(sk), publicKey: asPublic(publicOf(sk)) }
  },
  keyLength: NK,
  nonceLength: NN
}

export const hash: Hash = {
  async digest (data) { await pace(); return digest(data) },
  async mac (key, data) { await pace(); return mac(key, data) },
  async verifyMac (key, tag, data) {
    await pace()
    const expected = mac(key, data)
    return tag.length === expected.length && timingSafeEqual(tag, expected)
  }
}

export const kdf: Kdf = {
  async extract (salt, ikm) { await pace(); return extract(salt, ikm) },
  async expand (prk, info, len) { await pace(); return expand(prk, info, len) },
  size: NH
}

/** The provider: suite 1 only (every group uses it; see CIPHER_SUITE). */
export const nodeCryptoProvider: CryptoProvider = {
  async getCiphersuiteImpl (cs) {
    if (cs.name !== SUITE) throw new CryptoError(`the node:crypto provider implements ${SUITE} only, not ${cs.name}`)
    const impl: CiphersuiteImpl = { hash, kdf, signature, hpke, rng: { randomBytes: (n: number) => u8(randomBytes(n)) }, name: SUITE }
    return impl
  }
}
