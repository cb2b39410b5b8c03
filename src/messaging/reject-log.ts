/**
 * The log line of a rejected frame, bounded: peer-chosen fields are cut to a
 * few hundred characters, and each peer gets at most
 * {@link LINES_PER_PEER_PER_SECOND} lines a second (at most
 * {@link LINES_PER_SECOND} in all); the rest are counted and summed up in one
 * line when the next second's first rejection arrives. A flood of rejected
 * frames (each with a 60 KiB service name, say) thus cannot turn into a flood
 * of log: it used to be logged twice each, uncapped.
 */
import type { Logger } from 'pino'

const LINES_PER_PEER_PER_SECOND = 10
const LINES_PER_SECOND = 100
/** Peers counted per second; beyond it they share the overall bound */
const MAX_PEERS = 10_000
/** Longest peer-chosen field logged, characters */
export const MAX_LOGGED_FIELD_CHARS = 128

export interface RejectLogEvent {
  peer: string
  id?: string
  service?: string
  code: string
  reason: string
}

export class RejectLog {
  private readonly logger: Logger | undefined
  private readonly now: () => number
  private second = -1
  private lines = 0
  private readonly perPeer = new Map<string, number>()
  private suppressed = 0
  private suppressedCodes: Record<string, number> = {}

  constructor (logger: Logger | undefined, now: () => number) {
    this.logger = logger
    this.now = now
  }

  log (event: RejectLogEvent): void {
    if (this.logger == null) return
    const second = Math.floor(this.now() / 1000)
    if (second !== this.second) {
      this.summarise()
      this.second = second
      this.lines = 0
      this.perPeer.clear()
    }
    const mine = this.perPeer.get(event.peer) ?? 0
    if (mine >= LINES_PER_PEER_PER_SECOND || this.lines >= LINES_PER_SECOND) {
      this.suppressed++
      this.suppressedCodes[event.code] = (this.suppressedCodes[event.code] ?? 0) + 1
      return
    }
    if (this.perPeer.size < MAX_PEERS || this.perPeer.has(event.peer)) this.perPeer.set(event.peer, mine + 1)
    this.lines++
    this.logger.warn({ peer: event.peer, id: cap(event.id), service: cap(event.service), code: event.code, reason: cap(event.reason, 2 * MAX_LOGGED_FIELD_CHARS) }, 'message rejected')
  }

  /** Log the count of lines left out since the last summary, if any */
  summarise (): void {
    if (this.suppressed === 0) return
    this.logger?.warn({ suppressed: this.suppressed, codes: this.suppressedCodes }, 'message rejections not logged one by one (rate limit)')
    this.suppressed = 0
    this.suppressedCodes = {}
  }
}

function cap (value: string | undefined, max = MAX_LOGGED_FIELD_CHARS): string | undefined {
  if (value === undefined || value.length <= max) return value
  return `${value.slice(0, max)}… (${value.length} chars)`
}
