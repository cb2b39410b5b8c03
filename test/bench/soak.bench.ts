/**
 * Soak benchmark: memory of two nodes in steady traffic, in the user's
 * setting. Three `agentnet start` processes on 127.0.0.1: A and B (B trusts
 * A), and C, an idle node started the same way (the same-run baseline: what
 * a node's RSS does with no traffic at all). An agent on A sends requests
 * through A's IPC socket (`msg.send`) at `--rate` per second to the `echo`
 * service that an agent on B serves through B's socket (`msg.received` →
 * `msg.reply`). Every `--sample-s` seconds the RSS of each node process is read
 * from `/proc/<pid>/status`.
 *
 * Printed per node: RSS at the start of the traffic and at the end, and the
 * slope over the last half of the run (least squares, MiB/min); beside them
 * the idle node's (a slope is not a ratio: compare the rows). Target: slope < 0.1 MiB/min for A
 * and B. Beside it the peak RSS of the third and of the last quarter: a node
 * whose memory-reducing GCs give memory back every few minutes saws up and
 * down by a few MiB, and a slope over a few teeth depends on where the run
 * ends; peaks that do not rise say it does not grow. Also: requests sent, answered, failed, and the latency p50/p99.
 *
 * Run: `./node_modules/.bin/node test/bench/soak.bench.ts [--minutes 10]
 * [--rate 50] [--sample-s 10] [--quick] [--json]`. `--quick` is a one-minute
 * check that the bench runs (its slope means little: start-up warm-up
 * dominates the first minutes). Run nothing else meanwhile on a 2-core box.
 */

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { connectClient } from '../../src/client/index.ts'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import type { AgentnetClient, ReceivedMessage } from '../../src/client/index.ts'
import type { RunningNode } from '../helpers/cli.ts'

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    rate: { type: 'string', default: '50' },
    'sample-s': { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false }
  }
})
const minutes = values.quick ? 1 : Number(values.minutes)
const rate = Number(values.rate)
const sampleMs = 1000 * Number(values['sample-s'] ?? (values.quick ? 2 : 10))
if (!(minutes > 0) || !(rate > 0) || !(sampleMs > 0)) throw new Error('--minutes, --rate and --sample-s must be positive')

const log = (msg: string): void => { process.stderr.write(msg + '\n') }

async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1])
  return kb / 1024
}

/** Least-squares slope of (minutes, MiB) points */
function slope (points: Array<[number, number]>): number {
  const n = points.length
  if (n < 2) return Number.NaN
  const mx = points.reduce((a, [x]) => a + x, 0) / n
  const my = points.reduce((a, [, y]) => a + y, 0) / n
  let num = 0
  let den = 0
  for (const [x, y] of points) {
    num += (x - mx) * (y - my)
    den += (x - mx) ** 2
  }
  return num / den
}

function peak (points: Array<[number, number]>): number {
  return points.length === 0 ? Number.NaN : Math.max(...points.map(([, y]) => y))
}

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

const homes: string[] = []
const running: RunningNode[] = []
const clients: AgentnetClient[] = []

