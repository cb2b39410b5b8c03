/**
 * did:key for Ed25519 peer IDs (W3C CCG did:key method):
 *
 * ```
 * did:key:z<base58btc(0xed 0x01 || ed25519 public key (32 bytes))>
 * ```
 *
 * The verification method is `did:key:z…#z…` (the fragment repeats the
 * multibase value). A libp2p Ed25519 peer ID embeds the same public key
 * (identity multihash), so the two convert both ways without any lookup.
 *
 * @module
 */

import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { BASE58BTC_PREFIX, DID_KEY_PREFIX, ED25519_PUB_MULTICODEC, ED25519_PUBLIC_KEY_BYTES } from './constants.ts'
import { InvalidDidError } from './errors.ts'
import type { PeerId } from '@libp2p/interface'

/** The raw 32-byte Ed25519 public key of a peer ID */
export function ed25519PublicKeyOf (peer: PeerId | string): Uint8Array {
  const id = typeof peer === 'string' ? peerIdFromString(peer) : peer
  const raw = id.publicKey?.raw
  if (id.type !== 'Ed25519' || raw?.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new InvalidDidError(`${id.toString()} is not an Ed25519 peer ID`)
  }
  return raw
}

/** did:key of an Ed25519 public key */
export function didKeyFromPublicKey (raw: Uint8Array): string {
  if (raw.length !== ED25519_PUBLIC_KEY_BYTES) throw new InvalidDidError('an Ed25519 public key is 32 bytes')
  const bytes = new Uint8Array(ED25519_PUB_MULTICODEC.length + raw.length)
  bytes.set(ED25519_PUB_MULTICODEC, 0)
  bytes.set(raw, ED25519_PUB_MULTICODEC.length)
  return `${DID_KEY_PREFIX}${BASE58BTC_PREFIX}${uint8ArrayToString(bytes, 'base58btc')}`
}

/** did:key of an Ed25519 peer ID */
export function didKeyFromPeerId (peer: PeerId | string): string {
  return didKeyFromPublicKey(ed25519PublicKeyOf(peer))
}

/** The verification method ID (JWS `kid`) of a did:key: `did:key:z…#z…` */
export function didKeyVerificationMethod (did: string): string {
  publicKeyFromDidKey(did)
  return `${did}#${did.slice(DID_KEY_PREFIX.length)}`
}

/** The Ed25519 public key a did:key (or its verification method) names; throws {@link InvalidDidError} */
export function publicKeyFromDidKey (did: string): Uint8Array {
  const base = did.split('#', 1)[0] ?? ''
  if (!base.startsWith(DID_KEY_PREFIX + BASE58BTC_PREFIX)) throw new InvalidDidError('not a base58btc did:key')
  let bytes: Uint8Array
  try {
    bytes = uint8ArrayFromString(base.slice(DID_KEY_PREFIX.length + 1), 'base58btc')
  } catch {
    throw new InvalidDidError('did:key is not valid base58btc')
  }
  if (bytes[0] !== ED25519_PUB_MULTICODEC[0] || bytes[1] !== ED25519_PUB_MULTICODEC[1] || bytes.length !== 2 + ED25519_PUBLIC_KEY_BYTES) {
    throw new InvalidDidError('did:key is not an Ed25519 (0xed01) key')
  }
  const hash = did.indexOf('#')
  if (hash !== -1 && did.slice(hash + 1) !== base.slice(DID_KEY_PREFIX.length)) {
    throw new InvalidDidError('did:key fragment does not repeat the key')
  }
  return bytes.subarray(2)
}

/** The libp2p peer ID a did:key names */
export function peerIdFromDidKey (did: string): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKeyFromDidKey(did)))
}
