/**
 * Ed25519 signatures over message payloads.
 *
 * The bytes signed follow libp2p's signed-envelope convention (libp2p specs,
 * RFC 0002 "Signed Envelopes"):
 *
 * ```
 * uvarint(len(domain)) || domain || uvarint(len(payloadType)) || payloadType || uvarint(len(payload)) || payload
 * ```
 *
 * with `domain = "agentnet-msg"` and `payloadType = "/agentnet/msg/2.0.0"`
 * (both UTF-8). For agent messages `payload` is the envelope's signing
 * payload: the message with its body replaced by the body's SHA-256
 * (`signingPayload` in `digest.ts`, schemes with `bodyDigest`). The domain string keeps a signature made for this protocol
 * from being valid in any other libp2p context that signs with the same
 * identity key (peer records, other protocols), and vice versa. Only the
 * signature input follows RFC 0002; the frame does not carry the public key
 * or payload type, since the key is implied by `from` (which must equal the
 * Noise-authenticated peer) and the type by the protocol ID.
 *
 * Signing and verification use node:crypto with cached `KeyObject`s, which is
 * about twice as fast as `@libp2p/crypto` for signing on Node.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { InvalidArgumentError, UnsupportedKeyError } from './errors.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { KeyObject } from 'node:crypto'

/** Domain-separation string of agent message signatures. */
export const SIGNING_DOMAIN = 'agentnet-msg'

/**
 * Payload type bound into every message signature. It equals the protocol ID
 * today but is a separate constant: changing it invalidates every signature,
 * so it must only change together with the payload format.
 */
export const PAYLOAD_TYPE = '/agentnet/msg/2.0.0'

/** How many public keys {@link verifySignature} keeps ready. */
export const PUBLIC_KEY_CACHE_SIZE = 1024

const ED25519_PUBLIC_KEY_BYTES = 32
const ED25519_SEED_BYTES = 32
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** Minimal unsigned LEB128 (the varint of protobuf and multiformats) */
export function uvarint (value: number): number[] {
  const out: number[] = []
  while (value >= 0x80) {
    out.push((value % 0x80) | 0x80)
    value = Math.floor(value / 0x80)
  }
  out.push(value)
  return out
}

function lengthPrefixed (s: string): number[] {
  const bytes = new TextEncoder().encode(s)
  return [...uvarint(bytes.length), ...bytes]
}

/**
 * A (domain, payload type) pair: what a signature is for. Every agentnet
 * signature scheme is defined in this file so that their domains are
 * guaranteed distinct, and a signature made for one kind of object is never
 * valid as another.
 */
export interface SignatureScheme {
  readonly domain: string
  readonly payloadType: string
  /** `uvarint(len(domain)) || domain || uvarint(len(payloadType)) || payloadType`, precomputed. */
  readonly prefix: Uint8Array
  /**
   * Envelopes sealed under this scheme sign their payload with the body
   * replaced by its SHA-256 (`signingPayload` in `digest.ts`), not the
   * whole payload. Part of what the payload type means: it never changes
   * for an existing payload type.
   */
  readonly bodyDigest: boolean
}

/** Make a {@link SignatureScheme}; the constant part of the signed bytes is computed once here. */
export function signatureScheme (domain: string, payloadType: string, options: { bodyDigest?: boolean } = {}): SignatureScheme {
  if (domain.length === 0 || payloadType.length === 0) throw new InvalidArgumentError('domain and payloadType must not be empty')
  return Object.freeze({
    domain,
    payloadType,
    prefix: Uint8Array.from([...lengthPrefixed(domain), ...lengthPrefixed(payloadType)]),
    bodyDigest: options.bodyDigest === true
  })
}

/**
 * Agent messages (`/agentnet/msg/2.0.0`): the default of every function here.
 * Envelopes sign the body's SHA-256, not the body (version 2; version 1
 * signed the whole payload).
 */
export const MESSAGE_SIGNATURE_SCHEME = signatureScheme(SIGNING_DOMAIN, PAYLOAD_TYPE, { bodyDigest: true })

/** Session tokens (`/agentnet/token/1.0.0`), used by the tokens layer. */
export const TOKEN_SIGNATURE_SCHEME = signatureScheme('agentnet-token', '/agentnet/token/1.0.0')

/** Agent cards published in the DHT, used by `src/cards`. */
export const CARD_SIGNATURE_SCHEME = signatureScheme('agentnet-card', '/agentnet/card/1.0.0')

/**
 * Trust handshake messages (`/agentnet/trust/2.0.0`: agent-protocol envelopes,
 * used by the trust layer). Its invite codes sign under the same domain with
 * payload type `/agentnet/trust/invite/1.0.0` (`INVITE_SIGNATURE_SCHEME` in
 * `src/trust`).
 */
export const TRUST_SIGNATURE_SCHEME = signatureScheme('agentnet-trust', '/agentnet/trust/2.0.0')

/**
 * MLS group requests (`/agentnet/mls/2.0.0`), used by `src/groups`: the same
 * envelope as agent messages, signed under its own domain so that a group
 * frame can never be replayed as an agent message or the reverse.
 */
export const MLS_SIGNATURE_SCHEME = signatureScheme('agentnet-mls', '/agentnet/mls/2.0.0')

/**
 * The exact bytes that are signed for `payload` (see the module doc):
 * `scheme.prefix || uvarint(len(payload)) || payload`.
 */
export function signedData (payload: Uint8Array, scheme: SignatureScheme = MESSAGE_SIGNATURE_SCHEME): Uint8Array {
  const prefix = scheme.prefix
  const len = uvarint(payload.length)
  const out = new Uint8Array(prefix.length + len.length + payload.length)
  out.set(prefix, 0)
  out.set(len, prefix.length)
  out.set(payload, prefix.length + len.length)
  return out
}

