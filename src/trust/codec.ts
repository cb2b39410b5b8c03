/**
 * Wire formats of the trust layer: handshake frames and invite codes. Pure
 * functions, no network. See the package doc in `index.ts` for the byte-exact
 * description.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import {
  BadSignatureError,
  FutureMessageError,
  MalformedFrameError,
  SenderMismatchError,
  signatureScheme,
  StaleMessageError,
  TRUST_SIGNATURE_SCHEME,
  UnsupportedVersionError,
  uvarint,
  verifySignature,
  WrongRecipientError
} from '../protocol/index.ts'
import {
  HANDSHAKE_VERSION,
  INVITE_PAYLOAD_TYPE,
  INVITE_SECRET_BYTES,
  INVITE_VERSION,
  MAX_ERROR_MESSAGE_CHARS,
  MAX_FRAME_BYTES,
  MAX_INVITE_ADDRESS_BYTES,
  MAX_INVITE_ADDRESSES,
  MAX_INVITE_CODE_CHARS,
  MAX_INVITE_USES,
  MAX_REASON_BYTES,
  NONCE_BYTES
} from './constants.ts'
import { InvalidReasonError, InviteInvalidError, ReasonTooLongError } from './errors.ts'
import { MAX_SUCCESSION_CHARS } from '../identity/rotation.ts'
import type { MessageSigner, ReplayCache, SignatureScheme } from '../protocol/index.ts'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Invite codes: domain `agentnet-trust` (as {@link TRUST_SIGNATURE_SCHEME}),
 * payload type `/agentnet/trust/invite/1.0.0`, so an invite signature is never
 * valid as a handshake signature or the other way round.
 */
export const INVITE_SIGNATURE_SCHEME: SignatureScheme = signatureScheme(TRUST_SIGNATURE_SCHEME.domain, INVITE_PAYLOAD_TYPE)

const SIGNATURE_BYTES = 64

// ---------------------------------------------------------------- handshake

/** Messages that open an exchange (sent on a new stream). */
export type InitiatorType = 'request' | 'approve' | 'reject' | 'revoke' | 'invite' | 'succession'
/** Messages that answer one (sent back on the same stream). */
export type ReplyType = 'pending' | 'approve' | 'ok' | 'error'
export type HandshakeType = InitiatorType | ReplyType

/** A decoded handshake payload. */
export interface HandshakeMessage {
  /** Payload version, 1 */
  v: number
  type: HandshakeType
  /** Sender peer ID (base58btc string); must be the Noise-authenticated remote */
  from: string
  /** Recipient peer ID; must be the receiving node */
  to: string
  /** 16 random bytes, base64url without padding (22 characters) */
  nonce: string
  /** Sender's clock, ms since the epoch */
  ts: number
  /** In a reply, the `nonce` of the message it answers; `""` in an initiator */
  re: string
  /** Justification: required in `request` (≤ 1 KiB UTF-8), optional in `reject` / `revoke` */
  reason?: string
  /** The invite code, in `invite` */
  invite?: string
  /** Error code, in `error` */
  code?: string
  /** Error text, in `error` */
  message?: string
  /** A key-rotation succession record (`src/identity/rotation.ts`), in `succession` */
  succession?: string
}

/** The fields a sender chooses; {@link encodeHandshake} adds `v`, `from`, `nonce`, `ts`. */
export interface HandshakeFields {
  type: HandshakeType
  to: PeerId | string
  re?: string
  reason?: string
  invite?: string
  code?: string
  message?: string
  succession?: string
  /** ms since the epoch; set only to seal at a controlled time (tests) */
  ts?: number
  /** base64url nonce; set only for tests */
  nonce?: string
}

interface KeyRule { required: readonly string[], optional: readonly string[] }

