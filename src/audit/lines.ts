/**
 * Bounded-memory line readers over a file handle: forwards (verify) and
 * backwards from the end (open, tail). A line longer than `maxLine` bytes is
 * reported without its bytes, so a damaged file can never make us hold more
 * than one chunk plus one maximal line.
 */

import type { FileHandle } from 'node:fs/promises'

export const CHUNK_BYTES = 64 * 1024
const NEWLINE = 0x0a

export interface RawLine {
  /** offset of the line's first byte */
  start: number
  /** offset just past the line's last byte (its newline not included) */
  end: number
  /** false for the bytes after the last newline of the file */
  terminated: boolean
  /** the line's bytes, or undefined when it is longer than `maxLine` */
  bytes?: Buffer
}

async function readAt (handle: FileHandle, position: number, length: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(length)
  let filled = 0
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled)
    if (bytesRead === 0) {
      break
    }
    filled += bytesRead
  }
  return filled === length ? buffer : buffer.subarray(0, filled)
}

class LineAccumulator {
  private parts: Buffer[] = []
  private length = 0
  private tooLong = false
  private readonly maxLine: number

  constructor (maxLine: number) {
    this.maxLine = maxLine
  }

  add (part: Buffer, atFront: boolean): void {
    if (this.tooLong || part.length === 0) {
      return
    }
    this.length += part.length
    if (this.length > this.maxLine) {
      this.tooLong = true
      this.parts = []
      return
    }
    if (atFront) {
      this.parts.unshift(part)
    } else {
      this.parts.push(part)
    }
  }

  take (): Buffer | undefined {
    let bytes: Buffer | undefined
    if (!this.tooLong) {
      bytes = this.parts.length === 1 ? this.parts[0] ?? Buffer.alloc(0) : Buffer.concat(this.parts, this.length)
    }
    this.parts = []
    this.length = 0
    this.tooLong = false
    return bytes
  }
}

/** Lines of the first `size` bytes of the file, first to last */
export async function * linesForward (handle: FileHandle, size: number, maxLine: number): AsyncGenerator<RawLine> {
  const line = new LineAccumulator(maxLine)
  let lineStart = 0
  let position = 0
  while (position < size) {
    const chunk = await readAt(handle, position, Math.min(CHUNK_BYTES, size - position))
    if (chunk.length === 0) {
      break
    }
    let from = 0
    while (from < chunk.length) {
      const newline = chunk.indexOf(NEWLINE, from)
      if (newline === -1) {
        line.add(chunk.subarray(from), false)
        break
      }
      line.add(chunk.subarray(from, newline), false)
      const end = position + newline
      yield withBytes({ start: lineStart, end, terminated: true }, line.take())
      lineStart = end + 1
      from = newline + 1
    }
    position += chunk.length
  }
  if (position > lineStart) {
    yield withBytes({ start: lineStart, end: position, terminated: false }, line.take())
  }
}

/**
 * Lines of the first `size` bytes of the file, last to first. Reads nothing
 * before offset `floor`; the line that straddles it is not yielded.
 */
export async function * linesBackward (handle: FileHandle, size: number, maxLine: number, floor = 0): AsyncGenerator<RawLine> {
  const line = new LineAccumulator(maxLine)
  let position = size
  let lineEnd = size
  let terminated = false
  if (size > 0) {
    const last = await readAt(handle, size - 1, 1)
    if (last[0] === NEWLINE) {
      terminated = true
      lineEnd = size - 1
      position = size - 1
    }
  }
  while (position > floor) {
    const start = Math.max(floor, position - CHUNK_BYTES)
    const chunk = await readAt(handle, start, position - start)
    let to = chunk.length
    while (to > 0) {
      const newline = chunk.lastIndexOf(NEWLINE, to - 1)
      if (newline === -1) {
        line.add(chunk.subarray(0, to), true)
        break
      }
      line.add(chunk.subarray(newline + 1, to), true)
      yield withBytes({ start: start + newline + 1, end: lineEnd, terminated }, line.take())
      lineEnd = start + newline
      terminated = true
      to = newline
    }
    position = start
  }
  if (floor <= 0 && (terminated || lineEnd > 0)) {
    yield withBytes({ start: 0, end: lineEnd, terminated }, line.take())
  }
}

function withBytes (line: RawLine, bytes: Buffer | undefined): RawLine {
  if (bytes !== undefined) {
    line.bytes = bytes
  }
  return line
}
