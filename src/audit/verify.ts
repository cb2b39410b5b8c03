/**
 * Read-only checks and reads of a log: `verifyAuditLog`, `tailAuditLog`.
 * Both are safe while a node appends to the same log.
 */

import { open } from 'node:fs/promises'
import { AuditIOError, AuditInvalidArgumentError, AuditLogNotFoundError } from './errors.ts'
import { headPathFor, readHead } from './head.ts'
import { linesBackward, linesForward } from './lines.ts'
import { checkLine, MAX_RECORD_BYTES, ZERO_HASH } from './record.ts'
import type { HeadState } from './head.ts'
import type { AuditRecord, LineCheck } from './record.ts'
import type { FileHandle } from 'node:fs/promises'

/** Largest `n` for {@link tailAuditLog} */
export const MAX_TAIL_RECORDS = 10_000
/** Damaged lines `tailAuditLog` may skip beyond `n` (in maximal-record sizes) before it stops looking */
const TAIL_SLACK_LINES = 64

export interface AuditVerifyOptions {
  /** The head file. @default as for `openAuditLog` */
  headPath?: string
}

export interface AuditDamage {
  /**
   * 1-based line of the log where the damage is. For records missing from
   * the end, or a missing head, the line after the last one.
   */
  line: number
  /** seq the record on that line claims, or the first missing seq */
  seq?: number
  /** what is wrong, in words */
  reason: string
}

export interface AuditVerifyResult {
  /** true when every record and the head check out */
  ok: boolean
  /** records that verified, from seq 0 up to the first damage (all of them when ok) */
  records: number
  /** the last record that verified */
  last?: { seq: number, hash: string }
  /** the first damage found; verification stops there */
  firstBad?: AuditDamage
  /**
   * A half-written last line left by a crash, which the next `openAuditLog`
   * removes; it was never acknowledged, so it is not damage.
   */
  torn?: { line: number, bytes: number }
}

/**
 * Check a whole log, reading it once from start to end with bounded memory:
 * every line is a canonical record whose hash recomputes, seq counts up by
 * one from 0, each `prev` is the previous record's `hash`, and the head file
 * agrees (its record is in the log with the same hash; the log does not end
 * before it). Never writes.
 */
export async function verifyAuditLog (path: string, options: AuditVerifyOptions = {}): Promise<AuditVerifyResult> {
  const headPath = options.headPath ?? headPathFor(path)
  // the head first: it is written after the log, so every record it names is already in the log we read next
  const head = await readHead(headPath)
  const handle = await openForReading(path, head.state !== 'missing')
  try {
    const size = handle === undefined ? 0 : (await handle.stat()).size
    let records = 0
    let prev = ZERO_HASH
    let lineNo = 0
    let last: { seq: number, hash: string } | undefined
    /** an unparseable line: a torn write if it turns out to be the last line */
    let suspect: { line: number, bytes: number, damage: AuditDamage } | undefined
    const result = (firstBad?: AuditDamage, torn?: { line: number, bytes: number }): AuditVerifyResult => ({
      ok: firstBad === undefined,
      records,
      ...(last !== undefined ? { last } : {}),
      ...(firstBad !== undefined ? { firstBad } : {}),
      ...(torn !== undefined ? { torn } : {})
    })

    const lines = handle === undefined ? [] : linesForward(handle, size, MAX_RECORD_BYTES)
    for await (const raw of lines) {
      lineNo++
      if (suspect !== undefined) {
        if (!raw.terminated && raw.end - raw.start < MAX_RECORD_BYTES) {
          // a torn fragment after it: both were never acknowledged (open removes both)
          return result(undefined, { line: suspect.line, bytes: suspect.bytes + raw.end - raw.start })
        }
        return result(suspect.damage)
      }
      if (!raw.terminated) {
        if (raw.end - raw.start < MAX_RECORD_BYTES) {
          return finish(result, head, headPath, lineNo, last, { line: lineNo, bytes: raw.end - raw.start })
        }
        return result({ line: lineNo, reason: 'the log ends with a line without a newline, too long to be a torn record' })
      }
      const check: LineCheck = raw.bytes === undefined
        ? { ok: false, kind: 'malformed', reason: `line is longer than ${MAX_RECORD_BYTES} bytes` }
        : checkLine(raw.bytes)
      if (!check.ok) {
        const damage: AuditDamage = { line: lineNo, ...(check.seq !== undefined ? { seq: check.seq } : {}), reason: check.reason }
        const couldBeTorn = check.kind === 'unparseable' && head.state === 'ok' && (last?.seq ?? -1) >= head.seq
        if (couldBeTorn) {
          suspect = { line: lineNo, bytes: raw.end - raw.start + 1, damage }
          continue
        }
        return result(damage)
      }
      const record = check.record
      if (record.seq !== records) {
        const reason = `seq ${record.seq} where ${records} was expected: ${record.seq > records ? 'records are missing or out of order' : 'records are out of order or repeated'}`
        return result({ line: lineNo, seq: record.seq, reason })
      }
      if (record.prev !== prev) {
        return result({ line: lineNo, seq: record.seq, reason: record.seq === 0 ? '"prev" of the first record is not 64 zeros' : `"prev" is not the hash of record ${record.seq - 1}` })
      }
      if (head.state === 'ok' && record.seq === head.seq && record.hash !== head.hash) {
        return result({ line: lineNo, seq: record.seq, reason: `"hash" differs from the one ${headPath} records for seq ${head.seq}` })
      }
      records++
      prev = record.hash
      last = { seq: record.seq, hash: record.hash }
    }
    if (suspect !== undefined) {
      return result(undefined, { line: suspect.line, bytes: suspect.bytes })
    }
    return finish(result, head, headPath, lineNo + 1, last)
  } catch (err) {
    throw new AuditIOError(`cannot read audit log ${path}: ${(err as Error).message}`, { cause: err })
  } finally {
    await handle?.close().catch(() => {})
  }
}