const COMMON_KEYS = ['v', 'type', 'from', 'to', 'nonce', 'ts', 're'] as const
const KEY_RULES: Readonly<Record<HandshakeType, KeyRule>> = {
  request: { required: ['reason'], optional: [] },
  approve: { required: [], optional: [] },
  reject: { required: [], optional: ['reason'] },
  revoke: { required: [], optional: ['reason'] },
  invite: { required: ['invite'], optional: [] },
  succession: { required: ['succession'], optional: [] },
  pending: { required: [], optional: [] },
  ok: { required: [], optional: [] },
  error: { required: ['code', 'message'], optional: [] }
}

/** Types a node accepts on a stream someone else opened. */
export const INITIATOR_TYPES: ReadonlySet<string> = new Set<InitiatorType>(['request', 'approve', 'reject', 'revoke', 'invite', 'succession'])

const encoder = new TextEncoder()
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

// C0 controls except TAB and LF, DEL, C1 controls, and the bidirectional
// marks and overrides that can disguise text on an operator's terminal
// eslint-disable-next-line no-control-regex
const FORBIDDEN_TEXT = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u200E\u200F\u202A-\u202E\u2066-\u2069]/

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

export function newNonce (): string {
  return randomBytes(NONCE_BYTES).toString('base64url')
}

/**
 * Build and sign a handshake frame body (what goes inside the libp2p length
 * prefix): `0x01 || payload || signature`.
 */
export function encodeHandshake (fields: HandshakeFields, signer: MessageSigner): Uint8Array {
  const message: Record<string, unknown> = {
    v: HANDSHAKE_VERSION,
    type: fields.type,
    from: signer.peerId.toString(),
    to: fields.to.toString(),
    nonce: fields.nonce ?? newNonce(),
    ts: fields.ts ?? Date.now(),
    re: fields.re ?? ''
  }
  const rule = KEY_RULES[fields.type]
  for (const key of [...rule.required, ...rule.optional]) {
    const value = fields[key as 'reason' | 'invite' | 'code' | 'message' | 'succession']
    if (value !== undefined) message[key] = value
  }
  const payload = encoder.encode(JSON.stringify(message))
  const signature = signer.sign(payload)
  const out = new Uint8Array(1 + payload.length + signature.length)
  out[0] = HANDSHAKE_VERSION
  out.set(payload, 1)
  out.set(signature, 1 + payload.length)
  return out
}

/** A structurally valid frame body, not yet authenticated. */
export interface DecodedHandshake {
  message: HandshakeMessage
  payload: Uint8Array
  signature: Uint8Array
}

function isBase64urlNonce (value: string): boolean {
  if (!/^[A-Za-z0-9_-]{22}$/.test(value)) return false
  const bytes = Buffer.from(value, 'base64url')
  return bytes.length === NONCE_BYTES && bytes.toString('base64url') === value
}

/**
 * Parse a frame body and check its shape: version byte, UTF-8 JSON object,
 * exactly the keys its `type` allows, field types, nonce length, reason rules.
 * No signature check.
 *
 * @throws {MalformedFrameError}
 * @throws {UnsupportedVersionError}
 * @throws {ReasonTooLongError}
 * @throws {InvalidReasonError}
 */
