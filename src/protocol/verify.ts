/**
 * Sealing outbound frames and the one place where inbound frames are checked.
 *
 * @module
 */

import { randomBytes } from 'node:crypto'
import { signingPayload } from './digest.ts'
import { decodeMessage, decodeSignedMessage, encodeFrameToSign, MIN_NONCE_BYTES, PROTOCOL_VERSION, setFrameSignature } from './envelope.ts'
import {
  BadSignatureError,
  BodyTooLargeError,
  FutureMessageError,
  InvalidArgumentError,
  SenderMismatchError,
  StaleMessageError,
  WrongRecipientError
} from './errors.ts'
import { ed25519PublicKeyOf, MESSAGE_SIGNATURE_SCHEME, verifySignature } from './signing.ts'
import type { CryptoPool } from './crypto-pool.ts'
import type { Message, MessageKind } from './envelope.ts'
import type { ReplayCache } from './replay-cache.ts'
import type { MessageSigner, SignatureScheme } from './signing.ts'
import type { PeerId } from '@libp2p/interface'

/** Default {@link OpenContext.maxBodyBytes}: 1 MiB. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
/** Default {@link OpenContext.maxSkewMs}. */
export const DEFAULT_MAX_SKEW_MS = 30_000
/** Smallest accepted {@link OpenContext.windowMs}: tighter windows reject honest peers with ordinary clock drift. */
export const MIN_WINDOW_MS = 30_000
/** Largest accepted {@link OpenContext.windowMs}: longer windows make the replay cache hold nonces for longer. */
export const MAX_WINDOW_MS = 300_000
/** Content type sealed when none is given. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream'

/** What {@link openEnvelope} needs to know about the receiving side. */
export interface OpenContext {
  /** This node: a peer ID or its multihash bytes. `to` must equal it. */
  localPeer: PeerId | Uint8Array
  /** The peer the secure channel (Noise) authenticated. `from` must equal it. */
  remotePeer: PeerId
  /** Where seen nonces are kept; the nonce is recorded only if every check passes. */
  replayCache: ReplayCache
  /**
   * Current time, ms since the epoch.
   *
   * @default Date.now()
   */
  now?: number
  /**
   * Largest body accepted, in bytes.
   *
   * @default 1_048_576
   */
  maxBodyBytes?: number
  /**
   * Messages with a timestamp more than this many ms before `now` are stale.
   * Must lie in 30_000..300_000 and must not exceed `replayCache.windowMs`
   * (a longer verifier window than the cache's would accept messages whose
   * nonces the cache has already forgotten).
   *
   * @default replayCache.windowMs (60_000 for a default cache)
   */
  windowMs?: number
  /**
   * Messages with a timestamp more than this many ms after `now` are from the future.
   *
   * @default 30_000
   */
  maxSkewMs?: number
  /**
   * The signature scheme the frame was sealed under (the signer's scheme on
   * the sending side): another protocol that reuses this envelope passes its
   * own, e.g. `MLS_SIGNATURE_SCHEME`.
   *
   * @default MESSAGE_SIGNATURE_SCHEME
   */
  scheme?: SignatureScheme
  /**
   * Where {@link openEnvelopeAsync} checks the signature (possibly on a
   * worker thread); the sync {@link openEnvelope} ignores it.
   *
   * @default inline
   */
  cryptoPool?: CryptoPool
  /**
   * Whether a verified frame answers a request this node is waiting for (a
   * `response` or `error` whose `inReplyTo` names a pending request to this
   * very peer). Such a frame skips steps 7 and 8: the pending request, a
   * fresh random ID used once, already makes it unreplayable, and a peer whose
   * clock differs from ours must still be able to tell us so (`ClockSkew`) or
   * answer us right after our own restart.
   *
   * @default none (every frame is checked in full)
   */
  expectedReply?: (message: Message) => boolean
}

/** A frame that passed every check. */
export interface OpenedEnvelope {
  /** The decoded payload. Byte fields are views into the frame. */
  message: Message
  /** The sender; the same object as `ctx.remotePeer`, which `message.from` was checked to equal. */
  fromPeer: PeerId
  /** The payload bytes exactly as signed (e.g. for an audit log). */
  payload: Uint8Array
  /** The Ed25519 signature over `payload`. */
  signature: Uint8Array
}

