import { AgentnetError } from '../errors/index.ts'
import * as varint from 'uint8-varint'
import { MalformedFrameError } from '../protocol/index.ts'
import type { Uint8ArrayList } from 'uint8arraylist'

export class FrameTooLargeError extends AgentnetError { override readonly code = 'FrameTooLarge' }

/** Longest unsigned-varint length prefix we accept (enough for 2^35 bytes) */
const MAX_LENGTH_BYTES = 5

/** Frames this large are sent beside their length prefix, not copied behind it (see {@link encodeFrameParts}) */
export const LARGE_FRAME_BYTES = 64 * 1024

/**
 * `frame` with its unsigned-varint length before it: one buffer for a small
 * frame, the prefix and the frame as they are for a large one (copying a
 * large frame behind its prefix cost an allocation and a copy of the whole
 * body per message).
 */
export function encodeFrameParts (frame: Uint8Array): Uint8Array[] {
  return frame.byteLength >= LARGE_FRAME_BYTES ? [varint.encode(frame.byteLength), frame] : [encodeFrame(frame)]
}

/** Prefix `frame` with its unsigned-varint length, in one buffer (one send) */
export function encodeFrame (frame: Uint8Array): Uint8Array {
  const prefixLength = varint.encodingLength(frame.byteLength)
  const out = new Uint8Array(prefixLength + frame.byteLength)
  varint.encode(frame.byteLength, out, 0)
  out.set(frame, prefixLength)
  return out
}

/**
 * Incremental decoder of varint-length-prefixed frames. It never buffers more
 * than one frame of at most `maxFrameBytes` plus its prefix: a length above
 * the limit is refused as soon as the prefix is read, before the body arrives.
 */
export class FrameDecoder {
  private readonly maxFrameBytes: number
  private chunks: Uint8Array[] = []
  private buffered = 0
  /** bytes the partial frame at the head of `chunks` needs before it is worth joining */
  private needed = 0

  private readonly stall: { timeoutMs: number, onTimeout: () => void } | undefined
  private stallTimer: ReturnType<typeof setTimeout> | undefined
  private readonly idle: { timeoutMs: number, onIdle: () => void } | undefined
  private idleTimer: ReturnType<typeof setTimeout> | undefined

  /**
   * With `stall`, a frame must be completed within `stall.timeoutMs` of its
   * first byte, else `stall.onTimeout` runs (the caller resets the stream):
   * a peer holding half-sent frames holds buffers and streams.
   */
  constructor (maxFrameBytes: number, stall?: { timeoutMs: number, onTimeout: () => void }, idle?: { timeoutMs: number, onIdle: () => void }) {
    this.maxFrameBytes = maxFrameBytes
    this.stall = stall
    // with `idle`, `idle.onIdle` runs once no byte arrived for `idle.timeoutMs` (from now, then from each push)
    this.idle = idle
    this.armIdle()
  }

  private armIdle (): void {
    if (this.idle == null) return
    clearTimeout(this.idleTimer)
    this.idleTimer = setTimeout(this.idle.onIdle, this.idle.timeoutMs)
  }

  /** Stop the stall timer (between frames, or the stream closed) */
  dispose (): void {
    clearTimeout(this.stallTimer)
    this.stallTimer = undefined
  }

  /** Stop every timer (the stream closed) */
  close (): void {
    this.dispose()
    clearTimeout(this.idleTimer)
  }

  /** Bytes of a frame received in part (0 between frames) */
  get partial (): number {
    return this.buffered
  }

  /** Feed received bytes; returns every frame they complete. Throws {@link FrameTooLargeError} or `MalformedFrameError`. */
  push (data: Uint8Array | Uint8ArrayList): Uint8Array[] {
    const frames = this.decode(data)
    this.armIdle()
    if (this.stall != null) {
      // the clock runs from the first byte of the frame now in part: a completed frame restarts it
      if (this.buffered === 0 || frames.length > 0) this.dispose()
      if (this.buffered > 0) this.stallTimer ??= setTimeout(this.stall.onTimeout, this.stall.timeoutMs)
    }
    return frames
  }

  private decode (data: Uint8Array | Uint8ArrayList): Uint8Array[] {
    const bytes = data instanceof Uint8Array ? data : data.subarray()
    if (bytes.byteLength === 0) {
      return []
    }
    this.chunks.push(bytes)
    this.buffered += bytes.byteLength
    if (this.buffered < this.needed) {
      // a large frame arriving in pieces: join once, when it is complete
      return []
    }
    this.needed = 0
    const frames: Uint8Array[] = []
    let buf = this.chunks.length === 1 ? bytes : concat(this.chunks, this.buffered)
    let offset = 0
    while (offset < buf.byteLength) {
      // parse the length prefix by hand so a truncated prefix just waits
      let length = 0
      let shift = 0
      let i = offset
      let complete = false
      while (i < buf.byteLength && i - offset < MAX_LENGTH_BYTES) {
        const b = buf[i] as number
        length += (b & 0x7f) * 2 ** shift
        shift += 7
        i++
        if ((b & 0x80) === 0) {
          complete = true
          break
        }
      }
      if (!complete) {
        if (i - offset >= MAX_LENGTH_BYTES) {
          throw new MalformedFrameError('frame length prefix is not a valid varint')
        }
        break
      }
      if (length > this.maxFrameBytes) {
        throw new FrameTooLargeError(`frame of ${length} bytes exceeds the ${this.maxFrameBytes}-byte limit`)
      }
      if (buf.byteLength - i < length) {
        this.needed = i - offset + length
        break
      }
      frames.push(buf.subarray(i, i + length))
      offset = i + length
    }
    if (offset === buf.byteLength) {
      this.chunks = []
      this.buffered = 0
    } else {
      buf = buf.subarray(offset)
      this.chunks = [buf]
      this.buffered = buf.byteLength
    }
    return frames
  }
}

function concat (chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}