/** Signs payloads of one {@link SignatureScheme} as one local identity. */
export interface MessageSigner {
  /** The identity that signs; the `from` of every message it seals. */
  readonly peerId: PeerId
  /** `peerId` as multihash bytes, ready for `Message.from`. */
  readonly from: Uint8Array
  /** The scheme it signs under. @default MESSAGE_SIGNATURE_SCHEME */
  readonly scheme?: SignatureScheme
  /** Ed25519 signature (64 bytes) over {@link signedData}(payload, scheme). */
  sign(payload: Uint8Array): Uint8Array
}

/**
 * Make a {@link MessageSigner} from a libp2p Ed25519 private key. The node:crypto
 * key is built once here, not per message.
 *
 * @throws {UnsupportedKeyError} when the key is not Ed25519
 * @throws {InvalidArgumentError} when the key bytes are inconsistent
 */
export function createSigner (privateKey: PrivateKey, scheme: SignatureScheme = MESSAGE_SIGNATURE_SCHEME): MessageSigner {
  if (privateKey.type !== 'Ed25519') throw new UnsupportedKeyError(`Only Ed25519 keys can sign agent messages, not ${privateKey.type}`)
  const raw = privateKey.raw
  if (raw.length !== ED25519_SEED_BYTES + ED25519_PUBLIC_KEY_BYTES) throw new InvalidArgumentError('Ed25519 private key must be 64 bytes (seed || public key)')
  const keyObject = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, raw.subarray(0, ED25519_SEED_BYTES)]),
    format: 'der',
    type: 'pkcs8'
  })
  // The public half of libp2p's raw key is stored, not derived: check that it
  // matches the seed, or we would sign as a peer we are not.
  const spki = createPublicKey(keyObject).export({ format: 'der', type: 'spki' })
  if (!Buffer.from(raw.subarray(ED25519_SEED_BYTES)).equals(spki.subarray(SPKI_ED25519_PREFIX.length))) {
    throw new InvalidArgumentError('Ed25519 private key seed does not match its public key')
  }
  const peerId = peerIdFromPrivateKey(privateKey)
  const from = peerId.toMultihash().bytes
  const signer: MessageSigner = {
    peerId,
    from,
    scheme,
    sign (payload: Uint8Array): Uint8Array {
      const sig = cryptoSign(null, signedData(payload, scheme), keyObject)
      return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength)
    }
  }
  signingKeys.set(signer, { key: keyObject, scheme })
  return signer
}

/**
 * The node:crypto key and scheme behind each signer made by {@link createSigner}:
 * kept out of the public `MessageSigner` interface, read only by the crypto
 * pool (`crypto-pool.ts`), which hands the `KeyObject` to its worker threads.
 */
const signingKeys = new WeakMap<MessageSigner, { key: KeyObject, scheme: SignatureScheme }>()

/** The key and scheme of a signer made by {@link createSigner}; `undefined` for any other object. */
export function signingKeyOf (signer: MessageSigner): { key: KeyObject, scheme: SignatureScheme } | undefined {
  return signingKeys.get(signer)
}

/**
 * A small LRU of public KeyObjects, keyed by the raw public key itself (not
 * the peer ID string) so an entry can never belong to a different key, and
 * sharing one cache process-wide is safe.
 */
class PublicKeyCache {
  private readonly entries = new Map<string, KeyObject>()
  private readonly maxSize: number

  constructor (maxSize: number) {
    this.maxSize = maxSize
  }

  get (raw: Uint8Array): KeyObject {
    const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1')
    let key = this.entries.get(id)
    if (key !== undefined) {
      // refresh recency
      this.entries.delete(id)
      this.entries.set(id, key)
      return key
    }
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' })
    if (this.entries.size >= this.maxSize) {
      const oldest = this.entries.keys().next()
      if (oldest.done !== true) this.entries.delete(oldest.value)
    }
    this.entries.set(id, key)
    return key
  }
}

const publicKeys = new PublicKeyCache(PUBLIC_KEY_CACHE_SIZE)

/**
 * Whether `signature` is `peer`'s Ed25519 signature over {@link signedData}(payload, scheme).
 * `payload` must be the bytes as received: nothing is re-encoded.
 *
 * @throws {UnsupportedKeyError} when `peer` is not an Ed25519 peer ID
 */
export function verifySignature (peer: PeerId, payload: Uint8Array, signature: Uint8Array, scheme: SignatureScheme = MESSAGE_SIGNATURE_SCHEME): boolean {
  return verifyRaw(ed25519PublicKeyOf(peer), signedData(payload, scheme), signature)
}

/**
 * The raw 32-byte Ed25519 public key of `peer`.
 *
 * @throws {UnsupportedKeyError} when `peer` is not an Ed25519 peer ID
 */
export function ed25519PublicKeyOf (peer: PeerId): Uint8Array {
  if (peer.type !== 'Ed25519' || peer.publicKey?.raw.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new UnsupportedKeyError(`Only Ed25519 peers can send agent messages, not ${peer.type}`)
  }
  return peer.publicKey.raw
}

/** Whether `signature` is valid over `data` (already {@link signedData}) under the raw public key; never throws. */
export function verifyRaw (publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  let key: KeyObject
  try {
    key = publicKeys.get(publicKey)
  } catch {
    // not a point node:crypto accepts as an Ed25519 key
    return false
  }
  try {
    return cryptoVerify(null, data, key, signature)
  } catch {
    return false
  }
}