function nonNegativeInteger (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`)
  return value
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return false
  }
  return true
}

function peerBytes (peer: PeerId | Uint8Array): Uint8Array {
  return peer instanceof Uint8Array ? peer : peer.toMultihash().bytes
}

/**
 * Check an inbound frame and return its message. The checks run in exactly
 * this order, and the first failure throws:
 *
 * 1. the frame and payload are a canonical encoding — {@link MalformedFrameError}
 * 2. the version is supported — {@link UnsupportedVersionError}
 * 3. the body is within `maxBodyBytes` — {@link BodyTooLargeError}
 * 4. `from` is the authenticated remote peer — {@link SenderMismatchError}
 * 5. `to` is the local peer — {@link WrongRecipientError}
 * 6. the signature verifies over the received payload bytes — {@link BadSignatureError}
 *    ({@link UnsupportedKeyError} if the remote peer's key is not Ed25519)
 * 7. `now - windowMs <= timestamp <= now + maxSkewMs` —
 *    {@link StaleMessageError} / {@link FutureMessageError} (both bounds inclusive)
 * 8. the nonce is new — {@link ReplayError} ({@link RestartedAtError} at or
 *    below the after-crash floor); only now is it recorded.
 *
 * Steps 7 and 8 are skipped for an answer `ctx.expectedReply` claims.
 *
 * The cheap structural and identity checks come before the signature, which
 * is the expensive step, and nothing is recorded for a frame that fails, so a
 * forged frame cannot use up a nonce slot.
 *
 * @throws {InvalidArgumentError} when `ctx` holds invalid options
 */
export function openEnvelope (frame: Uint8Array, ctx: OpenContext): OpenedEnvelope {
  const c = checkBeforeSignature(frame, ctx)
  const scheme = ctx.scheme ?? MESSAGE_SIGNATURE_SCHEME
  return acceptSigned(c, ctx, verifySignature(c.remote, signedPayloadOf(c, scheme), c.signature, scheme))
}

/**
 * {@link openEnvelope} with the signature check (step 6) on `ctx.cryptoPool`
 * when one is given, which may run it on a worker thread. Exactly the same
 * checks in the same order, by the same code: steps 1–5 run before anything
 * is handed off, and steps 7–8 (the window, then the replay cache insert)
 * only once the signature is known to be valid, so a forged frame still
 * costs no nonce slot. The window is judged at `ctx.now`, the time the frame
 * was received, not the time its verification ended.
 */
export async function openEnvelopeAsync (frame: Uint8Array, ctx: OpenContext): Promise<OpenedEnvelope> {
  const c = checkBeforeSignature(frame, ctx)
  const scheme = ctx.scheme ?? MESSAGE_SIGNATURE_SCHEME
  const pool = ctx.cryptoPool
  let valid = pool == null
    ? verifySignature(c.remote, signedPayloadOf(c, scheme), c.signature, scheme)
    : scheme.bodyDigest
      // the pool hashes a large body on a worker too
      ? pool.verifyDigested(ed25519PublicKeyOf(c.remote), c.payload, c.message.body, c.signature, scheme)
      : pool.verify(ed25519PublicKeyOf(c.remote), c.payload, c.signature, scheme)
  if (typeof valid !== 'boolean') valid = await valid
  return acceptSigned(c, ctx, valid)
}

/** A frame that passed steps 1–5 of {@link openEnvelope}, and the options it is judged by. */
interface Prechecked {
  message: Message
  payload: Uint8Array
  signature: Uint8Array
  remote: PeerId
  now: number
  windowMs: number
  maxSkewMs: number
}

/** Options, then steps 1–5 of {@link openEnvelope}: everything cheap, before the signature. */
function checkBeforeSignature (frame: Uint8Array, ctx: OpenContext): Prechecked {
  const now = ctx.now ?? Date.now()
  const maxBodyBytes = nonNegativeInteger('maxBodyBytes', ctx.maxBodyBytes, DEFAULT_MAX_BODY_BYTES)
  const maxSkewMs = nonNegativeInteger('maxSkewMs', ctx.maxSkewMs, DEFAULT_MAX_SKEW_MS)
  const windowMs = nonNegativeInteger('windowMs', ctx.windowMs, ctx.replayCache.windowMs)
  if (windowMs < MIN_WINDOW_MS || windowMs > MAX_WINDOW_MS) throw new InvalidArgumentError(`windowMs must be in ${MIN_WINDOW_MS}..${MAX_WINDOW_MS}`)
  if (windowMs > ctx.replayCache.windowMs) throw new InvalidArgumentError('windowMs must not exceed the replay cache window')
  if (!Number.isSafeInteger(now)) throw new InvalidArgumentError('now must be an integer')

  const { payload, signature } = decodeSignedMessage(frame)
  const message = decodeMessage(payload)

  if (message.body.length > maxBodyBytes) throw new BodyTooLargeError(message.body.length, maxBodyBytes)

  const remote = ctx.remotePeer
  if (!equalBytes(message.from, remote.toMultihash().bytes)) {
    throw new SenderMismatchError('Message sender is not the authenticated remote peer')
  }
  if (!equalBytes(message.to, peerBytes(ctx.localPeer))) {
    throw new WrongRecipientError('Message is addressed to another peer')
  }
  return { message, payload, signature, remote, now, windowMs, maxSkewMs }
}

/**
 * What the signature of a prechecked frame is over: the payload, or for a
 * body-digest scheme the payload with its body replaced by the body's SHA-256
 * (hashed here, in step 6, after the cheap checks).
 */
function signedPayloadOf (c: Prechecked, scheme: SignatureScheme): Uint8Array {
  return scheme.bodyDigest ? signingPayload(c.payload, c.message.body) : c.payload
}

/** Steps 6–8 of {@link openEnvelope}, given the signature's verdict: only a valid frame reaches the replay cache. */
function acceptSigned (c: Prechecked, ctx: OpenContext, signatureValid: boolean): OpenedEnvelope {
  if (!signatureValid) {
    throw new BadSignatureError('Message signature is invalid')
  }
  const { message, now, remote } = c

  if ((message.kind === 'response' || message.kind === 'error') && ctx.expectedReply?.(message) === true) {
    return { message, fromPeer: remote, payload: c.payload, signature: c.signature }
  }

  const ts = message.timestamp
  if (ts < now - c.windowMs) throw new StaleMessageError(ts, now, c.windowMs)
  if (ts > now + c.maxSkewMs) throw new FutureMessageError(ts, now, c.maxSkewMs)

  ctx.replayCache.checkAndRecord(remote.toString(), message.nonce, ts, now)

  return { message, fromPeer: remote, payload: c.payload, signature: c.signature }
}

/** The caller's part of an outbound message; {@link sealEnvelope} fills in the rest. */
export interface SealFields {
  /** The recipient: a peer ID or its multihash bytes. */
  to: PeerId | Uint8Array
  service: string
  kind: MessageKind
  /** Request ID, unique per sender. */
  id: string
  /** @default '' */
  inReplyTo?: string
  /** @default 0 (no deadline) */
  ttl?: number
  /** @default 'application/octet-stream' */
  contentType?: string
  /** @default empty (no token) */
  token?: Uint8Array
  /** @default empty */
  body?: Uint8Array
  /**
   * ms since the epoch; set it only to seal at a controlled time (tests).
   *
   * @default Date.now()
   */
  timestamp?: number
}

const EMPTY = new Uint8Array(0)

/**
 * Build, sign and encode an outbound frame: fills in `version`, `from` (the
 * signer), a fresh 16-byte random `nonce` and `timestamp`, then returns the
 * `SignedMessage` bytes (to be length-prefixed by the stream layer).
 *
 * @throws {InvalidArgumentError} when a field cannot be encoded
 */
export function sealEnvelope (fields: SealFields, signer: MessageSigner): Uint8Array {
  const { frame, payload } = unsignedFrame(fields, signer)
  return setFrameSignature(frame, signer.sign(toSign(payload, fields, signer)))
}

/**
 * {@link sealEnvelope}, signing on `pool` (possibly a worker thread) when one
 * is given. The same payload and the same signature as the sync form.
 */
export async function sealEnvelopeAsync (fields: SealFields, signer: MessageSigner, pool?: CryptoPool): Promise<Uint8Array> {
  const { frame, payload } = unsignedFrame(fields, signer)
  let signature = pool == null
    ? signer.sign(toSign(payload, fields, signer))
    : (signer.scheme ?? MESSAGE_SIGNATURE_SCHEME).bodyDigest
        ? pool.signDigested(signer, payload, fields.body ?? EMPTY)
        : pool.sign(signer, payload)
  if (signature instanceof Promise) signature = await signature
  return setFrameSignature(frame, signature)
}

/** The bytes the signer signs for `payload`: see {@link signingPayload}. */
function toSign (payload: Uint8Array, fields: SealFields, signer: MessageSigner): Uint8Array {
  return (signer.scheme ?? MESSAGE_SIGNATURE_SCHEME).bodyDigest ? signingPayload(payload, fields.body ?? EMPTY) : payload
}

/** Bytes of CSPRNG output drawn at once and cut into nonces. */
const NONCE_BLOCK_BYTES = 4096
let nonceBlock = new Uint8Array(0)
let nonceAt = 0

/**
 * A fresh 16-byte nonce, cut from a block of `randomBytes` output drawn
 * 4 KiB at a time: a `randomBytes` call per message cost a system call each
 * (OpenSSL checks the process ID on every call), a measurable share of a
 * sender's CPU. A block is never refilled, so a nonce handed out never
 * changes; nonces are public, so holding the block costs nothing.
 */
function freshNonce (): Uint8Array {
  if (nonceAt + MIN_NONCE_BYTES > nonceBlock.length) {
    const block = randomBytes(NONCE_BLOCK_BYTES)
    nonceBlock = new Uint8Array(block.buffer, block.byteOffset, block.byteLength)
    nonceAt = 0
  }
  const nonce = nonceBlock.subarray(nonceAt, nonceAt + MIN_NONCE_BYTES)
  nonceAt += MIN_NONCE_BYTES
  return nonce
}

/** The frame of an outbound message, its payload encoded in place and its signature to come */
function unsignedFrame (fields: SealFields, signer: MessageSigner): { frame: Uint8Array, payload: Uint8Array } {
  const nonce = freshNonce()
  return encodeFrameToSign({
    version: PROTOCOL_VERSION,
    from: signer.from,
    to: peerBytes(fields.to),
    service: fields.service,
    kind: fields.kind,
    id: fields.id,
    inReplyTo: fields.inReplyTo ?? '',
    nonce,
    timestamp: fields.timestamp ?? Date.now(),
    ttl: fields.ttl ?? 0,
    contentType: fields.contentType ?? DEFAULT_CONTENT_TYPE,
    token: fields.token ?? EMPTY,
    body: fields.body ?? EMPTY
  })
}
