/**
 * Startup benchmark: how long `agentnet start` takes from spawn to running
 * (listening, IPC socket open), and how much memory it holds once idle, next
 * to a bare libp2p node with the same transports, as ratios.
 *
 * The user's setting: `bin/agentnet.js start` as a real CLI process over the
 * compiled `dist/` (what an installed package runs; the bench builds it first
 * unless `--no-build`; `--source` runs the checkout's TypeScript instead), on a
 * home that already holds an identity (a restart: what every start but the
 * first is). Each agentnet home is created by one unmeasured first start,
 * whose start-up time is printed too.
 *
 * Pairs, each agentnet kind beside the bare libp2p node with its transports
 * (`test/bench/fixtures/bare-libp2p.ts`), run one process at a time,
 * round-robin so that drift on the machine hits all of them alike:
 *
 * - `agentnet`: the default config (TCP and WebRTC-direct listeners, WebRTC
 *   and the circuit-relay transport, DHT, AutoNAT, DCUtR, groups, guard,
 *   trust, audit log, IPC socket) beside `bare-webrtc` (TCP, WebRTC-direct,
 *   WebRTC, circuit relay; Noise, yamux, identify, ping)
 * - `agentnet-tcp`: the same with `nat.webrtc: false` and a TCP listener only
 *   beside `bare-tcp` (TCP and circuit relay)
 *
 * For each: ms from spawn to the ready line on stderr, the CPU time the
 * process used until then (all threads; less moved by other load on the
 * machine than wall time), and VmRSS `--settle-ms` (10 s) after it. Then
 * SIGTERM and wait for the exit.
 *
 * Run: `./node_modules/.bin/node test/bench/startup.bench.ts [--runs N] [--json]`
 * (`--quick`: 2 runs, RSS 2 s after start, well under a minute once dist/ is
 * built; `--settle-ms` changes the RSS delay). Progress goes to stderr; the
 * table (or JSON) to stdout.
 */

import { execFileSync, spawn } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { ChildProcess } from 'node:child_process'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const AGENTNET_BIN = join(ROOT, 'bin', 'agentnet.js')
const BARE_FIXTURE = join(ROOT, 'test', 'bench', 'fixtures', 'bare-libp2p.ts')

const READY_TIMEOUT_MS = 30_000
/** Linux clock ticks per second (USER_HZ), the unit of /proc/<pid>/stat times */
const CLOCK_TICKS = 100
const EXIT_TIMEOUT_MS = 15_000

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string' },
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    'settle-ms': { type: 'string' },
    source: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false }
  }
})
const ENV: NodeJS.ProcessEnv = { ...process.env, AGENTNET_DIST: flags.source ? '0' : '1' }

interface Kind {
  id: string
  label: string
  /** The bare libp2p kind this one is compared with (none for a bare kind) */
  baseline?: string
  /** Creates what the process needs; returns its argv */
  args: () => string[]
  isReady: (line: string) => boolean
}

interface Sample {
  startupMs: number
  /** CPU time (user + system, all threads) the process used until ready: less moved by other load than wall time */
  cpuMs: number
  rssMiB: number
  /** Peak RSS (VmHWM) at the moment of the RSS sample */
  hwmMiB: number
  /** SIGTERM to exit */
  stopMs: number
  exitCode: number | null
  signal: string | null
}

/** Temp folders to remove at the end (homes, the TCP-only config) */
const scratch = new Set<string>()

function agentnetKind (id: string, label: string, baseline: string, home: string, extra: string[]): Kind {
  return {
    id,
    label,
    baseline,
    args: () => [AGENTNET_BIN, 'start', '--home', home, ...extra, '--log-level', 'info', '--log-format', 'json'],
    isReady: line => line.includes('"msg":"agentnet node running"')
  }
}

function bareKind (id: string, label: string, transports: string): Kind {
  return {
    id,
    label,
    args: () => [BARE_FIXTURE, '--transports', transports],
    isReady: line => line.trim() === 'listening'
  }
}

