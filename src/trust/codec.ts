/**
 * Trust frames (`/agentnet/trust/2.0.0`) on the one envelope of the node:
 * every handshake message is an agent-protocol `SignedMessage` sealed by
 * {@link sealEnvelope} under {@link TRUST_SIGNATURE_SCHEME} and checked by
 * {@link openEnvelope} (canonical encoding, version, sender = Noise peer,
 * recipient, signature, window, replay cache), so the trust layer has no
 * verification code of its own. What is left here is the mapping of the
 * handshake onto the envelope's fields and the check of the trust-specific
 * content, which runs after the envelope checks. See the package doc in
 * `index.ts` for the byte-exact description.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { randomUUID } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import {
  decodeMessage,
  decodeSignedMessage,
  MalformedFrameError,
  openEnvelope,
  sealEnvelope,
  TRUST_SIGNATURE_SCHEME
} from '../protocol/index.ts'
import { MAX_SUCCESSION_CHARS } from '../identity/rotation.ts'
import { MAX_ERROR_MESSAGE_CHARS, MAX_FRAME_BYTES, MAX_INVITE_CODE_CHARS, MAX_REASON_BYTES } from './constants.ts'
import { InvalidReasonError, ReasonTooLongError } from './errors.ts'
import type { Message, MessageKind, MessageSigner, ReplayCache } from '../protocol/index.ts'
import type { PeerId } from '@libp2p/interface'

/** Messages that open an exchange (sent on a new stream, envelope kind `request`). */
export type InitiatorType = 'request' | 'approve' | 'reject' | 'revoke' | 'invite' | 'succession'
/** Messages that answer one (sent back on the same stream, kind `response`, or `error` for `error`). */
export type ReplyType = 'pending' | 'approve' | 'ok' | 'error'
export type HandshakeType = InitiatorType | ReplyType

/** Content type of the text bodies (`reason`, invite code, succession record). */
export const TEXT_CONTENT_TYPE = 'text/plain; charset=utf-8'
/** Content type of `error` bodies, as for agent error envelopes. */
export const ERROR_CONTENT_TYPE = 'application/json'

/** A trust message read from an envelope that passed its checks. */
export interface HandshakeMessage {
  type: HandshakeType
  /** Whether it opens an exchange (`request` kind) or answers one */
  initiator: boolean
  /** Sender peer ID (base58btc) */
  from: string
  /** Recipient peer ID */
  to: string
  /** The envelope's request ID (a UUID) */
  id: string
  /** In a reply, the `id` of the message it answers; `''` in an initiator and in refusals of unread frames */
  re: string
  /** Sender's clock, ms since the epoch */
  ts: number
  /** Justification: in `request`, optional in `reject` / `revoke` */
  reason?: string
  /** The invite code, in `invite` */
  invite?: string
  /** A key-rotation succession record (`src/identity/rotation.ts`), in `succession` */
  succession?: string
  /** Error code, in `error` */
  code?: string
  /** Error text, in `error` */
  message?: string
}

/** The fields a sender chooses; {@link sealTrustFrame} fills in the rest. */
export interface HandshakeFields {
  type: HandshakeType
  to: PeerId | string
  /** Set on replies: the `id` answered (`''` when the frame was not read). Its presence makes the frame a reply. */
  re?: string
  /** @default a random UUID */
  id?: string
  reason?: string
  invite?: string
  succession?: string
  code?: string
  message?: string
  /** ms since the epoch; set only to seal at a controlled time (tests) */
  ts?: number
}

/** Which text field a type carries in its body, and whether it is required. */
const TEXT_FIELD: Readonly<Partial<Record<HandshakeType, { key: 'reason' | 'invite' | 'succession', required: boolean }>>> = {
  request: { key: 'reason', required: false },
  reject: { key: 'reason', required: false },
  revoke: { key: 'reason', required: false },
  invite: { key: 'invite', required: true },
  succession: { key: 'succession', required: true }
}

/** Types a node accepts on a stream someone else opened. */
export const INITIATOR_TYPES: ReadonlySet<string> = new Set<InitiatorType>(['request', 'approve', 'reject', 'revoke', 'invite', 'succession'])
const REPLY_TYPES: ReadonlySet<string> = new Set<ReplyType>(['pending', 'approve', 'ok', 'error'])

