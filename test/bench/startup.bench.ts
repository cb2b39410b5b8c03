/**
 * Startup benchmark: how long an agentnet node takes from spawn to listening,
 * and how much memory it holds once idle, next to a bare libp2p node with the
 * same core stack (TCP, Noise, yamux, identify, ping).
 *
 * Three kinds of process, each started the same way (`spawn(process.execPath,
 * [script, ...args])`), one at a time, round-robin so that drift on the
 * machine hits all of them alike:
 *
 * - `agentnet`: `bin/agentnet.js start` with TCP + WebRTC-direct listen
 *   addresses (the default transport set) and the IPC socket
 * - `agentnet-tcp`: the same with only the TCP listen address
 * - `bare`: `test/bench/fixtures/bare-libp2p.ts`
 *
 * For each: ms from spawn to the "listening" line on stderr, and VmRSS 10 s
 * after that line. Then SIGTERM and wait for the exit.
 *
 * Run: `./node_modules/.bin/node test/bench/startup.bench.ts [--runs N] [--json]`
 * (`--settle-ms` changes the 10 s RSS delay, `--no-warmup` skips the one
 * unmeasured start of each kind that first warms the file cache).
 * Progress goes to stderr; the table (or JSON) to stdout.
 */

import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import type { ChildProcess } from 'node:child_process'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const AGENTNET_BIN = join(ROOT, 'bin', 'agentnet.js')
const BARE_FIXTURE = join(ROOT, 'test', 'bench', 'fixtures', 'bare-libp2p.ts')

const READY_TIMEOUT_MS = 30_000
const EXIT_TIMEOUT_MS = 15_000

interface Kind {
  id: string
  label: string
  /** Creates what the process needs; returns its argv and a cleanup */
  prepare: () => Promise<{ args: string[], cleanup: () => Promise<void> }>
  isReady: (line: string) => boolean
}

interface Sample {
  startupMs: number
  rssMiB: number
  /** Peak RSS (VmHWM) at the moment of the RSS sample */
  hwmMiB: number
  /** SIGTERM to exit */
  stopMs: number
  exitCode: number | null
  signal: string | null
}

function agentnetKind (id: string, label: string, listen: string[]): Kind {
  return {
    id,
    label,
    prepare: async () => {
      // short prefix: the IPC socket path inside the home must stay < 100 bytes
      const home = await mkdtemp(join(tmpdir(), 'anb-'))
      liveHomes.add(home)
      return {
        args: [AGENTNET_BIN, 'start', '--home', home, ...listen.flatMap(a => ['--listen', a]), '--log-level', 'info'],
        cleanup: async () => {
          await rm(home, { recursive: true, force: true })
          liveHomes.delete(home)
        }
      }
    },
    isReady: line => line.includes('"msg":"agentnet node running"')
  }
}

