/**
 * The writer: opening (with torn-tail repair), serialised appends, close.
 */

import { constants } from 'node:fs'
import { lstat, mkdir, open } from 'node:fs/promises'
import { dirname } from 'node:path'
import { AuditIOError, AuditInvalidArgumentError, AuditLogClosedError } from './errors.ts'
import { headPathFor, readHead, writeHead } from './head.ts'
import { linesBackward } from './lines.ts'
import { fsyncDir } from '../utils/fs.ts'
import { buildRecord, canonicalData, checkLine, checkType, MAX_DATA_BYTES_LIMIT, MAX_RECORD_BYTES, ZERO_HASH } from './record.ts'
import type { HeadState } from './head.ts'
import type { AuditRecord, LineCheck } from './record.ts'
import type { FileHandle } from 'node:fs/promises'

/** Default for {@link AuditLogInit.maxDataBytes} */
export const DEFAULT_MAX_DATA_BYTES = 8 * 1024

/** Lines looked at, from the end, to find the record the chain continues from */
const MAX_TAIL_SCAN_LINES = 64

export interface AuditLogInit {
  /** The log file, normally `<home>/audit.log`. Its folder is created (0700) if missing. */
  path: string
  /** The head file. @default `path` with `.log` replaced by `.head` (`<home>/audit.head`), or with `.head` appended */
  headPath?: string
  /** Largest `data` accepted by `append`, in bytes of canonical JSON. @default 8192 (at most 61440) */
  maxDataBytes?: number
}

/** What `openAuditLog` found at the end of the log and did about it */
export interface AuditRecovery {
  /** Bytes cut from the end of the log: a record torn by a crash, which was never acknowledged. 0 normally. */
  truncatedBytes: number
  /**
   * Damage found and deliberately left in place (verify reports it), in
   * words fit for the node's log. Empty normally.
   */
  warnings: string[]
}

export interface AuditLog {
  /** The log file */
  readonly path: string
  /** The head file */
  readonly headPath: string
  /** What opening the log found and did; a node should log the warnings */
  readonly recovery: AuditRecovery
  /**
   * Append one record and resolve once it is durable: the line written with
   * one `write()` on an `O_APPEND` descriptor, `fdatasync`ed, then the head
   * file replaced. Appends run one at a time, in call order.
   *
   * Rejects with {@link AuditInvalidArgumentError} or
   * {@link AuditDataTooLargeError} (nothing written), {@link AuditLogClosedError},
   * or {@link AuditIOError} (not acknowledged; the record may or may not be in
   * the log, and the log's end is re-read before the next append).
   */
  append: (type: string, data?: object) => Promise<AuditRecord>
  /** Wait for pending appends, then close the file. Idempotent. */
  close: () => Promise<void>
}

interface WriterState {
  handle: FileHandle
  /** seq the next record gets */
  nextSeq: number
  /** hash the next record's `prev` holds */
  prev: string
  /** seq the head file records; undefined when the head is damaged and left alone */
  headSeq: number | undefined
}

/**
 * Open (creating if needed) the audit log at `init.path`. Never fails because
 * of the log's content: a torn last line is cut off, any other damage is left
 * for `verifyAuditLog` to report and is listed in `recovery.warnings`. Fails
 * only when the file system refuses ({@link AuditIOError}).
 */
export async function openAuditLog (init: AuditLogInit): Promise<AuditLog> {
  const maxDataBytes = init.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES
  if (!Number.isSafeInteger(maxDataBytes) || maxDataBytes < 2 || maxDataBytes > MAX_DATA_BYTES_LIMIT) {
    throw new AuditInvalidArgumentError(`maxDataBytes must be an integer from 2 to ${MAX_DATA_BYTES_LIMIT}`)
  }
  const headPath = init.headPath ?? headPathFor(init.path)
  const recovery: AuditRecovery = { truncatedBytes: 0, warnings: [] }
  const state = await openState(init.path, headPath, recovery)
  return new FileAuditLog(init.path, headPath, maxDataBytes, recovery, state)
}

class FileAuditLog implements AuditLog {
  readonly path: string
  readonly headPath: string
  readonly recovery: AuditRecovery
  private readonly maxDataBytes: number
  private state: WriterState | undefined
  private queue: Promise<void> = Promise.resolve()
  private closed = false
  private closing: Promise<void> | undefined

  constructor (path: string, headPath: string, maxDataBytes: number, recovery: AuditRecovery, state: WriterState) {
    this.path = path
    this.headPath = headPath
    this.maxDataBytes = maxDataBytes
    this.recovery = recovery
    this.state = state
  }

