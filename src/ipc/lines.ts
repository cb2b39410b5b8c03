
import { AgentnetError } from '../errors/index.ts'
export class LineTooLongError extends AgentnetError { override readonly code = 'LineTooLong' }

/**
 * Splits a byte stream into newline-terminated lines without ever holding
 * more than `maxLineBytes` of an unfinished line, so a peer that never sends
 * a newline cannot make us buffer without bound.
 */
export class LineSplitter {
  private readonly maxLineBytes: number
  private pending: Buffer[] = []
  private pendingBytes = 0

  constructor (maxLineBytes: number) {
    this.maxLineBytes = maxLineBytes
  }

  /** Feed a chunk; returns the complete lines it finished. Throws {@link LineTooLongError}. */
  push (chunk: Buffer): string[] {
    const lines: string[] = []
    let start = 0
    while (true) {
      const nl = chunk.indexOf(10, start)
      if (nl === -1) {
        break
      }
      const part = chunk.subarray(start, nl)
      if (this.pendingBytes + part.length > this.maxLineBytes) {
        this.reset()
        throw new LineTooLongError(`line longer than ${this.maxLineBytes} bytes`)
      }
      if (this.pending.length > 0) {
        this.pending.push(part)
        lines.push(Buffer.concat(this.pending).toString('utf8'))
        this.reset()
      } else {
        lines.push(part.toString('utf8'))
      }
      start = nl + 1
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start)
      if (this.pendingBytes + rest.length > this.maxLineBytes) {
        this.reset()
        throw new LineTooLongError(`line longer than ${this.maxLineBytes} bytes`)
      }
      // copy: the caller may reuse the chunk's memory
      this.pending.push(Buffer.from(rest))
      this.pendingBytes += rest.length
    }
    return lines
  }

  private reset (): void {
    this.pending = []
    this.pendingBytes = 0
  }
}
