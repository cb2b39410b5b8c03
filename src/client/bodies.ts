/**
 * Message bodies in the TypeScript SDK: what goes out as a binary frame and
 * how a received raw body is shown (`body`, `bodyBase64`, `bytes`).
 */

import type { ReplyParams, SendParams } from './types.ts'

const TEXT = 'text/plain; charset=utf-8'
const JSON_TYPE = 'application/json'
const BINARY = 'application/octet-stream'

/** The params and raw body of a message send or reply: strings and bytes as frames on a binary connection */
export function framedBody (binary: boolean, params: SendParams | ReplyParams): { params: Record<string, unknown>, body?: Uint8Array } {
  const { bytes, ...rest } = params
  if (binary) {
    if (bytes !== undefined) return { params: { ...rest, contentType: BINARY }, body: bytes }
    if (typeof rest.body === 'string' && rest.bodyBase64 === undefined) {
      const { body, ...others } = rest
      return { params: { ...others, contentType: TEXT }, body: Buffer.from(body) }
    }
    return { params: rest }
  }
  if (bytes !== undefined) {
    return { params: { ...rest, bodyBase64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64') } }
  }
  return { params: rest }
}

export function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const textDecoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Fill a binary frame's body into its result or notification the way the
 * JSON path shows it: text as `body` string, JSON as `body` value, anything
 * else as `bodyBase64` (computed only when read). `bytes` always has the raw
 * body and is not enumerable (JSON output stays as before).
 */
export function withBody (fields: Record<string, unknown>, raw: Buffer): Record<string, unknown> {
  const contentType = fields.contentType
  Object.defineProperty(fields, 'bytes', { value: raw, enumerable: false, writable: true, configurable: true })
  try {
    if (contentType === TEXT) {
      fields.body = textDecoder.decode(raw)
      return fields
    }
    if (contentType === JSON_TYPE) {
      fields.body = JSON.parse(textDecoder.decode(raw))
      return fields
    }
  } catch {
    // as the node does: undecodable text or JSON comes as bytes
  }
  let base64: string | undefined
  Object.defineProperty(fields, 'bodyBase64', {
    get: () => (base64 ??= raw.toString('base64')),
    set: (value: string) => { base64 = value },
    enumerable: true,
    configurable: true
  })
  return fields
}