  async append (type: string, data: object = {}): Promise<AuditRecord> {
    const checkedType = checkType(type)
    const canonical = canonicalData(data, this.maxDataBytes)
    if (this.closed) {
      throw new AuditLogClosedError(`audit log ${this.path} is closed`)
    }
    const result = this.queue.then(async () => await this.write(checkedType, canonical))
    this.queue = result.then(() => {}, () => {})
    return await result
  }

  async close (): Promise<void> {
    this.closed = true
    this.closing ??= this.queue.then(async () => {
      await this.state?.handle.close().catch(() => {})
      this.state = undefined
    })
    await this.closing
  }

  private async write (type: string, canonicalDataJson: string): Promise<AuditRecord> {
    if (this.state === undefined) {
      // a previous append failed: re-read the end of the log (repairing a torn line) before going on
      try {
        this.state = await openState(this.path, this.headPath, this.recovery)
      } catch (err) {
        throw asIOError(err, `cannot reopen audit log ${this.path}`)
      }
    }
    const state = this.state
    if (state.headSeq !== undefined && state.headSeq !== state.nextSeq - 1) {
      // the head lags (a crash, or a failed head update): bring it up to date
      // before writing, so it never lags by more than the one record in flight
      try {
        await writeHead(this.headPath, state.nextSeq - 1, state.prev)
      } catch (err) {
        throw asIOError(err, `cannot update ${this.headPath}`)
      }
      state.headSeq = state.nextSeq - 1
    }
    const { record, line } = buildRecord(state.nextSeq, new Date().toISOString(), type, canonicalDataJson, state.prev)
    const bytes = Buffer.from(line, 'utf8')
    try {
      const { bytesWritten } = await state.handle.write(bytes, 0, bytes.length, null)
      if (bytesWritten !== bytes.length) {
        throw new Error(`short write: ${bytesWritten} of ${bytes.length} bytes`)
      }
      await state.handle.datasync()
    } catch (err) {
      this.state = undefined
      await state.handle.close().catch(() => {})
      throw asIOError(err, `cannot append to audit log ${this.path}`)
    }
    state.nextSeq = record.seq + 1
    state.prev = record.hash
    if (state.headSeq !== undefined) {
      try {
        await writeHead(this.headPath, record.seq, record.hash)
      } catch (err) {
        throw asIOError(err, `record ${record.seq} is in the audit log but ${this.headPath} could not be updated`)
      }
      state.headSeq = record.seq
    }
    return record
  }
}

function asIOError (err: unknown, message: string): AuditIOError {
  return new AuditIOError(`${message}: ${(err as Error).message}`, { cause: err })
}

interface TailLine {
  start: number
  end: number
  check: LineCheck
}

/**
 * Open the log for appending and work out where the chain continues:
 *
 * 1. Bytes after the last newline are a torn write (every line we write ends
 *    in one and is acknowledged only after it is synced): cut off.
 * 2. A last line that is not JSON is cut off too if it cannot have been
 *    acknowledged, i.e. the head does not go past the record before it.
 * 3. The chain continues after the later of the head and the log's last
 *    record. If records were removed from the end (head ahead of the log) or
 *    the last record changed, it continues from the head, so the gap or
 *    mismatch stays visible to `verify` for good.
 * 4. A missing or unreadable head next to a non-empty log is damage: it is
 *    left as it is (so `verify` keeps reporting it) and not updated again.
 */
async function openState (path: string, headPath: string, recovery: AuditRecovery): Promise<WriterState> {
  let head: HeadState
  let existed: boolean
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    head = await readHead(headPath)
    existed = await exists(path)
    if (!existed && head.state === 'missing') {
      // the head is written first, so a log that exists always has a head
      await writeHead(headPath, -1, ZERO_HASH)
      head = { state: 'ok', seq: -1, hash: ZERO_HASH }
    }
  } catch (err) {
    throw asIOError(err, `cannot open audit log ${path}`)
  }
  let handle: FileHandle
  try {
    handle = await open(path, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
  } catch (err) {
    throw asIOError(err, `cannot open audit log ${path}`)
  }
  try {
    const info = await handle.stat()
    if (!info.isFile()) {
      throw new Error('not a regular file')
    }
    if ((info.mode & 0o077) !== 0) {
      await handle.chmod(0o600)
    }
    if (!existed) {
      await handle.sync()
      await fsyncDir(dirname(path))
    }
    return await continueChain(handle, info.size, head, headPath, recovery)
  } catch (err) {
    await handle.close().catch(() => {})
    throw asIOError(err, `cannot open audit log ${path}`)
  }
}