export function decodeHandshake (body: Uint8Array): DecodedHandshake {
  if (body.length > MAX_FRAME_BYTES) throw new MalformedFrameError(`handshake frame of ${body.length} bytes exceeds ${MAX_FRAME_BYTES}`)
  if (body.length < 1 + 2 + SIGNATURE_BYTES) throw new MalformedFrameError('handshake frame is truncated')
  if (body[0] !== HANDSHAKE_VERSION) throw new UnsupportedVersionError(body[0] ?? 0, `Unsupported handshake frame version ${String(body[0])}`)
  const payload = body.subarray(1, body.length - SIGNATURE_BYTES)
  const signature = body.subarray(body.length - SIGNATURE_BYTES)
  let parsed: unknown
  try {
    parsed = JSON.parse(utf8.decode(payload))
  } catch {
    throw new MalformedFrameError('handshake payload is not UTF-8 JSON')
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new MalformedFrameError('handshake payload is not a JSON object')
  const m = parsed as Record<string, unknown>
  if (m.v !== HANDSHAKE_VERSION) {
    throw new UnsupportedVersionError(typeof m.v === 'number' ? m.v : 0, `Unsupported handshake payload version ${String(m.v)}`)
  }
  const type = m.type
  if (typeof type !== 'string' || !Object.hasOwn(KEY_RULES, type)) throw new MalformedFrameError('unknown handshake message type')
  const rule = KEY_RULES[type as HandshakeType]
  const allowed = new Set<string>([...COMMON_KEYS, ...rule.required, ...rule.optional])
  for (const key of Object.keys(m)) {
    if (!allowed.has(key)) throw new MalformedFrameError(`unexpected field ${JSON.stringify(key.slice(0, 64))} in a ${type} message`)
  }
  for (const key of [...COMMON_KEYS, ...rule.required]) {
    if (!Object.hasOwn(m, key)) throw new MalformedFrameError(`missing field ${key} in a ${type} message`)
  }
  if (typeof m.from !== 'string' || m.from.length === 0 || m.from.length > 128) throw new MalformedFrameError('from must be a peer ID string')
  if (typeof m.to !== 'string' || m.to.length === 0 || m.to.length > 128) throw new MalformedFrameError('to must be a peer ID string')
  if (typeof m.nonce !== 'string' || !isBase64urlNonce(m.nonce)) throw new MalformedFrameError('nonce must be 16 bytes in base64url')
  if (typeof m.ts !== 'number' || !Number.isSafeInteger(m.ts) || m.ts <= 0) throw new MalformedFrameError('ts must be a positive integer (ms)')
  if (typeof m.re !== 'string' || (m.re !== '' && !isBase64urlNonce(m.re))) throw new MalformedFrameError('re must be empty or a nonce')
  if (m.reason !== undefined) checkReason(m.reason)
  if (m.invite !== undefined && (typeof m.invite !== 'string' || m.invite.length === 0 || m.invite.length > MAX_INVITE_CODE_CHARS)) {
    throw new MalformedFrameError('invite must be an invite code')
  }
  if (m.succession !== undefined && (typeof m.succession !== 'string' || m.succession.length === 0 || m.succession.length > MAX_SUCCESSION_CHARS || !/^[A-Za-z0-9_-]+$/.test(m.succession))) {
    throw new MalformedFrameError('succession must be a succession record')
  }
  if (m.code !== undefined && (typeof m.code !== 'string' || !/^[A-Za-z]{1,64}$/.test(m.code))) throw new MalformedFrameError('code must be 1..64 letters')
  if (m.message !== undefined && (typeof m.message !== 'string' || m.message.length > 4 * MAX_ERROR_MESSAGE_CHARS)) throw new MalformedFrameError('message must be a short string')
  return { message: m as unknown as HandshakeMessage, payload, signature }
}

/** What {@link openHandshake} needs to know about the receiving side. */
export interface OpenHandshakeContext {
  /** This node */
  local: PeerId
  /** The Noise-authenticated peer on the other end of the stream */
  remote: PeerId
  replayCache: ReplayCache
  /** Oldest accepted timestamp is `now - windowMs` */
  windowMs: number
  /** Newest accepted timestamp is `now + maxSkewMs` */
  maxSkewMs: number
  /** @default Date.now() */
  now?: number
}

/**
 * The one place a received handshake frame is checked, in this order (the
 * first failure throws): shape ({@link decodeHandshake}), `from` is the
 * authenticated remote ({@link SenderMismatchError}), `to` is this node
 * ({@link WrongRecipientError}), the signature verifies under the trust scheme
 * ({@link BadSignatureError}), the timestamp is within
 * `[now - windowMs, now + maxSkewMs]` ({@link StaleMessageError} /
 * {@link FutureMessageError}), and the nonce is new (`ReplayError`; recorded
 * only now, so forged frames use up no slot).
 */
export function openHandshake (body: Uint8Array, ctx: OpenHandshakeContext): HandshakeMessage {
  const now = ctx.now ?? Date.now()
  const { message, payload, signature } = decodeHandshake(body)
  if (message.from !== ctx.remote.toString()) throw new SenderMismatchError('handshake sender is not the authenticated remote peer')
  if (message.to !== ctx.local.toString()) throw new WrongRecipientError('handshake message is addressed to another peer')
  let valid = false
  try {
    valid = verifySignature(ctx.remote, payload, signature, TRUST_SIGNATURE_SCHEME)
  } catch {
    valid = false
  }
  if (!valid) throw new BadSignatureError('handshake signature is invalid')
  if (message.ts < now - ctx.windowMs) throw new StaleMessageError(message.ts, now, ctx.windowMs)
  if (message.ts > now + ctx.maxSkewMs) throw new FutureMessageError(message.ts, now, ctx.maxSkewMs)
  ctx.replayCache.checkAndRecord(message.from, Buffer.from(message.nonce, 'base64url'), message.ts, now)
  return message
}

// ---------------------------------------------------------------- invites

/** The content of an invite code. */
export interface Invite {
  /** The inviter; it signed the code */
  inviter: PeerId
  /** Where to dial the inviter (without the trailing `/p2p/<inviter>`) */
  addresses: Multiaddr[]
  /** ms since the epoch; the code is refused from then on */
  expiresAt: number
  /** How many peers may use it */
  uses: number
  /** Random secret ({@link INVITE_SECRET_BYTES} bytes); the inviter keeps only its SHA-256 */
  secret: Uint8Array
}


class Reader {
  private pos = 0
  private readonly bytes: Uint8Array
  constructor (bytes: Uint8Array) { this.bytes = bytes }
  get offset (): number { return this.pos }
  take (n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) throw new InviteInvalidError('invite code is truncated')
    const out = this.bytes.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** A minimally encoded uvarint of at most 8 bytes, within the safe integers. */
  uvarint (): number {
    let value = 0
    let factor = 1
    for (let i = 0; i < 8; i++) {
      const byte = this.take(1)[0] as number
      value += (byte & 0x7f) * factor
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw new InviteInvalidError('invite code has a non-minimal integer')
        if (!Number.isSafeInteger(value)) break
        return value
      }
      factor *= 128
    }
    throw new InviteInvalidError('invite code has an integer out of range')
  }
}

