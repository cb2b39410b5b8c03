/**
 * Frames of `/agentnet/mls/2.0.0`. A request is a signed envelope of the
 * agent protocol (`src/protocol`, signed under `MLS_SIGNATURE_SCHEME`) whose
 * `service` names the frame type and whose `body` is
 *
 * ```
 * body = 0x01 || uvarint(len(groupId)) || groupId || uvarint(epoch) || uvarint(term)
 *        || uvarint(len(mls)) || mls || uvarint(len(meta)) || meta
 * ```
 *
 * `mls` is an RFC 9420 `MLSMessage` (or empty) and `meta` UTF-8 JSON (or empty).
 * Each request is answered by one **unsigned** reply on the stream it came on
 * (a node keeps one long-lived outbound stream per peer for its requests,
 * `channels.ts`):
 *
 * ```
 * reply = 0x1a || uvarint(len(inReplyTo)) || inReplyTo || 0x22 || uvarint(len(body)) || body
 * ```
 *
 * (protobuf fields 3 and 4; a signed envelope starts with field 1, 0x0a, so
 * the first byte tells them apart, as for the agent protocol's unsigned
 * acks). Why a reply needs no signature: it can only arrive on the stream its
 * request went out on, which Noise authenticates as the peer and protects
 * against injection, replay and reordering; it counts only for the pending
 * request whose random id it names, on that stream; and the MLS content a
 * reply carries (key packages, commits) is signed by MLS itself with the
 * leaf key bound to the peer key. An ack is the member's own statement, which
 * a signature would not make truer. Verifying 99 signed acks was a fifth of
 * a committer's CPU in a commit to 100 members.
 *
 * @module
 */

import { randomUUID } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import { openEnvelope, sealEnvelope, MLS_SIGNATURE_SCHEME, uvarint } from '../protocol/index.ts'
import { BODY_VERSION, MAX_FRAME_BYTES, MLS_PROTOCOL } from './constants.ts'
import { errorFromWire, MalformedGroupFrameError } from './errors.ts'
import type { MessageSigner, ReplayCache } from '../protocol/index.ts'
import type { Libp2p, PeerId } from '@libp2p/interface'

/** Frame types: the envelope's `service`. */
export const FRAME_TYPES = ['mls.commit', 'mls.welcome', 'mls.app', 'mls.heartbeat', 'mls.request', 'mls.keypackage', 'mls.sync', 'mls.status'] as const
export type FrameType = typeof FRAME_TYPES[number]

/** The decoded body of a frame. */
export interface GroupFrame {
  groupId: Uint8Array
  epoch: number
  term: number
  mls: Uint8Array
  meta: Record<string, unknown>
}

const EMPTY = new Uint8Array(0)

/** The project's one varint encoder (src/protocol), with the range check a frame field needs */
function pushVarint (out: number[], value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new MalformedGroupFrameError('varint out of range')
  out.push(...uvarint(value))
}

/** Encode a frame body. */
export function encodeBody (frame: Partial<GroupFrame> & { groupId: Uint8Array }): Uint8Array {
  const meta = frame.meta === undefined || Object.keys(frame.meta).length === 0 ? EMPTY : new TextEncoder().encode(JSON.stringify(frame.meta))
  const mls = frame.mls ?? EMPTY
  const head: number[] = [BODY_VERSION]
  pushVarint(head, frame.groupId.length)
  const tail: number[] = []
  pushVarint(tail, frame.epoch ?? 0)
  pushVarint(tail, frame.term ?? 0)
  pushVarint(tail, mls.length)
  const metaLen: number[] = []
  pushVarint(metaLen, meta.length)
  const out = new Uint8Array(head.length + frame.groupId.length + tail.length + mls.length + metaLen.length + meta.length)
  let o = 0
  for (const part of [Uint8Array.from(head), frame.groupId, Uint8Array.from(tail), mls, Uint8Array.from(metaLen), meta]) {
    out.set(part, o)
    o += part.length
  }
  return out
}

/** The unsigned varint at `bytes[at]` and the index after it; a varint over 7 bytes or cut off throws. */
function readVarint (bytes: Uint8Array, at: number): [value: number, next: number] {
  let value = 0
  for (let shift = 0; ; shift += 7) {
    const b = bytes[at++]
    if (b === undefined || shift > 49) throw new MalformedGroupFrameError('truncated varint')
    value += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) return [value, at]
  }
}

/** Decode a frame body; anything but exactly one well-formed body throws {@link MalformedGroupFrameError}. */
export function decodeBody (bytes: Uint8Array): GroupFrame {
  let i = 0
  const varint = (): number => {
    const [value, next] = readVarint(bytes, i)
    i = next
    return value
  }
  const take = (n: number): Uint8Array => {
    if (i + n > bytes.length) throw new MalformedGroupFrameError('truncated field')
    const v = bytes.subarray(i, i + n)
    i += n
    return v
  }
  if (bytes[i++] !== BODY_VERSION) throw new MalformedGroupFrameError('unknown body version')
  const groupId = take(varint())
  if (groupId.length === 0 || groupId.length > 64) throw new MalformedGroupFrameError('bad group id')
  const epoch = varint()
  const term = varint()
  const mls = take(varint())
  const metaBytes = take(varint())
  if (i !== bytes.length) throw new MalformedGroupFrameError('trailing bytes')
  let meta: Record<string, unknown> = {}
  if (metaBytes.length > 0) {
    let parsed: unknown
    try {
      parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(metaBytes))
    } catch {
      throw new MalformedGroupFrameError('meta is not JSON')
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new MalformedGroupFrameError('meta is not an object')
    meta = parsed as Record<string, unknown>
  }
  return { groupId, epoch, term, mls, meta }
}