async function makeKinds (): Promise<Kind[]> {
  // short prefix: the IPC socket path inside the home must stay < 100 bytes
  const dir = await mkdtemp(join(tmpdir(), 'anb-'))
  scratch.add(dir)
  const tcpConfig = join(dir, 'tcp-only.json')
  writeFileSync(tcpConfig, JSON.stringify({ nat: { webrtc: false } }))
  return [
    agentnetKind('agentnet', 'agentnet, default config (tcp + webrtc-direct listen)', 'bare-webrtc', join(dir, 'a'),
      ['--listen', '/ip4/127.0.0.1/tcp/0', '--listen', '/ip4/127.0.0.1/udp/0/webrtc-direct']),
    bareKind('bare-webrtc', 'bare libp2p (tcp, webrtc-direct, webrtc, relay)', 'tcp,webrtc-direct,webrtc,relay'),
    agentnetKind('agentnet-tcp', 'agentnet, nat.webrtc off, tcp listen only', 'bare-tcp', join(dir, 't'),
      ['--config', tcpConfig, '--listen', '/ip4/127.0.0.1/tcp/0']),
    bareKind('bare-tcp', 'bare libp2p (tcp, relay)', 'tcp,relay')
  ]
}

let current: ChildProcess | undefined

function log (msg: string): void {
  process.stderr.write(msg + '\n')
}

/** CPU time of a process so far, ms (utime + stime from /proc/<pid>/stat) */
function readCpuMs (pid: number): number {
  // the fields after the command name, which is in parentheses and may hold spaces
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
  return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS
}

async function readStatusKiB (pid: number): Promise<{ rss: number, hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(status)
    if (m?.[1] == null) {
      throw new Error(`no ${name} in /proc/${pid}/status`)
    }
    return Number(m[1])
  }
  return { rss: field('VmRSS'), hwm: field('VmHWM') }
}

