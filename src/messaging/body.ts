/**
 * How local agents' bodies map to bytes on the wire and back. A string is
 * sent as UTF-8 text, any other JSON value as JSON, and `bodyBase64` as
 * opaque bytes; the receiver sees the same form the sender used.
 */

import { AgentnetError, foreignCode } from '../errors/index.ts'
import type { ErrorCode, ForeignCode } from '../errors/index.ts'

export const TEXT = 'text/plain; charset=utf-8'
export const JSON_TYPE = 'application/json'
export const BINARY = 'application/octet-stream'

export interface EncodedBody {
  body: Uint8Array
  contentType: string
}

/** What a local agent sees: exactly one of `body` and `bodyBase64` */
export interface AgentBody {
  body?: unknown
  bodyBase64?: string
}

export class InvalidBodyError extends AgentnetError { override readonly code = 'InvalidBody' }

const encoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { fatal: true })

/** Encode an agent's body; `body` and `bodyBase64` are mutually exclusive */
export function encodeBody (input: AgentBody): EncodedBody {
  if (input.bodyBase64 !== undefined) {
    if (input.body !== undefined) {
      throw new InvalidBodyError('give either body or bodyBase64, not both')
    }
    if (typeof input.bodyBase64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(input.bodyBase64)) {
      throw new InvalidBodyError('bodyBase64 must be a base64 string')
    }
    return { body: Buffer.from(input.bodyBase64, 'base64'), contentType: BINARY }
  }
  if (typeof input.body === 'string') {
    return { body: encoder.encode(input.body), contentType: TEXT }
  }
  // undefined is sent as JSON null so that a body is always present
  return { body: encoder.encode(JSON.stringify(input.body ?? null)), contentType: JSON_TYPE }
}

/** Decode bytes for a local agent; unknown or undecodable types come as base64 */
export function decodeBody (body: Uint8Array, contentType: string): AgentBody {
  try {
    if (contentType === TEXT) {
      return { body: textDecoder.decode(body) }
    }
    if (contentType === JSON_TYPE) {
      return { body: JSON.parse(textDecoder.decode(body)) }
    }
  } catch {
    // fall through: the agent still gets the bytes
  }
  return { bodyBase64: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64') }
}

/**
 * The body of an `error` reply: `{"code","message"}` as JSON, plus `floor`
 * (ms since the epoch) for `RestartedAt`: the sender re-seals past it
 */
export function encodeErrorBody (code: string, message: string, floor?: number): Uint8Array {
  return encoder.encode(JSON.stringify(floor === undefined ? { code, message } : { code, message, floor }))
}

/** Read an `error` reply's body; a code we do not know stays a foreign code */
export function decodeErrorBody (body: Uint8Array): { code: ErrorCode | ForeignCode, message: string, details: Record<string, unknown>, floor?: number } {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(body)) as { code?: unknown, message?: unknown }
    // any other fields (e.g. `Moved`'s succession record and address hints) are kept as details
    const { code, message, ...details } = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {}
    const floor = details.floor
    return {
      code: typeof code === 'string' ? foreignCode(code) : 'RemoteError',
      message: typeof message === 'string' ? message : 'remote error',
      details,
      // `RestartedAt`: the receiver's after-crash floor (ms since the epoch)
      ...(Number.isSafeInteger(floor) && (floor as number) > 0 ? { floor: floor as number } : {})
    }
  } catch {
    return { code: 'RemoteError', message: 'remote error (unreadable body)', details: {} }
  }
}