/** Seal a request frame of `type` for `to`; returns the frame and its request id. */
export function sealFrame (signer: MessageSigner, to: PeerId, type: FrameType, frame: (Partial<GroupFrame> & { groupId: Uint8Array }) | Uint8Array, timestamp?: number): { bytes: Uint8Array, id: string } {
  const id = randomUUID()
  // `frame` may be a body already encoded (one body for a whole fan-out)
  const fields = { to, service: type, kind: 'request' as const, id, contentType: 'application/agentnet-mls', body: frame instanceof Uint8Array ? frame : encodeBody(frame) }
  return { bytes: sealEnvelope(timestamp === undefined ? fields : { ...fields, timestamp }, signer), id }
}

/** First byte of a reply: field 3 (`in_reply_to`), length-delimited. */
const REPLY_TAG = 3 << 3 | 2
/** Tag of a reply's body: field 4, length-delimited. */
const REPLY_BODY_TAG = 4 << 3 | 2
/** Longest request id a reply may name (agentnet's are 36-character UUIDs). */
const MAX_REPLY_ID_BYTES = 128

/**
 * Encode the unsigned reply to request `inReplyTo` (see the module doc).
 *
 * @throws {MalformedGroupFrameError} when the id is longer than 128 bytes
 */
export function encodeReply (inReplyTo: string, frame: Partial<GroupFrame> & { groupId: Uint8Array }): Uint8Array {
  const id = new TextEncoder().encode(inReplyTo)
  if (id.length > MAX_REPLY_ID_BYTES) throw new MalformedGroupFrameError('reply id too long')
  const body = encodeBody(frame)
  const idLen = uvarint(id.length)
  const bodyLen = uvarint(body.length)
  const out = new Uint8Array(1 + idLen.length + id.length + 1 + bodyLen.length + body.length)
  let o = 0
  out[o++] = REPLY_TAG
  out.set(idLen, o); o += idLen.length
  out.set(id, o); o += id.length
  out[o++] = REPLY_BODY_TAG
  out.set(bodyLen, o); o += bodyLen.length
  out.set(body, o)
  return out
}

/**
 * Decode a reply: exactly the fields of {@link encodeReply}, a UTF-8 id and a
 * well-formed body, nothing after them.
 *
 * @throws {MalformedGroupFrameError} on anything else (a signed envelope included)
 */
export function decodeReply (bytes: Uint8Array): { inReplyTo: string, frame: GroupFrame } {
  let i = 0
  const field = (tag: number, max: number): Uint8Array => {
    if (bytes[i++] !== tag) throw new MalformedGroupFrameError('not a reply frame')
    const [len, next] = readVarint(bytes, i)
    i = next
    if (len > max || i + len > bytes.length) throw new MalformedGroupFrameError('truncated field')
    const v = bytes.subarray(i, i + len)
    i += len
    return v
  }
  const id = field(REPLY_TAG, MAX_REPLY_ID_BYTES)
  const body = field(REPLY_BODY_TAG, MAX_FRAME_BYTES)
  if (i !== bytes.length) throw new MalformedGroupFrameError('trailing bytes')
  let inReplyTo: string
  try {
    inReplyTo = new TextDecoder('utf-8', { fatal: true }).decode(id)
  } catch {
    throw new MalformedGroupFrameError('reply id is not UTF-8')
  }
  return { inReplyTo, frame: decodeBody(body) }
}

/** What opening a frame needs. */
export interface OpenFrameContext {
  local: PeerId
  remote: PeerId
  replayCache: ReplayCache
  now: number
  windowMs: number
}

/** Open (verify) a frame with the project's one verification core, then decode its body. */
export function openFrame (bytes: Uint8Array, ctx: OpenFrameContext): { type: string, id: string, inReplyTo: string, kind: string, frame: GroupFrame } {
  const opened = openEnvelope(bytes, {
    localPeer: ctx.local,
    remotePeer: ctx.remote,
    replayCache: ctx.replayCache,
    now: ctx.now,
    windowMs: ctx.windowMs,
    maxBodyBytes: MAX_FRAME_BYTES,
    scheme: MLS_SIGNATURE_SCHEME
  })
  const m = opened.message
  return { type: m.service, id: m.id, inReplyTo: m.inReplyTo, kind: m.kind, frame: decodeBody(m.body) }
}

/** The part of libp2p the transport needs. */
export type GroupsLibp2p = Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'peerId' | 'addEventListener' | 'removeEventListener' | 'getConnections'>

/** The frame of a reply, or the error it carries thrown as a `GroupsError`. */
export function checkReply (frame: GroupFrame): GroupFrame {
  const error = frame.meta.error as { code?: unknown, message?: unknown } | undefined
  if (error !== undefined) {
    const e = errorFromWire(String(error.code), String(error.message ?? ''))
    e.meta = frame.meta
    throw e
  }
  return frame
}

/** Write raw frame bytes to `peer` and return the raw (unsigned) reply (tests: forged, replayed or out-of-order frames). */
export async function sendRawFrame (libp2p: Pick<Libp2p, 'dialProtocol'>, peer: PeerId, bytes: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
  const stream = await libp2p.dialProtocol(peer, MLS_PROTOCOL, { signal })
  const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
  await lp.write(bytes, { signal })
  const data = await lp.read({ signal })
  await stream.close({ signal }).catch(() => {})
  return data.subarray()
}
