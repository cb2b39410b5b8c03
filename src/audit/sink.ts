import { createHash } from 'node:crypto'
import type { AuditLog } from './log.ts'
import type { AuditData } from './record.ts'
import type { Logger } from 'pino'

/** Rejections recorded one by one per peer per second; the rest are counted */
const REJECTIONS_PER_PEER_PER_SECOND = 10
/** Records waiting for the disk; beyond it records are dropped and counted */
const MAX_QUEUED = 10_000
/** Characters of a peer-chosen field (service name, request ID, reason) kept in a rejection record */
export const MAX_RECORDED_FIELD_CHARS = 256

/**
 * A peer-chosen string as recorded: whole when short, else its first
 * {@link MAX_RECORDED_FIELD_CHARS} characters and the SHA-256 of the whole,
 * so a long field can never push the record over the log's size limit (it
 * used to be dropped then) and the whole value can still be matched.
 */
export function clipField (value: string): { value: string, sha256?: string } {
  if (value.length <= MAX_RECORDED_FIELD_CHARS) return { value }
  return { value: `${value.slice(0, MAX_RECORDED_FIELD_CHARS)}…`, sha256: createHash('sha256').update(value).digest('hex') }
}

/**
 * Feeds the audit log without ever blocking or growing without bound: a
 * flood of rejected frames must not turn into a flood of fsyncs. Each
 * peer's rejections beyond a small rate are summed into one
 * `message.rejected.suppressed` record per second.
 */
export class AuditSink {
  private readonly log: AuditLog
  private readonly logger: Logger | undefined
  private queued = 0
  private dropped = 0
  /** records the disk refused (by type), written as one `audit.records-lost` record once it takes writes again */
  private lost: Record<string, number> = {}
  private lostTotal = 0
  private readonly rejections = new Map<string, { count: number, suppressed: Record<string, number> }>()
  private readonly timer: ReturnType<typeof setInterval>

  constructor (log: AuditLog, logger?: Logger) {
    this.log = log
    this.logger = logger
    this.timer = setInterval(() => { this.flushSuppressed() }, 1000)
    this.timer.unref()
  }

  /** Append a record in the background */
  record (type: string, data: AuditData): void {
    if (this.queued >= MAX_QUEUED) {
      this.dropped++
      return
    }
    this.queued++
    // drop undefined fields: the log stores JSON only
    this.log.append(type, JSON.parse(JSON.stringify(data)) as AuditData).then(() => { this.reportLost() }, (err: Error) => {
      this.lost[type] = (this.lost[type] ?? 0) + 1
      this.lostTotal++
      this.logger?.error({ err: err.message, type, lostSoFar: this.lostTotal }, 'audit append failed: this record is not in the audit log (an audit.records-lost record follows once the disk takes writes)')
    }).finally(() => { this.queued-- })
  }

  /** The disk takes writes again: say in the log itself how many records are missing */
  private reportLost (): void {
    if (this.lostTotal === 0) return
    const counts = this.lost
    const total = this.lostTotal
    this.lost = {}
    this.lostTotal = 0
    this.log.append('audit.records-lost', { total, counts }).catch(() => {
      for (const [type, n] of Object.entries(counts)) this.lost[type] = (this.lost[type] ?? 0) + n
      this.lostTotal += total
    })
  }

  /** Await what has been queued, then append directly (decisions the caller waits on) */
  async recordNow (type: string, data: AuditData): Promise<void> {
    await this.log.append(type, data)
  }

  rejectedMessage (event: { peer: string, id?: string, service?: string, code: string, reason: string }): void {
    let entry = this.rejections.get(event.peer)
    if (entry == null) {
      if (this.rejections.size >= 10_000) {
        this.flushSuppressed()
      }
      entry = { count: 0, suppressed: {} }
      this.rejections.set(event.peer, entry)
    }
    entry.count++
    if (entry.count <= REJECTIONS_PER_PEER_PER_SECOND) {
      const data: AuditData = { peer: event.peer, code: event.code }
      for (const [name, value] of [['id', event.id], ['service', event.service], ['reason', event.reason]] as const) {
        if (value === undefined) {
          data[name] = null
          continue
        }
        const clipped = clipField(value)
        data[name] = clipped.value
        if (clipped.sha256 !== undefined) data[`${name}Sha256`] = clipped.sha256
      }
      this.record('message.rejected', data)
    } else {
      entry.suppressed[event.code] = (entry.suppressed[event.code] ?? 0) + 1
    }
  }

  private flushSuppressed (): void {
    for (const [peer, entry] of this.rejections) {
      if (Object.keys(entry.suppressed).length > 0) {
        this.record('message.rejected.suppressed', { peer, counts: entry.suppressed })
      }
    }
    this.rejections.clear()
    if (this.dropped > 0) {
      this.logger?.warn({ dropped: this.dropped }, 'audit queue full; records dropped')
      // and in the log itself: the records are counted, not silently gone
      this.lost['queue-full'] = (this.lost['queue-full'] ?? 0) + this.dropped
      this.lostTotal += this.dropped
      this.dropped = 0
    }
  }

  async close (): Promise<void> {
    clearInterval(this.timer)
    this.flushSuppressed()
    await this.log.close()
  }
}
