/**
 * Framing of the IPC socket: newline-terminated JSON-RPC lines, where a line
 * whose top-level object carries `"bodyBytes": N` is followed by exactly N raw
 * bytes (the message body). Only the header line is parsed and scanned for a
 * newline; body bytes are never scanned, decoded or copied more than once.
 * Plain JSON clients never send `bodyBytes` and see no difference.
 */

import { LineTooLongError } from './lines.ts'
import type { Socket } from 'node:net'

/** Name of the top-level header member that announces a raw body */
export const BODY_BYTES = 'bodyBytes'

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
      let line: string
      if (this.pending.length > 0) {
        this.pending.push(part)
        line = Buffer.concat(this.pending).toString('utf8')
        this.reset()
      } else {
        line = part.toString('utf8')
      }
      off = nl + 1
      this.header(line, frames)
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

  private header (line: string, frames: IpcFrame[]): void {
    if (line.length === 0 || (line.length === 1 && line === '\r')) return
    let parsed: unknown
    try {
      parsed = JSON.parse(line)
    } catch {
      if (line.trim() === '') return
      frames.push({ kind: 'invalid', code: 'ParseError', reason: 'invalid JSON' })
      return
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

/** Encode one frame: the header line (with `bodyBytes` when a body follows) and the body, for one `writev` */
export function encodeFrame (header: Record<string, unknown>, body?: Uint8Array): { line: string, body?: Uint8Array } {
  if (body === undefined) return { line: headerLine(header) }
  header[BODY_BYTES] = body.byteLength
  return { line: headerLine(header), body }
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
 * and put into the line as it is. Falls back to JSON.stringify whenever that
 * is not certain to give the same line.
 */
function headerLine (header: Record<string, unknown>): string {
  const key = typeof header.result === 'object' && header.result !== null ? 'result' : 'params'
  const holder = header[key] as Record<string, unknown> | undefined
  const text = typeof holder === 'object' && holder !== null ? holder.bodyBase64 : undefined
  if (typeof text !== 'string' || text.length < SPLICE_MIN_CHARS || NOT_BASE64.test(text)) return JSON.stringify(header) + '\n'
  const json = JSON.stringify({ ...header, [key]: { ...holder, bodyBase64: PLACEHOLDER } })
  const at = json.indexOf(PLACEHOLDER_JSON)
  // the stand-in must be where the text goes and nowhere else (another field could hold the same characters)
  if (at === -1 || json.indexOf(PLACEHOLDER_JSON, at + 1) !== -1) return JSON.stringify(header) + '\n'
  return json.slice(0, at) + '"' + text + '"' + json.slice(at + PLACEHOLDER_JSON.length) + '\n'
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
