/**
 * Message bodies between the IPC socket and the messaging layer. A binary
 * frame's bytes are taken as they are (no copy, no decoding); a plain JSON
 * client's `bodyBase64` is decoded once by `Buffer.from` and checked by its
 * length, never by a regular expression over the body.
 */

import { isUtf8 } from 'node:buffer'
import { BINARY, JSON_TYPE, TEXT, decodeBody, encodeBody } from '../messaging/index.ts'
import { invalidParams } from '../ipc/index.ts'
import type { EncodedBody } from '../messaging/index.ts'
import type { IpcSession } from '../ipc/index.ts'

/** Content types a binary frame may declare (what `body`, JSON values and `bodyBase64` map to) */
const FRAME_TYPES = new Set([TEXT, JSON_TYPE, BINARY])

const EQUALS = 61

/**
 * Decode standard base64 (`+/`, padding optional, as the previous regex
 * allowed). `Buffer.from` skips characters outside the alphabet instead of
 * failing, so a string with any such character decodes to fewer bytes than
 * its length promises: comparing the lengths rejects it. The URL-safe `-_`
 * that Node also accepts are the only characters that would keep the length;
 * they are looked for with `indexOf` (native, no regex).
 */
export function decodeBase64Strict (text: string): Buffer {
  let end = text.length
  if (end > 0 && text.charCodeAt(end - 1) === EQUALS) end--
  if (end > 0 && text.charCodeAt(end - 1) === EQUALS) end--
  if (end % 4 === 1) throw invalidParams('params.bodyBase64 must be a base64 string')
  const expected = Math.floor(end * 3 / 4)
  const bytes = Buffer.from(text, 'base64')
  if (bytes.length !== expected || text.indexOf('-') !== -1 || text.indexOf('_') !== -1) {
    throw invalidParams('params.bodyBase64 must be a base64 string')
  }
  return bytes
}

/**
 * The body of `msg.send`, `msg.reply` or `group.send`: a binary frame's bytes
 * (`contentType` optional, default `application/octet-stream`), or `body`
 * (text or JSON value) or `bodyBase64` in the params.
 */
export function bodyFromParams (params: Record<string, unknown>, raw: Uint8Array | undefined): EncodedBody {
  if (raw !== undefined) {
    if (params.body !== undefined || params.bodyBase64 !== undefined) {
      throw invalidParams('a binary frame carries the body: give neither params.body nor params.bodyBase64')
    }
    const contentType = params.contentType ?? BINARY
    if (typeof contentType !== 'string' || !FRAME_TYPES.has(contentType)) {
      throw invalidParams(`params.contentType must be one of ${[...FRAME_TYPES].map(t => JSON.stringify(t)).join(', ')}`)
    }
    if (contentType !== BINARY && !isUtf8(raw)) {
      throw invalidParams(`a ${contentType} body must be UTF-8`)
    }
    return { body: raw, contentType }
  }
  if (params.bodyBase64 !== undefined) {
    if (params.body !== undefined) throw invalidParams('give either body or bodyBase64, not both')
    if (typeof params.bodyBase64 !== 'string') throw invalidParams('params.bodyBase64 must be a base64 string')
    return { body: decodeBase64Strict(params.bodyBase64), contentType: BINARY }
  }
  try {
    return encodeBody({ body: params.body })
  } catch (err) {
    throw invalidParams((err as Error).message)
  }
}

/**
 * How a body goes to a client: raw bytes beside `contentType` for a binary
 * session (the SDK decodes text and JSON itself), else `body`/`bodyBase64`.
 */
export function bodyForClient (session: IpcSession, body: Uint8Array, contentType: string): { fields: Record<string, unknown>, raw?: Uint8Array } {
  if (session.binary) return { fields: { contentType }, raw: body }
  return { fields: { ...decodeBody(body, contentType), contentType } }
}

/** Bytes a delivery will occupy in a client's queue (base64 grows 4/3; 1 KiB for the header) */
export function queuedSizeOf (session: IpcSession, bodyBytes: number): number {
  return 1024 + (session.binary ? bodyBytes : Math.ceil(bodyBytes / 3) * 4)
}
