/**
 * Errors of the agent message protocol.
 *
 * Every rejection of an inbound frame is a distinct class with a stable
 * `code`, so the stream layer can answer with a typed error (the `code` is the
 * wire error code) and tests and metrics can tell rejections apart without
 * parsing messages. 
 * for comparisons that do not need an instance.
 *
 * The first group (up to `ReplayError`) are wire codes: the outcome of checking
 * an inbound frame. `InvalidArgumentError` and `CorruptSnapshotError` are local
 * errors (a caller mistake, a damaged file) and are never sent to a peer.
 */

import { AgentnetError } from '../errors/index.ts'

/** Every `code` a {@link ProtocolError} can carry. */
export type ProtocolErrorCode =
  | 'MalformedFrame'
  | 'UnsupportedVersion'
  | 'BodyTooLarge'
  | 'SenderMismatch'
  | 'WrongRecipient'
  | 'BadSignature'
  | 'UnsupportedKey'
  | 'StaleMessage'
  | 'FutureMessage'
  | 'Replay'
  | 'RestartedAt'
  | 'InvalidArgument'
  | 'CorruptSnapshot'

/** Common base: `err instanceof ProtocolError` catches every error of this module. */
export abstract class ProtocolError extends AgentnetError {
  abstract override readonly code: ProtocolErrorCode
}

/**
 * The frame is not a canonical encoding of a `SignedMessage` wrapping a
 * `Message` (truncated, bad varint, unknown or repeated field, fields out of
 * order, invalid UTF-8, nonce of the wrong size, ...).
 */
export class MalformedFrameError extends ProtocolError { override readonly code = 'MalformedFrame' }

/** The payload's `version` field is not one this implementation speaks. */
export class UnsupportedVersionError extends ProtocolError {
  override readonly code = 'UnsupportedVersion'
  /** The version the peer sent (0 when the field was absent). */
  readonly version: number

  constructor (version: number, message = `Unsupported message version ${version}`) {
    super(message)
    this.version = version
  }
}

/** The body is larger than the receiver accepts. */
export class BodyTooLargeError extends ProtocolError {
  override readonly code = 'BodyTooLarge'
  readonly size: number
  readonly limit: number

  constructor (size: number, limit: number) {
    super(`Body of ${size} bytes exceeds the limit of ${limit} bytes`)
    this.size = size
    this.limit = limit
  }
}

/** `from` is not the peer that the secure channel (Noise) authenticated. */
export class SenderMismatchError extends ProtocolError { override readonly code = 'SenderMismatch' }

/** `to` is not this node: the frame was meant for someone else (or replayed to us). */
export class WrongRecipientError extends ProtocolError { override readonly code = 'WrongRecipient' }

/** The Ed25519 signature does not verify over the received payload bytes. */
export class BadSignatureError extends ProtocolError { override readonly code = 'BadSignature' }

/**
 * The key is not Ed25519 (e.g. an RSA or secp256k1 peer ID, or a private key
 * of another type). Thrown at the signature step of verification.
 */
export class UnsupportedKeyError extends ProtocolError { override readonly code = 'UnsupportedKey' }

/** The timestamp is older than the replay window. */
export class StaleMessageError extends ProtocolError {
  override readonly code = 'StaleMessage'
  readonly timestamp: number
  readonly now: number

  constructor (timestamp: number, now: number, windowMs: number) {
    super(`Message timestamp ${timestamp} is more than ${windowMs} ms before ${now}`)
    this.timestamp = timestamp
    this.now = now
  }
}

/** The timestamp is further in the future than the allowed clock skew. */
export class FutureMessageError extends ProtocolError {
  override readonly code = 'FutureMessage'
  readonly timestamp: number
  readonly now: number

  constructor (timestamp: number, now: number, maxSkewMs: number) {
    super(`Message timestamp ${timestamp} is more than ${maxSkewMs} ms after ${now}`)
    this.timestamp = timestamp
    this.now = now
  }
}

/**
 * The message may have been seen before: its nonce is in the replay cache, or
 * its timestamp is at or below a point the cache can no longer vouch for
 * (a peer's eviction watermark, the `notBefore` floor after a crash, or the
 * purge horizon).
 */
export class ReplayError extends ProtocolError {
  override readonly code: 'Replay' | 'RestartedAt' = 'Replay'
}

/**
 * The timestamp is at or below the replay floor: the node restarted without a
 * clean-stop snapshot (or folded a sybil flood into the floor) and cannot
 * vouch for any earlier timestamp. Not a replay by itself: an honest sender
 * re-seals with a timestamp past {@link RestartedAtError.floor}, which the
 * receiver signs into its `error` reply.
 */
export class RestartedAtError extends ReplayError {
  override readonly code = 'RestartedAt'
  /** Every timestamp at or below this (ms since the epoch) is refused */
  readonly floor: number

  constructor (floor: number) {
    super(`Timestamp is at or below the replay floor ${floor} (the node restarted without a clean-stop snapshot)`)
    this.floor = floor
  }
}

/** A caller passed an invalid option or field (local programming error, not a wire code). */
export class InvalidArgumentError extends ProtocolError { override readonly code = 'InvalidArgument' }

/** A replay-cache snapshot is damaged, truncated or of an unknown format. */
export class CorruptSnapshotError extends ProtocolError { override readonly code = 'CorruptSnapshot' }