async function main (): Promise<void> {
  for (let i = 0; i < 3; i++) homes.push(await makeHome('an-soak-'))
  const [homeA, homeB, homeC] = homes as [string, string, string]
  log('starting three node processes…')
  const [a, b, c] = await Promise.all([startNode(homeA), startNode(homeB), startNode(homeC)])
  running.push(a, b, c)
  const idB = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeB])
  const idA = await runJson<{ peerId: string }>(['id', '--home', homeA])
  await runJson(['connect', idB.addresses[0] ?? '', '--home', homeA])
  await runJson(['trust', 'request', idB.peerId, '--reason', 'soak', '--home', homeA])
  await runJson(['trust', 'approve', idA.peerId, '--home', homeB])

  const server = await connectClient({ home: homeB })
  const sender = await connectClient({ home: homeA })
  clients.push(server, sender)
  await server.registerService('echo')
  server.on('message', (m: ReceivedMessage) => {
    void server.reply({ id: m.id, body: m.body }).catch(() => {})
  })

  const pids = { A: a.child.pid as number, B: b.child.pid as number, idle: c.child.pid as number }
  const samples: Record<keyof typeof pids, Array<[number, number]>> = { A: [], B: [], idle: [] }
  const latencies: number[] = []
  let sent = 0
  let answered = 0
  let failed = 0
  const errors: Record<string, number> = {}

  const started = performance.now()
  const durationMs = minutes * 60_000
  const sample = async (): Promise<void> => {
    const t = (performance.now() - started) / 60_000
    for (const [name, pid] of Object.entries(pids) as Array<[keyof typeof pids, number]>) {
      samples[name].push([t, await rssMiB(pid)])
    }
  }
  await sample()
  const sampler = setInterval(() => { void sample() }, sampleMs)
  const progress = setInterval(() => {
    log(`${((performance.now() - started) / 60_000).toFixed(1)} min: sent ${sent}, answered ${answered}, failed ${failed}; RSS A ${samples.A.at(-1)?.[1].toFixed(1)} MiB, B ${samples.B.at(-1)?.[1].toFixed(1)} MiB, idle ${samples.idle.at(-1)?.[1].toFixed(1)} MiB`)
  }, 30_000)

  // open loop at `rate`: the next send is due at started + n / rate, whatever the answers do
  const inFlight = new Set<Promise<void>>()
  while (performance.now() - started < durationMs) {
    const due = started + (sent * 1000) / rate
    const wait = due - performance.now()
    if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait))
    const t0 = performance.now()
    sent++
    const p = sender.send({ to: idB.peerId, service: 'echo', body: { n: sent, pad: 'x'.repeat(200) }, timeoutMs: 10_000 }).then(() => {
      answered++
      latencies.push(performance.now() - t0)
    }, (err: Error & { code?: string }) => {
      failed++
      errors[err.code ?? err.name] = (errors[err.code ?? err.name] ?? 0) + 1
    }).finally(() => { inFlight.delete(p) })
    inFlight.add(p)
  }
  await Promise.allSettled([...inFlight])
  clearInterval(sampler)
  clearInterval(progress)
  await sample()

  latencies.sort((x, y) => x - y)
  const half = minutes / 2
  const rows = (Object.keys(pids) as Array<keyof typeof pids>).map(name => {
    const points = samples[name]
    return {
      node: name,
      rssStartMiB: points[0]?.[1] ?? Number.NaN,
      rssEndMiB: points.at(-1)?.[1] ?? Number.NaN,
      slopeLastHalfMiBPerMin: slope(points.filter(([t]) => t >= half)),
      // a node whose GC gives memory back saws up and down; its peaks say whether it grows
      peakThirdQuarterMiB: peak(points.filter(([t]) => t >= half && t < 3 * minutes / 4)),
      peakLastQuarterMiB: peak(points.filter(([t]) => t >= 3 * minutes / 4))
    }
  })
  const idleSlope = rows.find(r => r.node === 'idle')?.slopeLastHalfMiBPerMin ?? Number.NaN
  const result = {
    minutes,
    rate,
    sampleSeconds: sampleMs / 1000,
    sent,
    answered,
    failed,
    errors,
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) },
    nodes: rows,
    idleSlopeMiBPerMin: idleSlope,
    targetMiBPerMin: 0.1
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n')
    return
  }
  const f = (x: number, d = 2): string => Number.isFinite(x) ? x.toFixed(d) : '—'
  process.stdout.write(`soak: ${minutes} min at ${rate} requests/s through the IPC sockets (A → B echo), RSS sampled every ${sampleMs / 1000} s\n`)
  process.stdout.write(`requests: ${sent} sent, ${answered} answered, ${failed} failed ${JSON.stringify(errors)}; latency p50 ${f(result.latencyMs.p50, 1)} ms, p99 ${f(result.latencyMs.p99, 1)} ms\n\n`)
  process.stdout.write('| node | RSS start (MiB) | RSS end (MiB) | slope, last half (MiB/min) | target | peak RSS, 3rd → 4th quarter (MiB) |\n|---|---|---|---|---|---|\n')
  for (const r of result.nodes) {
    const target = r.node === 'idle' ? 'baseline' : (r.slopeLastHalfMiBPerMin < 0.1 ? '< 0.1 ✓' : '< 0.1 ✗')
    process.stdout.write(`| ${r.node} | ${f(r.rssStartMiB, 1)} | ${f(r.rssEndMiB, 1)} | ${f(r.slopeLastHalfMiBPerMin, 3)} | ${target} | ${f(r.peakThirdQuarterMiB, 1)} → ${f(r.peakLastQuarterMiB, 1)} |\n`)
  }
}

try {
  await main()
} finally {
  for (const c of clients) c.close()
  await Promise.allSettled(running.map(async n => n.stop()))
  await Promise.allSettled(homes.map(removeHome))
}
