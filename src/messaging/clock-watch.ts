/**
 * What peers' timestamps say about this node's clock. Every verified frame
 * (and every frame refused as `StaleMessage`/`FutureMessage`, which is
 * verified before its time is checked) gives one sample: the peer's
 * timestamp minus our clock. One peer's offset may be that peer's clock being
 * wrong; when the median over the peers heard from recently is far off, it is
 * most likely ours, and the node says so in its log (at most once a minute).
 *
 * Samples are the peers' own claims: a single malicious peer can make the
 * warning appear (the log line says how many peers it rests on), never
 * change what the node accepts.
 */
import type { Logger } from 'pino'

/** Peers remembered (the oldest is forgotten first) */
const MAX_PEERS = 256
/** Samples older than this are ignored */
const SAMPLE_TTL_MS = 10 * 60_000
/** At most one warning per this long */
const WARN_INTERVAL_MS = 60_000

export interface ClockWatchInit {
  /** A median offset beyond this (ms, either direction) is logged */
  warnAboveMs: number
  now: () => number
  logger?: Logger
}

export class ClockWatch {
  private readonly samples = new Map<string, { offset: number, at: number }>()
  private readonly init: ClockWatchInit
  private lastWarning = Number.NEGATIVE_INFINITY

  constructor (init: ClockWatchInit) {
    this.init = init
  }

  /** Record `offsetMs` (peer's timestamp − our clock) for `peer` */
  observe (peer: string, offsetMs: number): void {
    const now = this.init.now()
    this.samples.delete(peer)
    this.samples.set(peer, { offset: offsetMs, at: now })
    if (this.samples.size > MAX_PEERS) {
      const oldest = this.samples.keys().next().value
      if (oldest !== undefined) this.samples.delete(oldest)
    }
    if (Math.abs(offsetMs) <= this.init.warnAboveMs || now - this.lastWarning < WARN_INTERVAL_MS) {
      return
    }
    const { median, peers } = this.median(now)
    if (peers === 0 || Math.abs(median) <= this.init.warnAboveMs) {
      return
    }
    this.lastWarning = now
    this.init.logger?.warn({ medianOffsetMs: Math.round(median), peers },
      `peers' timestamps differ from this node's clock by a median of ${formatOffset(median)} over ${peers} peer(s): this node's clock is probably ${median > 0 ? 'behind' : 'ahead'} (check NTP); messages may be refused as StaleMessage/FutureMessage`)
  }

  /** Median offset over the peers heard from recently (ms), and how many */
  median (now = this.init.now()): { median: number, peers: number } {
    const offsets: number[] = []
    for (const { offset, at } of this.samples.values()) {
      if (now - at <= SAMPLE_TTL_MS) offsets.push(offset)
    }
    if (offsets.length === 0) return { median: 0, peers: 0 }
    offsets.sort((a, b) => a - b)
    const mid = offsets.length >> 1
    const median = offsets.length % 2 === 1 ? offsets[mid] as number : ((offsets[mid - 1] as number) + (offsets[mid] as number)) / 2
    return { median, peers: offsets.length }
  }
}

/** `+90.0 s` / `-600.0 s` */
export function formatOffset (ms: number): string {
  return `${ms >= 0 ? '+' : '-'}${(Math.abs(ms) / 1000).toFixed(1)} s`
}
