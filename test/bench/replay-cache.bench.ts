/**
 * Replay-cache benchmark: memory and speed of `ReplayCache` holding a million
 * nonces, next to a plain `Set<string>` of the same nonce strings measured in
 * the same run.
 *
 * Each scenario runs in its own child process (`node --expose-gc`, this same
 * script with `--scenario <id>`) so that one scenario's garbage never counts
 * against the next. Memory is `process.memoryUsage().heapUsed` after two
 * `gc()` calls, before and after filling the structure; the nonces are
 * generated up front into one Buffer (off the V8 heap), so the heap delta is
 * what the structure itself holds: the 16-char latin1 nonce strings (the form
 * `ReplayCache` keys nonces by) plus its own maps, arrays and numbers.
 *
 * Scenarios (nonces are 16 random bytes, as `sealEnvelope` makes them; peer
 * keys are 52-character peer-ID-like strings; timestamps all inside the 60 s
 * window, `now` fixed):
 * - `set`: baseline, 1,000,000 strings added to a `Set<string>`
 * - `many-peers`: default cache, 1,000 peers × 1,000 nonces, round-robin
 *   (1,000,000 = the default `maxTotal`, so it all fits)
 * - `one-peer`: default cache, one peer offering 1,000,000 nonces with rising
 *   timestamps: `maxPerPeer` (100,000) caps what is kept
 * - `one-peer-uncapped`: the same with `maxPerPeer: 1_000_000`, i.e. one
 *   peer holding 1,000,000
 * - `over-total`: default cache, 2,000 peers × 1,000 nonces round-robin with
 *   rising timestamps: `maxTotal` caps what is kept
 *
 * Each reports heap bytes per stored entry (and ÷ the `Set` baseline),
 * `checkAndRecord` calls/s while filling (versus `Set.add` of the same
 * strings), rejected-replay calls/s (an already-stored nonce offered again,
 * which throws `ReplayError`, versus `Set.has`), and for the full ones the
 * `snapshot()` size and time and `ReplayCache.restore()` time and heap.
 *
 * The fill rows also show how many cores other processes used meanwhile: on
 * a shared 2-core machine a rate taken while that is well above 0 is low.
 *
 * Run: `./node_modules/.bin/node test/bench/replay-cache.bench.ts [--json]`
 * (`--only <id,id>` runs some scenarios). Progress goes to stderr; the table
 * (or JSON) to stdout. Run no other benchmark at the same time.
 */

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ReplayCache } from '../../src/protocol/index.ts'
import type { ReplayCacheInit } from '../../src/protocol/index.ts'

const SELF = fileURLToPath(import.meta.url)
const NONCE_BYTES = 16
const WINDOW_MS = 60_000
const REPLAYS = 100_000

interface ScenarioResult {
  id: string
  label: string
  /** nonces offered to checkAndRecord (or added to the Set) */
  offered: number
  /** nonces held at the end (`size` for the cache) */
  stored: number
  peers: number
  /** offers refused with ReplayError while filling */
  refused: number
  heapBeforeMiB: number
  heapAfterMiB: number
  bytesPerEntry: number
  rssAfterMiB: number
  fillSeconds: number
  /** cores other processes used while filling (machine busy − ours) ÷ wall time */
  otherCores: number
  opsPerSec: number
  replayOpsPerSec: number
  /** watermark of one peer relative to the first timestamp, ms (0 = none) */
  watermarkMs?: number
  snapshot?: {
    bytes: number
    bytesPerEntry: number
    snapshotMs: number
    restoreMs: number
    restoredSize: number
    restoredHeapMiB: number
    restoredBytesPerEntry: number
  }
}

function log (msg: string): void {
  process.stderr.write(msg + '\n')
}

// ---------------------------------------------------------------- child side

/** Machine-wide busy CPU seconds so far, from /proc/stat */
function machineCpuSeconds (): number {
  const stat = readFileSync('/proc/stat', 'utf8')
  const cpu = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number)
  return ((cpu[0] ?? 0) + (cpu[1] ?? 0) + (cpu[2] ?? 0) + (cpu[5] ?? 0) + (cpu[6] ?? 0) + (cpu[7] ?? 0)) / 100
}

/** Measures how much CPU other processes took during a phase */
function otherLoad (): () => number {
  const m0 = machineCpuSeconds()
  const u0 = process.cpuUsage()
  const t0 = performance.now()
  return () => {
    const u = process.cpuUsage(u0)
    const own = (u.user + u.system) / 1e6
    return Math.max(0, machineCpuSeconds() - m0 - own) / ((performance.now() - t0) / 1000)
  }
}