/** The checks once every line is read: the head must not be missing, damaged or ahead of the log */
function finish (
  result: (firstBad?: AuditDamage, torn?: { line: number, bytes: number }) => AuditVerifyResult,
  head: HeadState,
  headPath: string,
  nextLine: number,
  last: { seq: number, hash: string } | undefined,
  torn?: { line: number, bytes: number }
): AuditVerifyResult {
  const lastSeq = last?.seq ?? -1
  if (head.state === 'missing') {
    if (lastSeq >= 0) {
      return result({ line: nextLine, reason: `${headPath} is missing, so records removed from the end of the log cannot be detected` }, torn)
    }
  } else if (head.state === 'unreadable') {
    return result({ line: nextLine, reason: head.reason }, torn)
  } else if (head.seq > lastSeq) {
    const missing = head.seq - lastSeq
    return result({ line: nextLine, seq: lastSeq + 1, reason: `the log ends ${lastSeq === -1 ? 'before seq 0' : `at seq ${lastSeq}`} but ${headPath} records seq ${head.seq}: ${missing} record${missing === 1 ? ' was' : 's were'} removed from the end` }, torn)
  }
  return result(undefined, torn)
}

/**
 * The last `n` records of the log, oldest first, read backwards from the end
 * in chunks: at most `(n + 64) × 64 KiB` of the file is read, however large
 * it is. Lines that are not intact records (a torn last line, damage) are
 * skipped; the chain is not checked, use {@link verifyAuditLog} for that.
 */
export async function tailAuditLog (path: string, n: number): Promise<AuditRecord[]> {
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_TAIL_RECORDS) {
    throw new AuditInvalidArgumentError(`n must be an integer from 0 to ${MAX_TAIL_RECORDS}`)
  }
  const handle = await openForReading(path, false)
  if (handle === undefined || n === 0) {
    await handle?.close()
    return []
  }
  try {
    const size = (await handle.stat()).size
    const records: AuditRecord[] = []
    // bounded: lines skipped as damaged count too, so a damaged log is not read whole
    const floor = Math.max(0, size - (n + TAIL_SLACK_LINES) * MAX_RECORD_BYTES)
    for await (const raw of linesBackward(handle, size, MAX_RECORD_BYTES, floor)) {
      if (!raw.terminated || raw.bytes === undefined) {
        continue
      }
      const check = checkLine(raw.bytes)
      if (check.ok) {
        records.push(check.record)
        if (records.length >= n) {
          break
        }
      }
    }
    return records.reverse()
  } catch (err) {
    throw new AuditIOError(`cannot read audit log ${path}: ${(err as Error).message}`, { cause: err })
  } finally {
    await handle.close().catch(() => {})
  }
}

/** Open read-only; a missing log is an error unless `missingOk` (then undefined) */
async function openForReading (path: string, missingOk: boolean): Promise<FileHandle | undefined> {
  try {
    return await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (missingOk) {
        return undefined
      }
      throw new AuditLogNotFoundError(`no audit log at ${path}`)
    }
    throw new AuditIOError(`cannot open audit log ${path}: ${(err as Error).message}`, { cause: err })
  }
}
