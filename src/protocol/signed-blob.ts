/**
 * A small signed container for the node's other signed objects (session
 * tokens, agent cards): `0x01 || uvarint(len(payload)) || payload || signature`
 * where the signature (Ed25519, 64 bytes) is made under the object's own
 * {@link SignatureScheme}, so a signature for one kind of object is never
 * valid for another.
 */

import { MalformedFrameError } from './errors.ts'
import { SIGNATURE_BYTES } from './envelope.ts'
import { uvarint } from './signing.ts'
import type { MessageSigner } from './signing.ts'

export const SIGNED_BLOB_VERSION = 1


/** Sign `payload` with `signer` (whose scheme decides the domain) and wrap it */
export function encodeSignedBlob (payload: Uint8Array, signer: MessageSigner): Uint8Array {
  const prefix = uvarint(payload.length)
  const out = new Uint8Array(1 + prefix.length + payload.length + SIGNATURE_BYTES)
  out[0] = SIGNED_BLOB_VERSION
  out.set(prefix, 1)
  out.set(payload, 1 + prefix.length)
  out.set(signer.sign(payload), 1 + prefix.length + payload.length)
  return out
}

/**
 * Split a signed blob into payload and signature (views into `bytes`); the
 * caller verifies the signature under its scheme. Throws
 * {@link MalformedFrameError} for anything that is not exactly one blob of at
 * most `maxBytes`.
 */
export function decodeSignedBlob (bytes: Uint8Array, maxBytes: number): { payload: Uint8Array, signature: Uint8Array } {
  if (bytes.length > maxBytes || bytes.length < 2 + SIGNATURE_BYTES || bytes[0] !== SIGNED_BLOB_VERSION) {
    throw new MalformedFrameError('malformed signed object')
  }
  let length = 0
  let i = 1
  for (let shift = 0; ; shift += 7) {
    const b = bytes[i]
    if (b === undefined || shift > 21) {
      throw new MalformedFrameError('malformed signed object length')
    }
    length += (b & 0x7f) * 2 ** shift
    i++
    if ((b & 0x80) === 0) break
  }
  if (i + length + SIGNATURE_BYTES !== bytes.length) {
    throw new MalformedFrameError('signed object length does not match')
  }
  return { payload: bytes.subarray(i, i + length), signature: bytes.subarray(i + length) }
}