const gc = (globalThis as { gc?: () => void }).gc

function settledHeap (): number {
  gc!()
  gc!()
  return process.memoryUsage().heapUsed
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

function fakePeerIds (n: number): string[] {
  const out: string[] = []
  const rnd = randomBytes(n * 44)
  for (let i = 0; i < n; i++) {
    let s = '12D3KooW'
    for (let j = 0; j < 44; j++) s += B58[rnd[i * 44 + j]! % 58]
    out.push(s)
  }
  return out
}

interface FillPlan {
  peers: number
  perPeer: number
  init: ReplayCacheInit
  /** ms added to the timestamp per round (a round offers one nonce per peer) */
  msPerRound: number
  /** a round's worth of peers share one timestamp step; with one peer, `roundsPerMs` offers share one ms */
  roundsPerMs?: number
}

function runCache (id: string, label: string, plan: FillPlan, withSnapshot: boolean): ScenarioResult {
  const total = plan.peers * plan.perPeer
  const nonces = randomBytes(total * NONCE_BYTES)
  const peers = fakePeerIds(plan.peers)
  const t0 = Date.now() - WINDOW_MS / 2
  const span = Math.ceil(plan.perPeer / (plan.roundsPerMs ?? 1)) * plan.msPerRound
  if (span >= WINDOW_MS / 2) throw new Error(`${id}: timestamps span ${span} ms, more than the window allows`)
  const now = t0 + span
  const tsOf = (round: number): number => t0 + 1 + Math.floor(round / (plan.roundsPerMs ?? 1)) * plan.msPerRound

  const heap0 = settledHeap()
  let cache: ReplayCache | undefined = new ReplayCache(plan.init)
  let refused = 0
  const other = otherLoad()
  const fillStart = performance.now()
  let i = 0
  for (let round = 0; round < plan.perPeer; round++) {
    const ts = tsOf(round)
    for (let p = 0; p < plan.peers; p++, i++) {
      const off = i * NONCE_BYTES
      try {
        cache.checkAndRecord(peers[p]!, nonces.subarray(off, off + NONCE_BYTES), ts, now)
      } catch (err) {
        if ((err as { code?: string }).code !== 'Replay') throw err
        refused++
      }
    }
  }
  const fillSeconds = (performance.now() - fillStart) / 1000
  const otherCores = other()
  const stored = cache.size
  const heap1 = settledHeap()
  const rss = process.memoryUsage().rss

  // replays: the most recently offered nonces are certainly still stored
  const replays = Math.min(REPLAYS, stored)
  const replayStart = performance.now()
  let rejected = 0
  const lastRound = plan.perPeer - 1
  for (let r = 0; r < replays; r++) {
    const k = total - 1 - r
    const off = k * NONCE_BYTES
    try {
      cache.checkAndRecord(peers[k % plan.peers]!, nonces.subarray(off, off + NONCE_BYTES), tsOf(lastRound), now)
    } catch {
      rejected++
    }
  }
  const replayOpsPerSec = replays / ((performance.now() - replayStart) / 1000)
  if (rejected !== replays) throw new Error(`${id}: ${replays - rejected} replays were accepted`)

  const result: ScenarioResult = {
    id,
    label,
    offered: total,
    stored,
    peers: cache.peerCount,
    refused,
    heapBeforeMiB: heap0 / 2 ** 20,
    heapAfterMiB: heap1 / 2 ** 20,
    bytesPerEntry: (heap1 - heap0) / stored,
    rssAfterMiB: rss / 2 ** 20,
    fillSeconds,
    otherCores,
    opsPerSec: total / fillSeconds,
    replayOpsPerSec,
    watermarkMs: Math.max(0, cache.watermarkFor(peers[0]!) - t0)
  }

  if (withSnapshot) {
    const s0 = performance.now()
    const snap = cache.snapshot()
    const snapshotMs = performance.now() - s0
    cache = undefined
    const heapSnapOnly = settledHeap()
    const r0 = performance.now()
    const restored = ReplayCache.restore(snap, { ...plan.init, now })
    const restoreMs = performance.now() - r0
    const heapRestored = settledHeap()
    result.snapshot = {
      bytes: snap.byteLength,
      bytesPerEntry: snap.byteLength / stored,
      snapshotMs,
      restoreMs,
      restoredSize: restored.size,
      restoredHeapMiB: heapRestored / 2 ** 20,
      restoredBytesPerEntry: (heapRestored - heapSnapOnly) / Math.max(1, restored.size)
    }
  }
  return result
}

function runSet (n: number): ScenarioResult {
  const nonces = randomBytes(n * NONCE_BYTES)
  const heap0 = settledHeap()
  const set = new Set<string>()
  const other = otherLoad()
  const fillStart = performance.now()
  for (let i = 0; i < n; i++) {
    const off = i * NONCE_BYTES
    set.add(nonces.toString('latin1', off, off + NONCE_BYTES))
  }
  const fillSeconds = (performance.now() - fillStart) / 1000
  const otherCores = other()
  const heap1 = settledHeap()
  const rss = process.memoryUsage().rss
  const replays = Math.min(REPLAYS, n)
  const replayStart = performance.now()
  let found = 0
  for (let r = 0; r < replays; r++) {
    const off = (n - 1 - r) * NONCE_BYTES
    if (set.has(nonces.toString('latin1', off, off + NONCE_BYTES))) found++
  }
  const replayOpsPerSec = replays / ((performance.now() - replayStart) / 1000)
  if (found !== replays || set.size !== n) throw new Error('Set baseline lost entries')
  return {
    id: 'set',
    label: 'baseline: Set<string>, 1,000,000 nonce strings',
    offered: n,
    stored: set.size,
    peers: 1,
    refused: 0,
    heapBeforeMiB: heap0 / 2 ** 20,
    heapAfterMiB: heap1 / 2 ** 20,
    bytesPerEntry: (heap1 - heap0) / n,
    rssAfterMiB: rss / 2 ** 20,
    fillSeconds,
    otherCores,
    opsPerSec: n / fillSeconds,
    replayOpsPerSec
  }
}

const SCENARIOS: Record<string, () => ScenarioResult> = {
  set: () => runSet(1_000_000),
  'many-peers': () => runCache('many-peers', 'ReplayCache, 1,000 peers × 1,000 nonces', { peers: 1000, perPeer: 1000, init: {}, msPerRound: 1 }, true),
  'one-peer': () => runCache('one-peer', 'ReplayCache, 1 peer × 1,000,000 offered (maxPerPeer 100,000)', { peers: 1, perPeer: 1_000_000, init: {}, msPerRound: 1, roundsPerMs: 40 }, false),
  'one-peer-uncapped': () => runCache('one-peer-uncapped', 'ReplayCache, 1 peer × 1,000,000 (maxPerPeer 1,000,000)', { peers: 1, perPeer: 1_000_000, init: { maxPerPeer: 1_000_000 }, msPerRound: 1, roundsPerMs: 40 }, true),
  'over-total': () => runCache('over-total', 'ReplayCache, 2,000 peers × 1,000 offered (maxTotal 1,000,000)', { peers: 2000, perPeer: 1000, init: {}, msPerRound: 20 }, false)
}

// ---------------------------------------------------------------- parent side

function runChild (id: string): Promise<ScenarioResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', SELF, '--scenario', id], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (chunk: string) => { out += chunk })
    child.once('error', reject)
    child.once('exit', code => {
      if (code !== 0) {
        reject(new Error(`scenario ${id} exited with ${code}`))
        return
      }
      try {
        resolve(JSON.parse(out) as ScenarioResult)
      } catch (err) {
        reject(new Error(`scenario ${id} printed no result: ${String(err)}\n${out}`))
      }
    })
  })
}

