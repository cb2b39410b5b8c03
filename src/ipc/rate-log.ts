import type { Logger } from 'pino'

/**
 * At most one log line per key and interval; the next line after a quiet
 * spell says how many were suppressed. A flood of refused clients or
 * refused messages must not become a flood of log lines.
 */
export class RateLimitedLog {
  private readonly intervalMs: number
  private readonly last = new Map<string, { at: number, suppressed: number }>()

  constructor (intervalMs = 10_000) {
    this.intervalMs = intervalMs
  }

  warn (logger: Logger | undefined, key: string, fields: Record<string, unknown>, message: string): void {
    if (logger == null) return
    const now = Date.now()
    const entry = this.last.get(key)
    if (entry != null && now - entry.at < this.intervalMs) {
      entry.suppressed++
      return
    }
    if (this.last.size > 1000) this.last.clear()
    this.last.set(key, { at: now, suppressed: 0 })
    logger.warn({ ...fields, ...(entry != null && entry.suppressed > 0 ? { suppressed: entry.suppressed } : {}) }, message)
  }
}
