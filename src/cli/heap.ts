/**
 * Keeps V8's young generation small unless the node is busy.
 *
 * Start-up: loading the node's modules allocates tens of MiB of objects that
 * live for ever (compiled functions, module namespaces, tables). V8 reads a
 * young generation whose objects survive as a reason to grow it, and doubles
 * it at each such scavenge, up to its maximum (two 16 MiB semi-spaces): an
 * idle node then kept 32 MiB of young generation it never uses, and whether
 * start-up reached 16 or 32 MiB depended on GC timing, so the idle RSS varied
 * by ~16 MiB from start to start. So during start-up the growth factor is 1
 * (no growth).
 *
 * Steady traffic: every request leaves objects that live longer than a
 * scavenge (the reply's nonce stays in the replay cache for the replay window,
 * requests in flight), so V8 grows the young generation again, 4 → 8 → 16 →
 * 32 MiB, one RSS step each; and whenever V8's memory reducer takes the node
 * for idle (a sender at 50 requests/s was, every few minutes) a
 * memory-reducing GC shrinks it back to 4 MiB and the climb starts over. That
 * was the sender's RSS "growing" ~20 MiB in 10 minutes in the soak benchmark
 * (`test/bench/soak.bench.ts`) with a flat heap after GC. A bigger young
 * generation only pays when the main thread is busy (fewer scavenges and
 * fewer short-lived objects promoted), so after start-up the growth factor is
 * V8's default while the event loop's utilisation over the last
 * {@link YOUNG_GENERATION_SAMPLE_MS} is at least
 * {@link YOUNG_GENERATION_BUSY_UTILIZATION}, and 1 otherwise: a lightly
 * loaded node keeps the young generation it has (V8 may still shrink it),
 * a saturated one grows it as before.
 *
 * `--semi-space-growth-factor` is read by V8 each time it considers growing,
 * so changing it at run time takes effect (`test/unit/cli/heap.test.ts` checks
 * that on this Node; `test/bench/startup.bench.ts` shows the idle RSS). A flag
 * given on the command line (`node --semi-space-growth-factor=…`) wins: it is
 * left alone.
 *
 * @module
 */

import { performance } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import type { EventLoopUtilization } from 'node:perf_hooks'

/** V8's default `--semi-space-growth-factor` */
export const V8_SEMI_SPACE_GROWTH_FACTOR = 2
/** Event-loop utilisation (0..1) from which the young generation may grow: half busy, below the crypto pool's offload threshold (0.75), so a node that offloads also grows it */
export const YOUNG_GENERATION_BUSY_UTILIZATION = 0.5
/**
 * The window over which the event loop's utilisation is measured after
 * start-up, ms: long enough that a moment's work (a handshake, compiling hot
 * code) does not count as busy, short against a busy period
 */
export const YOUNG_GENERATION_SAMPLE_MS = 5000

const FLAG = /^--semi[-_]space[-_]growth[-_]factor\b/

/** Whether `--semi-space-growth-factor` was given to Node (then nothing here touches it) */
export function growthFactorGiven (execArgv: readonly string[] = process.execArgv, nodeOptions: string = process.env.NODE_OPTIONS ?? ''): boolean {
  return execArgv.some(a => FLAG.test(a)) || nodeOptions.split(/\s+/).some(a => FLAG.test(a))
}

export interface YoungGenerationGovernorInit {
  /** Sets the V8 flag; default `v8.setFlagsFromString` */
  setFlags?: (flags: string) => void
  /** @default YOUNG_GENERATION_BUSY_UTILIZATION */
  busyUtilization?: number
}

/**
 * Which growth factor V8 gets: 1 while held (start-up) or idle-ish, V8's
 * default while busy. Sets the flag only when the factor changes.
 */
export class YoungGenerationGovernor {
  private readonly setFlags: (flags: string) => void
  private readonly busyUtilization: number
  private current: number | undefined

  constructor (init: YoungGenerationGovernorInit = {}) {
    this.setFlags = init.setFlags ?? setFlagsFromString
    this.busyUtilization = init.busyUtilization ?? YOUNG_GENERATION_BUSY_UTILIZATION
  }

  /** The factor in force (undefined before the first call) */
  get factor (): number | undefined {
    return this.current
  }

  /** No growth, whatever the load */
  hold (): void {
    this.set(1)
  }

  /** Growth follows the main thread's load: utilisation (0..1) over the last sample */
  observe (utilization: number): void {
    this.set(utilization >= this.busyUtilization ? V8_SEMI_SPACE_GROWTH_FACTOR : 1)
  }

  /** V8's default again (the node stops) */
  restore (): void {
    this.set(V8_SEMI_SPACE_GROWTH_FACTOR)
  }

  private set (factor: number): void {
    if (factor === this.current) return
    this.current = factor
    this.setFlags(`--semi-space-growth-factor=${factor}`)
  }
}

export interface YoungGenerationControl {
  /** Start-up is over: from now on the young generation may grow while the node is busy */
  release: () => void
  /** Stop sampling and give V8 its default back */
  stop: () => void
}

/**
 * Hold the young generation until `release()` (start-up), then let it grow
 * only while the event loop is busy; a no-op when the flag was given to Node.
 */
export function holdYoungGeneration (): YoungGenerationControl {
  if (growthFactorGiven()) {
    return { release: () => {}, stop: () => {} }
  }
  const governor = new YoungGenerationGovernor()
  governor.hold()
  let timer: ReturnType<typeof setInterval> | undefined
  let stopped = false
  return {
    release: () => {
      if (timer !== undefined || stopped) return
      let last: EventLoopUtilization = performance.eventLoopUtilization()
      timer = setInterval(() => {
        const now = performance.eventLoopUtilization()
        governor.observe(performance.eventLoopUtilization(now, last).utilization)
        last = now
      }, YOUNG_GENERATION_SAMPLE_MS)
      // sampling must not keep the process alive
      timer.unref()
    },
    stop: () => {
      if (stopped) return
      stopped = true
      clearInterval(timer)
      governor.restore()
    }
  }
}
