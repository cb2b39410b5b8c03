/**
 * The signing payload of body-digest schemes (`/agentnet/msg/2.0.0`): what
 * is signed in place of the payload, so that signing costs the same for
 * every body size and the body can be hashed apart from the signature.
 *
 * @module
 */

import { hash } from 'node:crypto'
import { MalformedFrameError } from './errors.ts'
import { uvarint } from './signing.ts'

/** Tag of `Message.body` (field 13, length-delimited), the last field of a payload. */
export const BODY_TAG = 13 << 3 | 2

/** Length of the body digest in a signing payload (SHA-256). */
export const BODY_DIGEST_BYTES = 32

/**
 * What a body-digest scheme (the agent message scheme, `/agentnet/msg/2.0.0`)
 * signs in place of `payload`: the payload with its body field replaced by
 * the SHA-256 of the body,
 *
 * ```
 * header || 0x6a || 0x20 || SHA-256(body)
 * ```
 *
 * where `header` is every byte of `payload` before the body field (the body
 * is the last field of the canonical encoding, so `header` is a prefix of the
 * payload, and it is the whole payload when the body is empty). The result is
 * itself a canonical `Message` encoding (`envelope.ts`) whose body is the
 * 32-byte digest. The signature then costs the same for every body size, and
 * the body can be hashed as it streams in.
 *
 * `body` must be the body of `payload` (the view `decodeMessage` returns, or
 * the bytes that were encoded).
 *
 * @throws {MalformedFrameError} when `payload` does not end with that body field
 */
export function signingPayload (payload: Uint8Array, body: Uint8Array): Uint8Array {
  return withBodyDigest(payload.subarray(0, headerLengthOf(payload, body.length)), body)
}

/** `header || 0x6a || 0x20 || SHA-256(body)`: {@link signingPayload} from the header and the body. */
export function withBodyDigest (header: Uint8Array, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(header.length + 2 + BODY_DIGEST_BYTES)
  out.set(header, 0)
  out[header.length] = BODY_TAG
  out[header.length + 1] = BODY_DIGEST_BYTES
  // the one-shot form: a Hash object per message cost more than hashing a small body
  out.set(hash('sha256', body, 'buffer'), header.length + 2)
  return out
}

/**
 * Where the body field starts in `payload` (the length of the header), the
 * payload's length when `bodyLength` is 0.
 *
 * @throws {MalformedFrameError} when `payload` does not end with a body field of that length
 */
export function headerLengthOf (payload: Uint8Array, bodyLength: number): number {
  const headerLength = bodyLength === 0 ? payload.length : payload.length - bodyLength - 1 - uvarint(bodyLength).length
  if (headerLength < 0 || (bodyLength > 0 && payload[headerLength] !== BODY_TAG)) {
    throw new MalformedFrameError('Malformed frame: the body is not the last field of the payload')
  }
  return headerLength
}
