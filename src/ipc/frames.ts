/**
 * Framing of the IPC socket: newline-terminated JSON-RPC lines, where a line
 * whose top-level object carries `"bodyBytes": N` is followed by exactly N raw
 * bytes (the message body). Only the header line is parsed and scanned for a
 * newline; body bytes are never scanned, decoded or copied more than once.
 * Plain JSON clients never send `bodyBytes` and see no difference.
 */

import { isAscii } from 'node:buffer'
import { randomBytes } from 'node:crypto'
import { LineTooLongError } from './lines.ts'
import type { Socket } from 'node:net'

/** Name of the top-level header member that announces a raw body */
export const BODY_BYTES = 'bodyBytes'

const BODY_BASE64_KEY = Buffer.from('"bodyBase64"')
const QUOTE = 0x22
const BACKSLASH = 0x5c
const COLON = 0x3a

/** The first byte from `at` that is not JSON whitespace (space, tab, CR, LF) */
function skipWhitespace (bytes: Uint8Array, at: number): number {
  while (at < bytes.length) {
    const b = bytes[at]
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0a) break
    at++
  }
  return at
}

export type IpcFrame =
  /** A parsed JSON line and, when it declared `bodyBytes`, its body */
  | { kind: 'message', message: Record<string, unknown>, body?: Buffer }
  /** A line that is not a JSON object (`code` says why); the stream stays in sync */
  | { kind: 'invalid', code: 'ParseError' | 'InvalidRequest', reason: string, message?: Record<string, unknown> }
  /** A header declared a body over the limit; its bytes are skipped, never buffered */
  | { kind: 'tooLarge', message: Record<string, unknown>, declared: number }

export interface FrameReaderInit {
  /** Longest header line, bytes (a plain client's base64 body is in the line) */
  maxLineBytes: number
  /** Longest raw body, bytes; longer declared bodies are skipped and reported */
  maxBodyBytes: number
}

/**
 * Splits a byte stream into frames without holding more than `maxLineBytes`
 * of an unfinished line or `maxBodyBytes` of a body.
 */
export class FrameReader {
  private readonly maxLineBytes: number
  private readonly maxBodyBytes: number
  private pending: Buffer[] = []
  private pendingBytes = 0
  /** The body being filled, its header and how many bytes it still needs */
  private body: Buffer | undefined
  private bodyFilled = 0
  private bodyHeader: Record<string, unknown> | undefined
  /** Bytes of an over-limit body still to be discarded */
  private skip = 0
  /** Stands in for a long `bodyBase64` text while the rest of its line is parsed (see {@link parseSpliced}) */
  private readonly standIn = `agentnet-body-${randomBytes(16).toString('hex')}`

  constructor (init: FrameReaderInit) {
    this.maxLineBytes = init.maxLineBytes
    this.maxBodyBytes = init.maxBodyBytes
  }

