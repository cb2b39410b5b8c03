/**
 * The audit record: its canonical bytes, its hash, its line in the log, and
 * the checks a line must pass. See the package doc in `index.ts` for the
 * format written out in full.
 */

import { createHash } from 'node:crypto'
import { AuditDataTooLargeError, AuditInvalidArgumentError } from './errors.ts'

/** `prev` of the first record (seq 0) */
export const ZERO_HASH = '0'.repeat(64)

/** Longest line (including its newline) the log ever holds; longer lines are damage */
export const MAX_RECORD_BYTES = 64 * 1024

/** Upper bound for `maxDataBytes`, leaving room in a record for the other fields */
export const MAX_DATA_BYTES_LIMIT = 60 * 1024

/** Deepest nesting of objects/arrays accepted in `data` */
export const MAX_DATA_DEPTH = 32

/** Longest event type */
export const MAX_TYPE_LENGTH = 64

/** Event types: dot-separated words of letters, digits, `_` and `-`, e.g. `trust.approved` */
export const TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9][A-Za-z0-9_-]*)*$/

const TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const HEX_HASH_PATTERN = /^[0-9a-f]{64}$/
const RECORD_KEYS = ['data', 'hash', 'prev', 'seq', 'time', 'type']

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** The `data` of a record: a JSON object */
export interface AuditData {
  [key: string]: JsonValue
}

/** One line of the log, parsed */
export interface AuditRecord {
  /** 0 for the first record, then +1 per record */
  seq: number
  /** when the record was appended, `Date.prototype.toISOString()` (UTC, ms) */
  time: string
  /** what happened, e.g. `trust.approved` */
  type: string
  /** details of the event, as stored (keys sorted) */
  data: AuditData
  /** `hash` of the previous record; 64 zeros for seq 0 */
  prev: string
  /** hex SHA-256 of the record's canonical bytes */
  hash: string
}

class DepthError extends Error {}

/**
 * Canonical JSON of a value that came out of `JSON.parse`: object keys sorted
 * by UTF-16 code units (as `Array.prototype.sort` does), no whitespace,
 * strings and numbers as `JSON.stringify` writes them. This is the JSON
 * Canonicalization Scheme (RFC 8785) for the values JSON.parse can produce.
 */
export function canonicalJson (value: unknown, depth = 0): string {
  if (value === null) {
    return 'null'
  }
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false'
    case 'number':
      if (!Number.isFinite(value)) {
        throw new TypeError('non-finite number')
      }
      return JSON.stringify(value)
    case 'string':
      return JSON.stringify(value)
    case 'object': {
      if (depth >= MAX_DATA_DEPTH) {
        throw new DepthError(`nested deeper than ${MAX_DATA_DEPTH} levels`)
      }
      if (Array.isArray(value)) {
        return `[${value.map(item => canonicalJson(item, depth + 1)).join(',')}]`
      }
      const object = value as Record<string, unknown>
      const members = Object.keys(object).sort().map(key => `${JSON.stringify(key)}:${canonicalJson(object[key], depth + 1)}`)
      return `{${members.join(',')}}`
    }
    default:
      throw new TypeError(`${typeof value} is not a JSON value`)
  }
}

/**
 * Turn caller-supplied `data` into its canonical JSON, refusing anything that
 * is not a JSON object or is larger than `maxBytes` (UTF-8) once serialised.
 * `data` goes through `JSON.stringify` first, so `toJSON` (e.g. of a Date)
 * applies and `undefined` members are dropped, as in any JSON API.
 */
export function canonicalData (data: unknown, maxBytes: number): string {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new AuditInvalidArgumentError('audit data must be a JSON object')
  }
  let json: string | undefined
  try {
    json = JSON.stringify(data)
  } catch (err) {
    throw new AuditInvalidArgumentError(`audit data is not serialisable as JSON: ${(err as Error).message}`, { cause: err })
  }
  if (typeof json !== 'string') {
    throw new AuditInvalidArgumentError('audit data must be a JSON object')
  }
  // a UTF-8 byte count is never below the UTF-16 length: refuse early, before parsing
  if (json.length > maxBytes) {
    throw new AuditDataTooLargeError(`audit data is larger than ${maxBytes} bytes`)
  }
  const parsed: unknown = JSON.parse(json)
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new AuditInvalidArgumentError('audit data must be a JSON object')
  }
  let canonical: string
  try {
    canonical = canonicalJson(parsed)
  } catch (err) {
    throw new AuditInvalidArgumentError(`audit data is not valid: ${(err as Error).message}`, { cause: err })
  }
  if (Buffer.byteLength(canonical) > maxBytes) {
    throw new AuditDataTooLargeError(`audit data is ${Buffer.byteLength(canonical)} bytes serialised; the limit is ${maxBytes}`)
  }
  return canonical
}