const KINDS: Kind[] = [
  agentnetKind('agentnet', 'agentnet (tcp+webrtc-direct)', ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/webrtc-direct']),
  agentnetKind('agentnet-tcp', 'agentnet (tcp only)', ['/ip4/127.0.0.1/tcp/0']),
  {
    id: 'bare',
    label: 'bare libp2p (tcp)',
    prepare: async () => ({ args: [BARE_FIXTURE], cleanup: async () => {} }),
    isReady: line => line.trim() === 'listening'
  }
]

let current: ChildProcess | undefined
/** Temp homes not yet removed, for an interrupted run */
const liveHomes = new Set<string>()

function log (msg: string): void {
  process.stderr.write(msg + '\n')
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
  const { args, cleanup } = await kind.prepare()
  const stderrTail: string[] = []
  try {
    const started = performance.now()
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
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

    // sample RSS settleMs after the listening line, unless the process dies first
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
    current = undefined

    return { startupMs, rssMiB: rss / 1024, hwmMiB: hwm / 1024, stopMs, exitCode: code, signal }
  } finally {
    current = undefined
    await cleanup()
  }
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

interface Summary {
  startupMs: { median: number, min: number, max: number, samples: number[] }
  rssMiB: { median: number, min: number, max: number, samples: number[] }
  peakRssMiB: { median: number }
  stopMs: { median: number, max: number }
  uncleanExits: number
}

function summarize (samples: Sample[]): Summary {
  const startup = samples.map(s => s.startupMs)
  const rss = samples.map(s => s.rssMiB)
  const stop = samples.map(s => s.stopMs)
  return {
    startupMs: { median: median(startup), min: Math.min(...startup), max: Math.max(...startup), samples: startup },
    rssMiB: { median: median(rss), min: Math.min(...rss), max: Math.max(...rss), samples: rss },
    peakRssMiB: { median: median(samples.map(s => s.hwmMiB)) },
    stopMs: { median: median(stop), max: Math.max(...stop) },
    uncleanExits: samples.filter(s => s.exitCode !== 0).length
  }
}

function fmt (n: number, digits = 0): string {
  return n.toFixed(digits)
}

function table (summaries: Record<string, Summary>, runs: number, settleMs: number): string {
  const a = summaries.agentnet!
  const t = summaries['agentnet-tcp']!
  const b = summaries.bare!
  const rows: Array<[string, (s: Summary) => number, number]> = [
    ['startup median (ms)', s => s.startupMs.median, 0],
    ['startup min (ms)', s => s.startupMs.min, 0],
    ['startup max (ms)', s => s.startupMs.max, 0],
    [`RSS +${settleMs / 1000}s median (MiB)`, s => s.rssMiB.median, 1],
    [`RSS +${settleMs / 1000}s min..max (MiB)`, s => s.rssMiB.min, 1],
    ['peak RSS median (MiB)', s => s.peakRssMiB.median, 1],
    ['SIGTERM→exit median (ms)', s => s.stopMs.median, 0]
  ]
  const header = ['figure', 'agentnet tcp+webrtc', 'agentnet tcp', 'bare libp2p', 'ratio tcp+webrtc/bare', 'ratio tcp/bare']
  const body = rows.map(([name, get, digits]) => {
    if (name.includes('min..max')) {
      const range = (s: Summary): string => `${fmt(s.rssMiB.min, 1)}..${fmt(s.rssMiB.max, 1)}`
      return [name, range(a), range(t), range(b), '', '']
    }
    return [name, fmt(get(a), digits), fmt(get(t), digits), fmt(get(b), digits), fmt(get(a) / get(b), 2), fmt(get(t) / get(b), 2)]
  })
  const all = [header, ...body]
  const widths = header.map((_, i) => Math.max(...all.map(r => r[i]!.length)))
  const line = (r: string[]): string => '| ' + r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ') + ' |'
  const sep = '|' + widths.map((w, i) => i === 0 ? '-'.repeat(w + 1) + '-' : '-'.repeat(w + 1) + ':').join('|') + '|'
  const unclean = Object.entries(summaries).filter(([, s]) => s.uncleanExits > 0).map(([k, s]) => `${k}: ${s.uncleanExits}`)
  return [
    `startup benchmark: ${runs} runs each, Node ${process.version}, one process at a time`,
    line(header),
    sep,
    ...body.map(line),
    unclean.length > 0 ? `non-zero exits after SIGTERM: ${unclean.join(', ')}` : 'all processes exited 0 after SIGTERM'
  ].join('\n')
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
      'settle-ms': { type: 'string', default: '10000' },
      'no-warmup': { type: 'boolean', default: false }
    }
  })
  const runs = Number(values.runs)
  const settleMs = Number(values['settle-ms'])
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer')
  if (!Number.isFinite(settleMs) || settleMs < 0) throw new Error('--settle-ms must be a non-negative number')

  const benchStarted = performance.now()
  if (values['no-warmup'] !== true) {
    for (const kind of KINDS) {
      log(`warm-up ${kind.id}`)
      await runOnce(kind, 0)
    }
  }
  const samples: Record<string, Sample[]> = Object.fromEntries(KINDS.map(k => [k.id, []]))
  for (let i = 0; i < runs; i++) {
    for (const kind of KINDS) {
      const s = await runOnce(kind, settleMs)
      samples[kind.id]!.push(s)
      log(`run ${i + 1}/${runs} ${kind.id.padEnd(12)} startup ${fmt(s.startupMs).padStart(5)} ms  rss ${fmt(s.rssMiB, 1).padStart(6)} MiB  stop ${fmt(s.stopMs).padStart(4)} ms  exit ${s.exitCode ?? s.signal}`)
    }
  }
  const summaries: Record<string, Summary> = Object.fromEntries(KINDS.map(k => [k.id, summarize(samples[k.id]!)]))
  const totalS = (performance.now() - benchStarted) / 1000

  if (values.json === true) {
    const ratio = (k: string): { startupMedian: number, rssMedian: number } => ({
      startupMedian: summaries[k]!.startupMs.median / summaries.bare!.startupMs.median,
      rssMedian: summaries[k]!.rssMiB.median / summaries.bare!.rssMiB.median
    })
    process.stdout.write(JSON.stringify({
      node: process.version,
      runs,
      settleMs,
      totalSeconds: totalS,
      kinds: Object.fromEntries(KINDS.map(k => [k.id, { label: k.label, ...summaries[k.id]! }])),
      ratios: { 'agentnet/bare': ratio('agentnet'), 'agentnet-tcp/bare': ratio('agentnet-tcp') }
    }, null, 2) + '\n')
  } else {
    process.stdout.write(table(summaries, runs, settleMs) + '\n')
    process.stdout.write(`total ${fmt(totalS, 1)} s\n`)
  }
}

function abandon (): void {
  current?.kill('SIGKILL')
  for (const home of liveHomes) rmSync(home, { recursive: true, force: true })
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    abandon()
    process.exit(130)
  })
}

try {
  await main()
} catch (err) {
  abandon()
  process.stderr.write(`startup bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
}