async function continueChain (handle: FileHandle, size: number, head: HeadState, headPath: string, recovery: AuditRecovery): Promise<WriterState> {
  const warn = (message: string): void => { recovery.warnings.push(message) }
  let fragment: { start: number, end: number } | undefined
  const lines: TailLine[] = []
  // bounded: a damaged log must not make open read the whole file
  const floor = Math.max(0, size - (MAX_TAIL_SCAN_LINES + 1) * MAX_RECORD_BYTES)
  for await (const line of linesBackward(handle, size, MAX_RECORD_BYTES, floor)) {
    if (!line.terminated) {
      fragment = line
      continue
    }
    const check: LineCheck = line.bytes === undefined
      ? { ok: false, kind: 'malformed', reason: 'line is too long' }
      : checkLine(line.bytes)
    lines.push({ start: line.start, end: line.end, check })
    if (lines.length >= MAX_TAIL_SCAN_LINES || (lines.length >= 2 && seqAndHash(check) !== undefined)) {
      break
    }
  }

  let end = size
  let terminate = false
  if (fragment !== undefined) {
    if (fragment.end - fragment.start < MAX_RECORD_BYTES) {
      end = fragment.start
    } else {
      terminate = true
      warn(`the audit log ends with ${fragment.end - fragment.start} bytes without a newline, too long to be a torn record; left in place`)
    }
  }
  const last = lines[0]
  if (!terminate && last !== undefined && !last.check.ok && last.check.kind === 'unparseable' && head.state === 'ok') {
    const before = lines[1]
    const beforeSeq = before === undefined ? undefined : seqAndHash(before.check)?.seq
    const neverAcknowledged = before === undefined ? head.seq === -1 : beforeSeq !== undefined && beforeSeq >= head.seq
    if (neverAcknowledged) {
      end = last.start
      lines.shift()
    }
  }
  if (end < size) {
    await handle.truncate(end)
    await handle.sync()
    recovery.truncatedBytes += size - end
  }
  if (terminate) {
    await handle.write('\n', null)
    await handle.sync()
  }
  if (lines[0] !== undefined && !lines[0].check.ok) {
    warn(`the last line of the audit log is damaged (${lines[0].check.reason}); left in place`)
  }

  let tail: { seq: number, hash: string } | undefined
  for (const line of lines) {
    tail = seqAndHash(line.check)
    if (tail !== undefined) {
      break
    }
  }
  if (head.state === 'ok') {
    if (tail !== undefined && tail.seq > head.seq) {
      if (tail.seq > head.seq + 1) {
        warn(`the audit log goes ${tail.seq - head.seq} records past ${headPath}; it never lags by more than one`)
      }
      return { handle, nextSeq: tail.seq + 1, prev: tail.hash, headSeq: head.seq }
    }
    if (tail === undefined ? head.seq >= 0 : tail.seq < head.seq) {
      warn(`the audit log ends at seq ${tail?.seq ?? 'none'} but ${headPath} records seq ${head.seq}: records were removed from the end; the chain continues from the head, leaving the gap visible`)
    } else if (tail !== undefined && tail.hash !== head.hash) {
      warn(`the audit log's last record (seq ${tail.seq}) differs from the one ${headPath} records; the chain continues from the head`)
    }
    return { handle, nextSeq: head.seq + 1, prev: head.hash, headSeq: head.seq }
  }
  if (head.state === 'missing' && end === 0 && !terminate) {
    await writeHead(headPath, -1, ZERO_HASH)
    return { handle, nextSeq: 0, prev: ZERO_HASH, headSeq: -1 }
  }
  warn(`${head.state === 'missing' ? `${headPath} is missing` : head.reason}; it is left as it is so verify keeps reporting it, and removal of records from the end can no longer be detected`)
  return { handle, nextSeq: tail === undefined ? 0 : tail.seq + 1, prev: tail?.hash ?? ZERO_HASH, headSeq: undefined }
}

/** The seq and hash a line claims, if it has both (even when the line fails other checks) */
function seqAndHash (check: LineCheck): { seq: number, hash: string } | undefined {
  if (check.ok) {
    return { seq: check.record.seq, hash: check.record.hash }
  }
  return check.seq !== undefined && check.hash !== undefined ? { seq: check.seq, hash: check.hash } : undefined
}

async function exists (path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return false
    }
    throw err
  }
}