export function checkType (type: unknown): string {
  if (typeof type !== 'string' || type.length > MAX_TYPE_LENGTH || !TYPE_PATTERN.test(type)) {
    throw new AuditInvalidArgumentError(`audit event type must be dot-separated words of letters, digits, "_" and "-", at most ${MAX_TYPE_LENGTH} characters; got ${JSON.stringify(String(type).slice(0, 80))}`)
  }
  return type
}

export function sha256Hex (text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

/**
 * The canonical text of a record without its hash:
 * `{"seq":…,"time":"…","type":"…","data":{…},"prev":"…"}`, fields in this
 * order, `data` in canonical JSON.
 */
export function canonicalText (seq: number, time: string, type: string, canonicalDataJson: string, prev: string): string {
  return `{"seq":${seq},"time":${JSON.stringify(time)},"type":${JSON.stringify(type)},"data":${canonicalDataJson},"prev":"${prev}"}`
}

/** The line for a record (without its newline): the canonical text with `,"hash":"…"` before the closing brace */
export function lineText (canonical: string, hash: string): string {
  return `${canonical.slice(0, -1)},"hash":"${hash}"}`
}

/** Build a record and its line (with the newline) */
export function buildRecord (seq: number, time: string, type: string, canonicalDataJson: string, prev: string): { record: AuditRecord, line: string } {
  const canonical = canonicalText(seq, time, type, canonicalDataJson, prev)
  const hash = sha256Hex(canonical)
  const data = JSON.parse(canonicalDataJson) as AuditData
  return { record: { seq, time, type, data, prev, hash }, line: `${lineText(canonical, hash)}\n` }
}

export type LineCheck =
  | { ok: true, record: AuditRecord }
  /**
   * `unparseable`: not UTF-8 or not JSON (what a torn write leaves);
   * `malformed`: JSON, but not a record; `content`: a record whose hash does
   * not recompute or whose text is not canonical
   */
  | { ok: false, kind: 'unparseable' | 'malformed' | 'content', reason: string, seq?: number, hash?: string }

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Check one line (without its newline) on its own: it parses, has exactly the
 * record's fields with valid values, its text is the canonical form of those
 * values and its hash recomputes. Never throws.
 */
export function checkLine (bytes: Uint8Array): LineCheck {
  let text: string
  let value: unknown
  try {
    text = strictUtf8.decode(bytes)
    value = JSON.parse(text)
  } catch {
    return { ok: false, kind: 'unparseable', reason: 'line is not valid JSON (UTF-8)' }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, kind: 'malformed', reason: 'line is not a JSON object' }
  }
  const fields = value as Record<string, unknown>
  const seq = Number.isSafeInteger(fields.seq) && (fields.seq as number) >= 0 ? fields.seq as number : undefined
  const hash = typeof fields.hash === 'string' && HEX_HASH_PATTERN.test(fields.hash) ? fields.hash : undefined
  const bad = (reason: string, kind: 'malformed' | 'content' = 'malformed'): LineCheck => ({ ok: false, kind, reason, ...(seq !== undefined ? { seq } : {}), ...(hash !== undefined ? { hash } : {}) })

  const keys = Object.keys(fields).sort()
  if (keys.length !== RECORD_KEYS.length || keys.some((key, i) => key !== RECORD_KEYS[i])) {
    return bad(`record must have exactly the fields ${RECORD_KEYS.join(', ')}`)
  }
  if (seq === undefined) {
    return bad('"seq" is not a non-negative integer')
  }
  if (typeof fields.time !== 'string' || !TIME_PATTERN.test(fields.time)) {
    return bad('"time" is not an ISO 8601 UTC timestamp')
  }
  if (typeof fields.type !== 'string' || fields.type.length > MAX_TYPE_LENGTH || !TYPE_PATTERN.test(fields.type)) {
    return bad('"type" is not a valid event type')
  }
  if (fields.data === null || typeof fields.data !== 'object' || Array.isArray(fields.data)) {
    return bad('"data" is not a JSON object')
  }
  if (typeof fields.prev !== 'string' || !HEX_HASH_PATTERN.test(fields.prev)) {
    return bad('"prev" is not 64 lowercase hex digits')
  }
  if (hash === undefined) {
    return bad('"hash" is not 64 lowercase hex digits')
  }
  let canonical: string
  try {
    canonical = canonicalText(seq, fields.time, fields.type, canonicalJson(fields.data), fields.prev)
  } catch (err) {
    return bad(`"data" is not valid: ${(err as Error).message}`)
  }
  if (sha256Hex(canonical) !== hash) {
    return bad('"hash" does not match the record\'s content', 'content')
  }
  if (lineText(canonical, hash) !== text) {
    return bad('line is not in canonical form', 'content')
  }
  return { ok: true, record: { seq, time: fields.time, type: fields.type, data: fields.data as AuditData, prev: fields.prev, hash } }
}