const encoder = new TextEncoder()
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

// C0 controls except TAB and LF, DEL, C1 controls, and the bidirectional
// marks and overrides that can disguise text on an operator's terminal
// eslint-disable-next-line no-control-regex
const FORBIDDEN_TEXT = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]/
const BASE64URL = /^[A-Za-z0-9_-]+$/

/**
 * Check a justification: at most 1 KiB of UTF-8, no control characters other
 * than TAB and LF, no bidirectional overrides, no lone surrogates.
 *
 * @throws {ReasonTooLongError}
 * @throws {InvalidReasonError}
 */
export function checkReason (reason: unknown): string {
  if (typeof reason !== 'string') throw new InvalidReasonError('reason must be a string')
  const bytes = Buffer.byteLength(reason, 'utf8')
  if (bytes > MAX_REASON_BYTES) throw new ReasonTooLongError(`reason of ${bytes} bytes exceeds the limit of ${MAX_REASON_BYTES} bytes`)
  if (!reason.isWellFormed() || FORBIDDEN_TEXT.test(reason)) {
    throw new InvalidReasonError('reason holds control or bidirectional-override characters')
  }
  return reason
}

/** Make an error text from a peer safe to print: controls removed, length capped. */
export function sanitizeText (text: string): string {
  const cleaned = text.toWellFormed().replace(new RegExp(FORBIDDEN_TEXT.source, 'g'), '\uFFFD')
  return cleaned.length > MAX_ERROR_MESSAGE_CHARS ? cleaned.slice(0, MAX_ERROR_MESSAGE_CHARS) + '…' : cleaned
}

function bodyOf (fields: HandshakeFields): { body: Uint8Array, contentType: string } {
  if (fields.type === 'error') {
    return { body: encoder.encode(JSON.stringify({ code: fields.code ?? 'Error', message: fields.message ?? '' })), contentType: ERROR_CONTENT_TYPE }
  }
  const text = TEXT_FIELD[fields.type]
  const value = text === undefined ? undefined : fields[text.key]
  if (value === undefined || value.length === 0) return { body: new Uint8Array(0), contentType: '' }
  return { body: encoder.encode(value), contentType: TEXT_CONTENT_TYPE }
}

/**
 * Build and sign a trust frame (what goes inside the libp2p length prefix):
 * an envelope with `service` = the message type, `kind` = `request` for an
 * initiator (no `re`), `response` for a reply, `error` for an `error` reply.
 * `signer` must sign under {@link TRUST_SIGNATURE_SCHEME}.
 */
export function sealTrustFrame (fields: HandshakeFields, signer: MessageSigner): Uint8Array {
  const reply = fields.re !== undefined
  const kind: MessageKind = !reply ? 'request' : fields.type === 'error' ? 'error' : 'response'
  const { body, contentType } = bodyOf(fields)
  return sealEnvelope({
    to: (typeof fields.to === 'string' ? peerIdFromString(fields.to) : fields.to).toMultihash().bytes,
    service: fields.type,
    kind,
    id: fields.id ?? randomUUID(),
    inReplyTo: fields.re ?? '',
    contentType,
    body,
    ...(fields.ts === undefined ? {} : { timestamp: fields.ts })
  }, signer)
}

function malformed (text: string): MalformedFrameError {
  return new MalformedFrameError(`Malformed trust frame: ${text}`)
}

function peerString (bytes: Uint8Array): string {
  return uint8ArrayToString(bytes, 'base58btc')
}