function stripOwnPeer (address: Multiaddr, inviter: string): Multiaddr {
  const components = address.getComponents()
  const last = components.at(-1)
  if (last?.name === 'p2p' && last.value === inviter) {
    return address.decapsulateCode(last.code)
  }
  return address
}

/**
 * Encode and sign an invite:
 * `0x01 || secret(16) || uvarint(expiresAt) || uvarint(uses) ||
 * uvarint(len(peerId)) || peerId || uvarint(n) || n × (uvarint(len(addr)) || addr) || signature(64)`,
 * then base64url without padding. `signer` must sign with
 * {@link INVITE_SIGNATURE_SCHEME} (`createSigner(key, INVITE_SIGNATURE_SCHEME)`).
 */
export function encodeInvite (invite: Omit<Invite, 'inviter'>, signer: MessageSigner): string {
  const inviter = signer.peerId.toString()
  if (invite.secret.length !== INVITE_SECRET_BYTES) throw new InviteInvalidError(`invite secret must be ${INVITE_SECRET_BYTES} bytes`)
  if (!Number.isSafeInteger(invite.expiresAt) || invite.expiresAt <= 0) throw new InviteInvalidError('invite expiry must be a positive integer (ms)')
  if (!Number.isSafeInteger(invite.uses) || invite.uses < 1 || invite.uses > MAX_INVITE_USES) throw new InviteInvalidError(`invite uses must be 1..${MAX_INVITE_USES}`)
  const addresses = invite.addresses.map(a => stripOwnPeer(a, inviter).bytes)
  if (addresses.length > MAX_INVITE_ADDRESSES) throw new InviteInvalidError(`an invite holds at most ${MAX_INVITE_ADDRESSES} addresses`)
  const parts: number[] = [INVITE_VERSION, ...invite.secret, ...uvarint(invite.expiresAt), ...uvarint(invite.uses)]
  const peer = signer.from
  parts.push(...uvarint(peer.length), ...peer, ...uvarint(addresses.length))
  for (const a of addresses) {
    if (a.length > MAX_INVITE_ADDRESS_BYTES) throw new InviteInvalidError(`invite address longer than ${MAX_INVITE_ADDRESS_BYTES} bytes`)
    parts.push(...uvarint(a.length), ...a)
  }
  const signed = Uint8Array.from(parts)
  const signature = signer.sign(signed)
  return Buffer.concat([signed, signature]).toString('base64url')
}