  /** Feed a chunk (not reused by the caller); returns the frames it finished. Throws {@link LineTooLongError}. */
  push (chunk: Buffer): IpcFrame[] {
    const frames: IpcFrame[] = []
    let off = 0
    while (off < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off)
        this.skip -= n
        off += n
        continue
      }
      if (this.bodyHeader !== undefined) {
        off = this.fillBody(chunk, off, frames)
        continue
      }
      const nl = chunk.indexOf(10, off)
      if (nl === -1) {
        this.keep(chunk.subarray(off))
        break
      }
      const part = chunk.subarray(off, nl)
      if (this.pendingBytes + part.length > this.maxLineBytes) {
        this.reset()
        throw new LineTooLongError(`line longer than ${this.maxLineBytes} bytes`)
      }
      let line = part
      if (this.pending.length > 0) {
        this.pending.push(part)
        line = Buffer.concat(this.pending)
        this.reset()
      }
      off = nl + 1
      this.header((line.length >= SPLICE_MIN_CHARS ? this.parseSpliced(line) : undefined) ?? line.toString('utf8'), frames)
    }
    return frames
  }

  private keep (rest: Buffer): void {
    if (this.pendingBytes + rest.length > this.maxLineBytes) {
      this.reset()
      throw new LineTooLongError(`line longer than ${this.maxLineBytes} bytes`)
    }
    this.pending.push(rest)
    this.pendingBytes += rest.length
  }

  /**
   * A long line read without decoding it as UTF-8 or giving its `bodyBase64`
   * text to JSON.parse: both made V8 copy the text (~1.4 MB per MiB of body)
   * into fresh memory, each copy page-faulted in (~8 ms of a node's CPU per
   * line here). The text between `"bodyBase64":"` and the next quote is cut
   * out, the rest is parsed with a random stand-in there, and the text goes
   * back in, read as latin1 (one byte per character), only when
   * - the key occurs once, written literally, and the text is ASCII with no
   *   backslash (so the JSON string is the bytes as they are), and
   * - the stand-in came out as `params.bodyBase64` or `result.bodyBase64`
   *   (so the cut text is that member, not a look-alike elsewhere; a client
   *   cannot write the stand-in, it is random and never leaves this reader).
   * Otherwise `undefined`: the whole line is parsed as before. The one
   * difference: a raw control character in such a text, which makes the
   * line invalid JSON, is left for the body's base64 check to refuse
   * (`InvalidParams`, with the request's id) instead of a `ParseError`.
   */
  private parseSpliced (line: Buffer): Record<string, unknown> | undefined {
    const key = line.indexOf(BODY_BASE64_KEY)
    if (key === -1 || line.indexOf(BODY_BASE64_KEY, key + 1) !== -1) return undefined
    // `"bodyBase64":"`, with any JSON whitespace around the colon (Python's json.dumps writes `": "`)
    let at = skipWhitespace(line, key + BODY_BASE64_KEY.length)
    if (line[at] !== COLON) return undefined
    at = skipWhitespace(line, at + 1)
    if (line[at] !== QUOTE) return undefined
    const start = at + 1
    const end = line.indexOf(QUOTE, start)
    if (end === -1) return undefined
    const text = line.subarray(start, end)
    if (!isAscii(text) || text.indexOf(BACKSLASH) !== -1) return undefined
    let parsed: unknown
    try {
      parsed = JSON.parse(line.toString('utf8', 0, start) + this.standIn + line.toString('utf8', end))
    } catch {
      return undefined
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
    const message = parsed as Record<string, unknown>
    for (const holder of [message.params, message.result]) {
      if (typeof holder === 'object' && holder !== null && (holder as Record<string, unknown>).bodyBase64 === this.standIn) {
        (holder as Record<string, unknown>).bodyBase64 = line.toString('latin1', start, end)
        return message
      }
    }
    return undefined
  }

  private header (line: string | Record<string, unknown>, frames: IpcFrame[]): void {
    let parsed: unknown = line
    if (typeof line === 'string') {
      if (line.length === 0 || (line.length === 1 && line === '\r')) return
      try {
        parsed = JSON.parse(line)
      } catch {
        if (line.trim() === '') return
        frames.push({ kind: 'invalid', code: 'ParseError', reason: 'invalid JSON' })
        return
      }
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      frames.push({ kind: 'invalid', code: 'InvalidRequest', reason: 'a request must be a JSON object (batches are not supported)' })
      return
    }
    const message = parsed as Record<string, unknown>
    const declared = message[BODY_BYTES]
    if (declared === undefined) {
      frames.push({ kind: 'message', message })
      return
    }
    if (typeof declared !== 'number' || !Number.isSafeInteger(declared) || declared < 0) {
      frames.push({ kind: 'invalid', code: 'InvalidRequest', reason: `${BODY_BYTES} must be an integer ≥ 0`, message })
      return
    }
    if (declared > this.maxBodyBytes) {
      this.skip = declared
      frames.push({ kind: 'tooLarge', message, declared })
      return
    }
    if (declared === 0) {
      frames.push({ kind: 'message', message, body: Buffer.alloc(0) })
      return
    }
    this.bodyHeader = message
    this.body = undefined
    // the body bytes follow; `fillBody` takes them without scanning
    this.bodyFilled = 0
  }

  private fillBody (chunk: Buffer, off: number, frames: IpcFrame[]): number {
    const header = this.bodyHeader as Record<string, unknown>
    const total = header[BODY_BYTES] as number
    const available = chunk.length - off
    if (this.body === undefined && available >= total) {
      // the whole body is in this chunk: no copy
      frames.push({ kind: 'message', message: header, body: chunk.subarray(off, off + total) })
      this.bodyHeader = undefined
      return off + total
    }
    this.body ??= Buffer.allocUnsafe(total)
    const n = Math.min(total - this.bodyFilled, available)
    chunk.copy(this.body, this.bodyFilled, off, off + n)
    this.bodyFilled += n
    if (this.bodyFilled === total) {
      frames.push({ kind: 'message', message: header, body: this.body })
      this.bodyHeader = undefined
      this.body = undefined
      this.bodyFilled = 0
    }
    return off + n
  }

  private reset (): void {
    this.pending = []
    this.pendingBytes = 0
  }
}

