/**
 * The posture review of a running node, for its metrics, its dashboard and
 * `node.posture`: the same collector, checks and baseline drift as `agentnet
 * doctor`, run in the node's own process (live data read from its services,
 * not over its socket), at most once per {@link POSTURE_MAX_AGE_MS}, and
 * cached. Readers never wait for a review longer than they ask to.
 *
 * @module
 */

import { POSTURE_MAX_AGE_MS } from './constants.ts'
import type { Config } from '../config/index.ts'
import type { LiveData, Severity } from './types.ts'

/** The finding counts of one review */
export interface PostureCounts {
  /** findings by severity, drift findings included */
  findings: Record<Severity, number>
  /** `drift.*` findings: differences from the signed baseline */
  drift: number
  /** the baseline's state: `none`, `intact` or `tampered` */
  baseline: 'none' | 'intact' | 'tampered'
  /** ms since the epoch when the review ran */
  checkedAt: number
  /** the review failed (the counts are then zero) */
  error?: string
}

export interface PostureMonitorInit {
  home: string
  config: Config
  /** the running node's live data (addresses, relay reservations, rejections) */
  live: () => LiveData
  /** @default POSTURE_MAX_AGE_MS (5 minutes) */
  maxAgeMs?: number
  /** @default Date.now */
  now?: () => number
}

/** Runs the review when asked and the last one is older than `maxAgeMs`; one review at a time */
export class PostureMonitor {
  private readonly init: PostureMonitorInit
  private last: PostureCounts | undefined
  private running: Promise<PostureCounts> | undefined

  constructor (init: PostureMonitorInit) {
    this.init = init
  }

  /** The last review's counts, without starting one */
  latest (): PostureCounts | undefined {
    return this.last
  }

  /**
   * The counts: the cached ones while fresh; otherwise a review is started
   * (unless one runs) and awaited for at most `waitMs`, after which the
   * previous counts (or undefined before the first review) are returned
   */
  async current (waitMs = 0): Promise<PostureCounts | undefined> {
    const now = (this.init.now ?? Date.now)()
    if (this.last !== undefined && now - this.last.checkedAt < (this.init.maxAgeMs ?? POSTURE_MAX_AGE_MS)) return this.last
    const review = this.refresh()
    if (waitMs <= 0) return this.last
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, waitMs) })
    try {
      return await Promise.race([review, timeout]) ?? this.last
    } finally {
      clearTimeout(timer)
    }
  }

  /** Start a review now unless one runs; resolves to its counts */
  async refresh (): Promise<PostureCounts> {
    this.running ??= this.review().finally(() => { this.running = undefined })
    return this.running
  }

  private async review (): Promise<PostureCounts> {
    const checkedAt = (this.init.now ?? Date.now)()
    const findings: Record<Severity, number> = { high: 0, medium: 0, low: 0, info: 0 }
    let counts: PostureCounts
    try {
      // loaded on first use: a node whose posture nobody asks for never loads the review
      const { collectSnapshot } = await import('./collect.ts')
      const { reviewPosture } = await import('./checks.ts')
      const { baselineFindings, peerIdOfHome } = await import('./doctor.ts')
      const snapshot = { ...await collectSnapshot({ home: this.init.home, config: this.init.config, live: false, now: checkedAt }), live: this.init.live() }
      const base = await baselineFindings(snapshot, await peerIdOfHome(this.init.home))
      const all = [...reviewPosture(snapshot), ...base.findings]
      for (const f of all) findings[f.severity]++
      counts = { findings, drift: all.filter(f => f.id.startsWith('drift.')).length, baseline: base.status, checkedAt }
    } catch (err) {
      counts = { findings, drift: 0, baseline: 'none', checkedAt, error: (err as Error).message }
    }
    this.last = counts
    return counts
  }
}