/**
 * Parse an invite code and check the inviter's signature. Expiry and uses
 * are the caller's to check.
 *
 * @throws {InviteInvalidError} for anything but an intact code signed by the peer it names
 */
export function decodeInvite (code: string): Invite {
  if (typeof code !== 'string') throw new InviteInvalidError('invite code must be a string')
  code = code.trim()
  if (code.length === 0 || code.length > MAX_INVITE_CODE_CHARS || !/^[A-Za-z0-9_-]+$/.test(code)) {
    throw new InviteInvalidError('invite code is not base64url')
  }
  const bytes = Buffer.from(code, 'base64url')
  // base64url has spare bits in its last character: a code must be the one
  // canonical encoding of its bytes, or a changed character could go unnoticed
  if (bytes.toString('base64url') !== code) throw new InviteInvalidError('invite code is not canonical base64url')
  if (bytes.length < 1 + INVITE_SECRET_BYTES + SIGNATURE_BYTES + 4) throw new InviteInvalidError('invite code is truncated')
  const signed = bytes.subarray(0, bytes.length - SIGNATURE_BYTES)
  const signature = bytes.subarray(bytes.length - SIGNATURE_BYTES)
  const r = new Reader(signed)
  const version = r.take(1)[0]
  if (version !== INVITE_VERSION) throw new InviteInvalidError(`unsupported invite version ${String(version)}`)
  const secret = Uint8Array.from(r.take(INVITE_SECRET_BYTES))
  const expiresAt = r.uvarint()
  const uses = r.uvarint()
  if (expiresAt <= 0 || uses < 1 || uses > MAX_INVITE_USES) throw new InviteInvalidError('invite expiry or uses out of range')
  const peerLength = r.uvarint()
  if (peerLength > 64) throw new InviteInvalidError('invite peer ID is too long')
  const peerBytes = r.take(peerLength)
  let inviter: PeerId
  try {
    inviter = peerIdFromString(uint8ArrayToString(peerBytes, 'base58btc'))
  } catch {
    throw new InviteInvalidError('invite holds no valid peer ID')
  }
  if (inviter.type !== 'Ed25519' || !Buffer.from(inviter.toMultihash().bytes).equals(peerBytes)) {
    throw new InviteInvalidError('invite peer ID is not an Ed25519 peer ID')
  }
  const count = r.uvarint()
  if (count > MAX_INVITE_ADDRESSES) throw new InviteInvalidError('invite holds too many addresses')
  const addresses: Multiaddr[] = []
  for (let i = 0; i < count; i++) {
    const length = r.uvarint()
    if (length === 0 || length > MAX_INVITE_ADDRESS_BYTES) throw new InviteInvalidError('invite address has an invalid length')
    const raw = r.take(length)
    try {
      const address = multiaddr(Uint8Array.from(raw))
      if (!Buffer.from(address.bytes).equals(raw)) throw new Error('not canonical')
      addresses.push(address)
    } catch {
      throw new InviteInvalidError('invite holds an invalid address')
    }
  }
  if (r.offset !== signed.length) throw new InviteInvalidError('invite code has trailing bytes')
  let valid = false
  try {
    valid = verifySignature(inviter, signed, signature, INVITE_SIGNATURE_SCHEME)
  } catch {
    valid = false
  }
  if (!valid) throw new InviteInvalidError('invite signature does not verify under the inviter named in it (forged or altered)')
  return { inviter, addresses, expiresAt, uses, secret }
}