function waitExit (child: ChildProcess): Promise<{ code: number | null, signal: string | null }> {
  return new Promise(resolve => {
    if (child.exitCode != null || child.signalCode != null) {
      resolve({ code: child.exitCode, signal: child.signalCode })
      return
    }
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
}

async function runOnce (kind: Kind, settleMs: number): Promise<Sample> {
  const stderrTail: string[] = []
  let cpuAtReady = NaN
  try {
    const started = performance.now()
    const child = spawn(process.execPath, kind.args(), { cwd: ROOT, env: ENV, stdio: ['ignore', 'ignore', 'pipe'] })
    current = child
    const exited = waitExit(child)

    const readyAt = await new Promise<number>((resolve, reject) => {
      let buffered = ''
      let ready = false
      const timer = setTimeout(() => { reject(new Error(`${kind.id}: not listening after ${READY_TIMEOUT_MS} ms`)) }, READY_TIMEOUT_MS)
      child.stderr?.setEncoding('utf8')
      child.stderr?.on('data', (chunk: string) => {
        const now = performance.now()
        buffered += chunk
        let nl: number
        while ((nl = buffered.indexOf('\n')) !== -1) {
          const line = buffered.slice(0, nl)
          buffered = buffered.slice(nl + 1)
          stderrTail.push(line)
          if (stderrTail.length > 20) stderrTail.shift()
          if (!ready && kind.isReady(line)) {
            ready = true
            if (child.pid != null) cpuAtReady = readCpuMs(child.pid)
            clearTimeout(timer)
            resolve(now)
          }
        }
      })
      child.once('error', err => { clearTimeout(timer); reject(err) })
      void exited.then(({ code, signal }) => {
        clearTimeout(timer)
        if (!ready) reject(new Error(`${kind.id} exited (code ${code}, signal ${signal}) before listening:\n${stderrTail.join('\n')}`))
      })
    }).catch(async (err: unknown) => {
      child.kill('SIGKILL')
      await exited
      throw err
    })

    const startupMs = readyAt - started
    if (child.pid == null) throw new Error('no pid')
    const pid = child.pid

    // sample RSS settleMs after the ready line, unless the process dies first
    const earlyExit = await Promise.race([
      new Promise<false>(resolve => setTimeout(() => { resolve(false) }, Math.max(0, readyAt + settleMs - performance.now()))),
      exited.then(() => true as const)
    ])
    if (earlyExit) {
      throw new Error(`${kind.id} exited while idle:\n${stderrTail.join('\n')}`)
    }
    const { rss, hwm } = await readStatusKiB(pid)

    const stopStarted = performance.now()
    child.kill('SIGTERM')
    const killTimer = setTimeout(() => {
      log(`  ${kind.id}: no exit ${EXIT_TIMEOUT_MS} ms after SIGTERM, sending SIGKILL`)
      child.kill('SIGKILL')
    }, EXIT_TIMEOUT_MS)
    const { code, signal } = await exited
    clearTimeout(killTimer)
    const stopMs = performance.now() - stopStarted

    return { startupMs, cpuMs: cpuAtReady, rssMiB: rss / 1024, hwmMiB: hwm / 1024, stopMs, exitCode: code, signal }
  } finally {
    current = undefined
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

interface Summary {
  startupMs: { median: number, min: number, max: number, samples: number[] }
  cpuMs: { median: number }
  rssMiB: { median: number, min: number, max: number, samples: number[] }
  peakRssMiB: { median: number }
  stopMs: { median: number, max: number }
  /** The unmeasured first start on a new home (agentnet kinds) */
  firstStartMs?: number
  uncleanExits: number
}

function summarize (samples: Sample[], firstStartMs: number | undefined): Summary {
  const startup = samples.map(s => s.startupMs)
  const rss = samples.map(s => s.rssMiB)
  const stop = samples.map(s => s.stopMs)
  return {
    startupMs: { median: median(startup), min: Math.min(...startup), max: Math.max(...startup), samples: startup },
    cpuMs: { median: median(samples.map(s => s.cpuMs)) },
    rssMiB: { median: median(rss), min: Math.min(...rss), max: Math.max(...rss), samples: rss },
    peakRssMiB: { median: median(samples.map(s => s.hwmMiB)) },
    stopMs: { median: median(stop), max: Math.max(...stop) },
    firstStartMs,
    uncleanExits: samples.filter(s => s.exitCode !== 0).length
  }
}

function fmt (n: number, digits = 0): string {
  return n.toFixed(digits)
}

/** The ratios the targets are stated in: start-up ≤ 1.5×, idle RSS ≤ 1.25× */
const TARGETS = { startup: 1.5, rss: 1.25 }

function ratios (s: Summary, b: Summary): { startupMedian: number, startupMax: number, rssMedian: number, rssMax: number } {
  return {
    startupMedian: s.startupMs.median / b.startupMs.median,
    startupMax: s.startupMs.max / b.startupMs.median,
    rssMedian: s.rssMiB.median / b.rssMiB.median,
    rssMax: s.rssMiB.max / b.rssMiB.median
  }
}

function table (kinds: Kind[], summaries: Record<string, Summary>, runs: number, settleMs: number): string {
  const pairs = kinds.filter(k => k.baseline != null)
  const header = ['figure', ...pairs.flatMap(k => [k.id, k.baseline!, 'ratio'])]
  const rows: string[][] = []
  const row = (name: string, get: (s: Summary) => number, digits: number, ratio = true): void => {
    rows.push([name, ...pairs.flatMap(k => {
      const a = summaries[k.id]!
      const b = summaries[k.baseline!]!
      return [fmt(get(a), digits), fmt(get(b), digits), ratio ? fmt(get(a) / get(b), 2) : '']
    })])
  }
  row('start → running, median (ms)', s => s.startupMs.median, 0)
  row('start → running, max (ms)', s => s.startupMs.max, 0)
  row('CPU until running, median (ms)', s => s.cpuMs.median, 0)
  row(`RSS +${settleMs / 1000}s, median (MiB)`, s => s.rssMiB.median, 1)
  row(`RSS +${settleMs / 1000}s, max (MiB)`, s => s.rssMiB.max, 1)
  rows.push([`RSS +${settleMs / 1000}s, min..max (MiB)`, ...pairs.flatMap(k => [k.id, k.baseline!].map(id => `${fmt(summaries[id]!.rssMiB.min, 1)}..${fmt(summaries[id]!.rssMiB.max, 1)}`).concat(''))])
  row('peak RSS, median (MiB)', s => s.peakRssMiB.median, 1)
  row('SIGTERM → exit, median (ms)', s => s.stopMs.median, 0, false)
  rows.push(['first start on a new home (ms)', ...pairs.flatMap(k => [fmt(summaries[k.id]!.firstStartMs ?? NaN), '', ''])])
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map(r => r[i]!.length)))
  const line = (r: string[]): string => '| ' + r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ') + ' |'
  const sep = '|' + widths.map((w, i) => i === 0 ? '-'.repeat(w + 1) + '-' : '-'.repeat(w + 1) + ':').join('|') + '|'
  const unclean = Object.entries(summaries).filter(([, s]) => s.uncleanExits > 0).map(([k, s]) => `${k}: ${s.uncleanExits}`)
  const verdicts = pairs.map(k => {
    const r = ratios(summaries[k.id]!, summaries[k.baseline!]!)
    return `${k.id}/${k.baseline!}: start-up ${fmt(r.startupMedian, 2)}× (target ≤ ${TARGETS.startup}×, ${r.startupMedian <= TARGETS.startup ? 'met' : 'NOT met'}), ` +
      `idle RSS ${fmt(r.rssMedian, 2)}× (worst start ${fmt(r.rssMax, 2)}×; target ≤ ${TARGETS.rss}×, ${r.rssMax <= TARGETS.rss ? 'met' : 'NOT met'})`
  })
  return [
    `startup benchmark: ${runs} restarts each, ${flags.source ? 'checkout sources (type stripping)' : 'package (bin/agentnet.js + dist/)'}, Node ${process.version}, one process at a time`,
    ...kinds.map(k => `  ${k.id}: ${k.label}`),
    line(header),
    sep,
    ...rows.map(line),
    ...verdicts,
    unclean.length > 0 ? `non-zero exits after SIGTERM: ${unclean.join(', ')}` : 'all processes exited 0 after SIGTERM'
  ].join('\n')
}

async function main (): Promise<void> {
  const runs = Number(flags.runs ?? (flags.quick ? 2 : 5))
  const settleMs = Number(flags['settle-ms'] ?? (flags.quick ? 2000 : 10_000))
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer')
  if (!Number.isFinite(settleMs) || settleMs < 0) throw new Error('--settle-ms must be a non-negative number')

  if (!flags.source && !flags['no-build']) {
    log('building dist/ (npm run build)')
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  }
  const kinds = await makeKinds()
  const benchStarted = performance.now()
  // one unmeasured start of each kind: creates the agentnet homes (identity,
  // peer store, keychain) and warms the file cache and the compile cache
  const firstStart: Record<string, number> = {}
  for (const kind of kinds) {
    log(`first start ${kind.id}`)
    firstStart[kind.id] = (await runOnce(kind, 0)).startupMs
  }
  const samples: Record<string, Sample[]> = Object.fromEntries(kinds.map(k => [k.id, []]))
  for (let i = 0; i < runs; i++) {
    for (const kind of kinds) {
      const s = await runOnce(kind, settleMs)
      samples[kind.id]!.push(s)
      log(`run ${i + 1}/${runs} ${kind.id.padEnd(12)} startup ${fmt(s.startupMs).padStart(5)} ms  cpu ${fmt(s.cpuMs).padStart(5)} ms  rss ${fmt(s.rssMiB, 1).padStart(6)} MiB  stop ${fmt(s.stopMs).padStart(4)} ms  exit ${s.exitCode ?? s.signal}`)
    }
  }
  const summaries: Record<string, Summary> = Object.fromEntries(kinds.map(k => [k.id, summarize(samples[k.id]!, k.baseline != null ? firstStart[k.id] : undefined)]))
  const totalS = (performance.now() - benchStarted) / 1000

  if (flags.json === true) {
    process.stdout.write(JSON.stringify({
      node: process.version,
      mode: flags.source ? 'source' : 'dist',
      runs,
      settleMs,
      totalSeconds: totalS,
      targets: TARGETS,
      kinds: Object.fromEntries(kinds.map(k => [k.id, { label: k.label, ...summaries[k.id]! }])),
      ratios: Object.fromEntries(kinds.filter(k => k.baseline != null).map(k => [`${k.id}/${k.baseline!}`, ratios(summaries[k.id]!, summaries[k.baseline!]!)]))
    }, null, 2) + '\n')
  } else {
    process.stdout.write(table(kinds, summaries, runs, settleMs) + '\n')
    process.stdout.write(`total ${fmt(totalS, 1)} s\n`)
  }
}

function abandon (): void {
  current?.kill('SIGKILL')
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true })
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    abandon()
    process.exit(130)
  })
}

try {
  await main()
  abandon()
} catch (err) {
  abandon()
  process.stderr.write(`startup bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
}
