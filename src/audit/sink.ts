import type { AuditLog } from './log.ts'
import type { AuditData } from './record.ts'
import type { Logger } from 'pino'

/** Rejections recorded one by one per peer per second; the rest are counted */
const REJECTIONS_PER_PEER_PER_SECOND = 10
/** Records waiting for the disk; beyond it records are dropped and counted */
const MAX_QUEUED = 10_000

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
    this.log.append(type, JSON.parse(JSON.stringify(data)) as AuditData).catch((err: Error) => {
      this.logger?.error({ err: err.message, type }, 'audit append failed')
    }).finally(() => { this.queued-- })
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
      this.record('message.rejected', { peer: event.peer, id: event.id ?? null, service: event.service ?? null, code: event.code, reason: event.reason.slice(0, 256) })
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
      this.dropped = 0
    }
  }

  async close (): Promise<void> {
    clearInterval(this.timer)
    this.flushSuppressed()
    await this.log.close()
  }
}