function readError (body: Uint8Array): { code: string, message: string } {
  let parsed: unknown
  try {
    parsed = JSON.parse(utf8.decode(body))
  } catch {
    throw malformed('error body is not UTF-8 JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw malformed('error body is not a JSON object')
  const { code, message } = parsed as Record<string, unknown>
  if (Object.keys(parsed).length !== 2 || typeof code !== 'string' || typeof message !== 'string') throw malformed('error body must be {"code","message"}')
  if (!/^[A-Za-z]{1,64}$/.test(code)) throw malformed('error code must be 1..64 letters')
  if (message.length > 4 * MAX_ERROR_MESSAGE_CHARS) throw malformed('error message is too long')
  return { code, message }
}

/**
 * Read the trust content of an envelope: `kind` and `service` name one of
 * the types above, `ttl` and `token` are empty, and the body is what the
 * type carries (nothing, a text, or an error object).
 *
 * @throws {MalformedFrameError}
 * @throws {ReasonTooLongError}
 * @throws {InvalidReasonError}
 */
export function readHandshake (message: Message): HandshakeMessage {
  const type = message.service
  const initiator = message.kind === 'request'
  if (initiator ? !INITIATOR_TYPES.has(type) : !REPLY_TYPES.has(type)) throw malformed(`a ${message.kind} cannot be a ${JSON.stringify(type.slice(0, 64))}`)
  if (message.kind === 'oneway' || (message.kind === 'error') !== (type === 'error')) throw malformed(`kind ${message.kind} does not fit a ${type}`)
  if (initiator && message.inReplyTo !== '') throw malformed('an initiator answers nothing')
  if (message.ttl !== 0 || message.token.length !== 0) throw malformed('ttl and token must be empty')
  const out: HandshakeMessage = {
    type: type as HandshakeType,
    initiator,
    from: peerString(message.from),
    to: peerString(message.to),
    id: message.id,
    re: message.inReplyTo,
    ts: message.timestamp
  }
  const { body, contentType } = message
  if (type === 'error') {
    if (contentType !== ERROR_CONTENT_TYPE) throw malformed(`an error carries ${ERROR_CONTENT_TYPE}`)
    Object.assign(out, readError(body))
    return out
  }
  const text = TEXT_FIELD[type as HandshakeType]
  if (contentType !== (body.length > 0 ? TEXT_CONTENT_TYPE : '')) throw malformed(`content type must be ${body.length > 0 ? TEXT_CONTENT_TYPE : 'empty'}`)
  if (text === undefined) {
    if (body.length > 0) throw malformed(`a ${type} has no body`)
    return out
  }
  if (body.length === 0) {
    if (text.required) throw malformed(`a ${type} needs its ${text.key}`)
    if (type === 'request') out.reason = ''
    return out
  }
  let value: string
  try {
    value = utf8.decode(body)
  } catch {
    if (text.key === 'reason') throw new InvalidReasonError('reason is not UTF-8')
    throw malformed(`${text.key} is not UTF-8`)
  }
  if (text.key === 'reason') {
    out.reason = checkReason(value)
  } else {
    const max = text.key === 'invite' ? MAX_INVITE_CODE_CHARS : MAX_SUCCESSION_CHARS
    if (value.length > max || !BASE64URL.test(value)) throw malformed(`${text.key} must be base64url of at most ${max} characters`)
    out[text.key] = value
  }
  return out
}

/** What {@link openTrustFrame} needs to know about the receiving side. */
export interface OpenTrustContext {
  /** This node */
  localPeer: PeerId
  /** The Noise-authenticated peer on the other end of the stream */
  remotePeer: PeerId
  /** The node's replay cache (shared with agent messages) or one of its own */
  replayCache: ReplayCache
  /** Oldest accepted timestamp is `now - windowMs` (≤ the cache's window) */
  windowMs: number
  /** Newest accepted timestamp is `now + maxSkewMs` */
  maxSkewMs: number
  /** @default Date.now() */
  now?: number
}

/**
 * Check a received trust frame: the envelope checks of {@link openEnvelope}
 * (under the trust signature scheme), then {@link readHandshake}.
 */
export function openTrustFrame (frame: Uint8Array, ctx: OpenTrustContext): HandshakeMessage {
  const { message } = openEnvelope(frame, {
    localPeer: ctx.localPeer,
    remotePeer: ctx.remotePeer,
    replayCache: ctx.replayCache,
    windowMs: ctx.windowMs,
    maxSkewMs: ctx.maxSkewMs,
    maxBodyBytes: MAX_FRAME_BYTES,
    scheme: TRUST_SIGNATURE_SCHEME,
    ...(ctx.now === undefined ? {} : { now: ctx.now })
  })
  return readHandshake(message)
}

/**
 * Decode a trust frame without authenticating it (tests and diagnostics: a
 * frame is acted on only after {@link openTrustFrame}).
 */
export function decodeTrustFrame (frame: Uint8Array): HandshakeMessage {
  return readHandshake(decodeMessage(decodeSignedMessage(frame).payload))
}