/**
 * Encode one frame as the buffers to write, in order: the header line (with
 * `bodyBytes` when a body follows), then the body, for one `writev`. A long
 * base64 text is its own buffer (see {@link headerLine}).
 */
export function encodeFrame (header: Record<string, unknown>, body?: Uint8Array): { chunks: Uint8Array[] } {
  if (body !== undefined) header[BODY_BYTES] = body.byteLength
  const line = headerLine(header)
  const chunks: Uint8Array[] = typeof line === 'string'
    ? [Buffer.from(line, 'utf8')]
    // base64 is ASCII: one byte per character, copied as it is (encoding it as UTF-8 made V8 flatten the line first)
    : [Buffer.from(line.before, 'utf8'), Buffer.from(line.text, 'latin1'), Buffer.from(line.after, 'utf8')]
  if (body !== undefined) chunks.push(body)
  return { chunks }
}

/** `bodyBase64` texts at least this long go into a line without JSON.stringify (see {@link headerLine}) */
export const SPLICE_MIN_CHARS = 64 * 1024
const NOT_BASE64 = /[^A-Za-z0-9+/=]/
/** Stands in for a long base64 text while the rest of the header is stringified; found again by its JSON form */
const PLACEHOLDER = '\u0000agentnet-body\u0000'
const PLACEHOLDER_JSON = JSON.stringify(PLACEHOLDER)

/**
 * The header's JSON line. A plain JSON client gets binary bodies as
 * `bodyBase64` in `result` or `params`; V8's JSON.stringify checks every
 * character of a string for escaping (~6 ms per MiB of body here), which
 * base64 never needs: such a text is checked to be base64 (~1 ms per MiB)
 * and put into the line as it is, between the JSON before and after it
 * (joining them into one string cost a copy of the text, and a second one
 * when the joined string was flattened for the socket). Falls back to
 * JSON.stringify whenever that is not certain to give the same line.
 */
function headerLine (header: Record<string, unknown>): string | { before: string, text: string, after: string } {
  const key = typeof header.result === 'object' && header.result !== null ? 'result' : 'params'
  const holder = header[key] as Record<string, unknown> | undefined
  const text = typeof holder === 'object' && holder !== null ? holder.bodyBase64 : undefined
  if (typeof text !== 'string' || text.length < SPLICE_MIN_CHARS || NOT_BASE64.test(text)) return JSON.stringify(header) + '\n'
  const json = JSON.stringify({ ...header, [key]: { ...holder, bodyBase64: PLACEHOLDER } })
  const at = json.indexOf(PLACEHOLDER_JSON)
  // the stand-in must be where the text goes and nowhere else (another field could hold the same characters)
  if (at === -1 || json.indexOf(PLACEHOLDER_JSON, at + 1) !== -1) return JSON.stringify(header) + '\n'
  return { before: json.slice(0, at) + '"', text, after: '"' + json.slice(at + PLACEHOLDER_JSON.length) + '\n' }
}

const corkedSockets = new WeakSet<Socket>()

/**
 * Cork `socket` until the next tick, once per tick: every frame written to it
 * meanwhile leaves in one `writev` (the node's replies and notifications, the
 * SDK's requests alike).
 */
export function corkForTick (socket: Socket): void {
  if (corkedSockets.has(socket)) return
  corkedSockets.add(socket)
  socket.cork()
  process.nextTick(() => {
    corkedSockets.delete(socket)
    socket.uncork()
  })
}