function fmt (n: number | undefined, digits = 0): string {
  return n == null || Number.isNaN(n) ? '—' : n.toFixed(digits)
}

function renderTable (header: string[], rows: string[][]): string {
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => '| ' + r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ') + ' |'
  const sep = '|' + widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|') + '|'
  return [line(header), sep, ...rows.map(line)].join('\n')
}

function render (results: ScenarioResult[], totalSeconds: number): string {
  const base = results.find(r => r.id === 'set')
  const ratio = (x: number, b: number | undefined): string => b == null ? '—' : `${fmt(x / b, 2)}×`
  const cols = results
  const rows: string[][] = [
    ['nonces offered', ...cols.map(r => String(r.offered))],
    ['entries kept (size)', ...cols.map(r => String(r.stored))],
    ['peers held', ...cols.map(r => r.id === 'set' ? '—' : String(r.peers))],
    ['offers refused as replays while filling', ...cols.map(r => r.id === 'set' ? '—' : String(r.refused))],
    ['peer watermark above first timestamp (ms)', ...cols.map(r => r.id === 'set' ? '—' : fmt(r.watermarkMs))],
    ['heapUsed before (MiB)', ...cols.map(r => fmt(r.heapBeforeMiB, 1))],
    ['heapUsed after (MiB)', ...cols.map(r => fmt(r.heapAfterMiB, 1))],
    ['heap bytes per kept entry', ...cols.map(r => fmt(r.bytesPerEntry, 1))],
    ['  ÷ Set baseline', ...cols.map(r => ratio(r.bytesPerEntry, base?.bytesPerEntry))],
    ['RSS after (MiB)', ...cols.map(r => fmt(r.rssAfterMiB, 0))],
    ['fill: checkAndRecord (or Set.add) calls/s', ...cols.map(r => fmt(r.opsPerSec))],
    ['  ÷ Set baseline', ...cols.map(r => ratio(r.opsPerSec, base?.opsPerSec))],
    ['  other processes\' CPU while filling (cores)', ...cols.map(r => fmt(r.otherCores, 2))],
    ['replay rejected (or Set.has) calls/s', ...cols.map(r => fmt(r.replayOpsPerSec))],
    ['  ÷ Set baseline', ...cols.map(r => ratio(r.replayOpsPerSec, base?.replayOpsPerSec))],
    ['snapshot() size (MiB)', ...cols.map(r => r.snapshot == null ? '—' : fmt(r.snapshot.bytes / 2 ** 20, 1))],
    ['snapshot bytes per entry', ...cols.map(r => r.snapshot == null ? '—' : fmt(r.snapshot.bytesPerEntry, 1))],
    ['snapshot() time (ms)', ...cols.map(r => r.snapshot == null ? '—' : fmt(r.snapshot.snapshotMs))],
    ['restore() time (ms)', ...cols.map(r => r.snapshot == null ? '—' : fmt(r.snapshot.restoreMs))],
    ['restored size', ...cols.map(r => r.snapshot == null ? '—' : String(r.snapshot.restoredSize))],
    ['restored cache heap bytes per entry', ...cols.map(r => r.snapshot == null ? '—' : fmt(r.snapshot.restoredBytesPerEntry, 1))]
  ]
  return [
    `replay-cache benchmark, Node ${process.version}; each column in its own process (--expose-gc), 16-byte nonces, heap deltas after gc()`,
    renderTable(['figure', ...cols.map(r => r.id)], rows),
    '',
    ...cols.map(r => `${r.id}: ${r.label}`),
    '',
    `total ${fmt(totalSeconds, 1)} s`
  ].join('\n')
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      only: { type: 'string' },
      scenario: { type: 'string' }
    }
  })
  if (values.scenario != null) {
    const run = SCENARIOS[values.scenario]
    if (run == null) throw new Error(`unknown scenario ${values.scenario}`)
    if (gc == null) throw new Error('run with --expose-gc')
    process.stdout.write(JSON.stringify(run()) + '\n')
    return
  }
  const ids = values.only != null ? values.only.split(',') : Object.keys(SCENARIOS)
  for (const id of ids) {
    if (SCENARIOS[id] == null) throw new Error(`unknown scenario ${id}; known: ${Object.keys(SCENARIOS).join(', ')}`)
  }
  const t0 = performance.now()
  const results: ScenarioResult[] = []
  for (const id of ids) {
    log(`scenario ${id}`)
    const r = await runChild(id)
    log(`  kept ${r.stored}, ${fmt(r.bytesPerEntry, 1)} B/entry, ${fmt(r.opsPerSec)} calls/s${r.snapshot != null ? `, snapshot ${fmt(r.snapshot.snapshotMs)} ms, restore ${fmt(r.snapshot.restoreMs)} ms` : ''}`)
    results.push(r)
  }
  const totalSeconds = (performance.now() - t0) / 1000
  if (values.json === true) {
    process.stdout.write(JSON.stringify({ node: process.version, totalSeconds, scenarios: results }, null, 2) + '\n')
  } else {
    process.stdout.write(render(results, totalSeconds) + '\n')
  }
}

try {
  await main()
} catch (err) {
  process.stderr.write(`replay-cache bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
}
