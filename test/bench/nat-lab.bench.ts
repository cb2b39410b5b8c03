/**
 * NAT-lab benchmark: two hosts behind two separate NAT routers, one
 * bootstrap/relay node (and the STUN fixture) on the public segment, in real
 * network namespaces (`test/nat/lab.ts`). One lab for all runs; every run
 * starts two fresh hosts (new homes, new peer IDs) and stops them after.
 *
 * Per run, from the moment both hosts are spawned:
 * - `running`: both print "agentnet node running"
 * - `reserved`: both hold a relay reservation (and listen on /webrtc)
 * - `discoverable`: the bootstrap node holds A's relay addresses, so a
 *   lookup of A's peer ID returns them (skipped with `--eager`)
 * - `first msg`: B's first successful `msg.send` to A's `echo`, by peer ID
 *   alone (default request timeout; re-sent until 30 s have passed)
 * - `direct`: B's connection to A is direct WebRTC right after that message
 *
 * Run as root: `./node_modules/.bin/node test/bench/nat-lab.bench.ts
 * [--runs 20] [--json] [--eager] [--no-stun] [--blackhole] [--webrtc-off]`
 * - `--eager`: send as soon as both hold a reservation (no discoverability wait)
 * - `--no-stun`: hosts get no STUN server (the product default)
 * - `--blackhole`: routers drop packets for other sites' private addresses
 *   silently instead of answering ICMP net-unreachable
 * - `--webrtc-off`: host B runs with `nat.webrtc: false` (relay path)
 * Progress goes to stderr; the table (or JSON) to stdout.
 */

import { parseArgs } from 'node:util'
import {
  cleanupStaleLabs, createLab, labUnavailableReason, serveEcho, status, waitDiscoverable, waitForReservation
} from '../nat/lab.ts'
import type { LabNode, NatLab } from '../nat/lab.ts'

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
    eager: { type: 'boolean', default: false },
    'no-stun': { type: 'boolean', default: false },
    blackhole: { type: 'boolean', default: false },
    'webrtc-off': { type: 'boolean', default: false }
  }
})
const RUNS = Number(args.runs)
const MESSAGE_DEADLINE_MS = 30_000

interface Run {
  run: number
  runningMs: number
  reservedMs: number
  discoverableMs: number | null
  firstMessageMs: number | null
  attempts: number
  direct: boolean
  transport: string
  error?: string
}

function log (msg: string): void {
  process.stderr.write(msg + '\n')
}

async function oneRun (lab: NatLab, run: number): Promise<Run> {
  const nat: Record<string, unknown> = args['no-stun'] ? { stunServers: [], stunFromBootstrap: false } : {}
  const started = performance.now()
  const since = (): number => Math.round(performance.now() - started)
  const [a, b] = await Promise.all([
    lab.startHost('a', { config: { nat } }),
    lab.startHost('b', { config: { nat: { ...nat, ...(args['webrtc-off'] ? { webrtc: false } : {}) } } })
  ])
  const nodes: LabNode[] = [a, b]
  const echo = await serveEcho(a)
  try {
    const runningMs = Math.round(Math.max(a.runningAt, b.runningAt) - started)
    await Promise.all([waitForReservation(a), waitForReservation(b, !args['webrtc-off'])])
    const reservedMs = since()
    let discoverableMs: number | null = null
    if (!args.eager) {
      await waitDiscoverable(lab, a)
      discoverableMs = since()
    }
    let attempts = 0
    let firstMessageMs: number | null = null
    let error: string | undefined
    while (performance.now() - started < MESSAGE_DEADLINE_MS + reservedMs) {
      attempts++
      const reply = await b.call('msg.send', { to: a.peerId, service: 'echo', body: `run ${run}` }, 60_000)
      if (reply.result?.body === `run ${run}`) {
        firstMessageMs = since()
        error = undefined
        break
      }
      error = String(reply.error?.message ?? JSON.stringify(reply)).slice(0, 200)
      // only a timeout or an unreachable peer is worth sending again
      if (!['RequestTimeout', 'PeerUnreachable'].includes(reply.error?.data?.code)) break
    }
    const conns = (await status(b)).connections.filter(c => c.peerId === a.peerId)
    const direct = conns.some(c => c.direct && c.transport === 'webrtc')
    return {
      run,
      runningMs,
      reservedMs,
      discoverableMs,
      firstMessageMs,
      attempts,
      direct,
      transport: [...new Set(conns.map(c => c.transport))].join('+') || 'none',
      ...(error != null ? { error } : {})
    }
  } finally {
    echo.stop()
    await Promise.all(nodes.map(async n => n.stop()))
  }
}

function stats (values: number[]): { median: number, p90: number, min: number, max: number } | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((x, y) => x - y)
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number
  return { median: at(0.5), p90: at(0.9), min: sorted[0] as number, max: sorted.at(-1) as number }
}

async function main (): Promise<void> {
  const unavailable = labUnavailableReason()
  if (unavailable != null) {
    log(`nat-lab bench skipped: ${unavailable}`)
    return
  }
  await cleanupStaleLabs()
  const labStarted = performance.now()
  const lab = await createLab({ foreignPrivate: args.blackhole ? 'blackhole' : 'unreachable' })
  const labMs = Math.round(performance.now() - labStarted)
  log(`lab up in ${labMs} ms (${lab.id}); ${RUNS} runs`)
  const runs: Run[] = []
  const stop = (): void => { void lab.teardown().then(() => process.exit(130)) }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    for (let i = 1; i <= RUNS; i++) {
      let r: Run
      try {
        r = await oneRun(lab, i)
      } catch (err) {
        r = { run: i, runningMs: 0, reservedMs: 0, discoverableMs: null, firstMessageMs: null, attempts: 0, direct: false, transport: 'none', error: (err as Error).message.split('\n')[0] }
      }
      runs.push(r)
      log(`run ${i}: ${JSON.stringify(r)}`)
    }
  } finally {
    await lab.teardown()
  }

  const variant = [args.eager ? 'eager' : 'wait-discoverable', args['no-stun'] ? 'no STUN' : 'bootstrap STUN', args.blackhole ? 'blackhole' : 'icmp-unreachable', args['webrtc-off'] ? 'B webrtc off' : 'webrtc both'].join(', ')
  const ok = runs.filter(r => r.firstMessageMs != null)
  const summary = {
    variant,
    runs: runs.length,
    labSetupMs: labMs,
    messageSuccess: ok.length,
    directSuccess: runs.filter(r => r.direct).length,
    directRate: runs.length === 0 ? 0 : runs.filter(r => r.direct).length / runs.length,
    runningMs: stats(runs.filter(r => r.runningMs > 0).map(r => r.runningMs)),
    reservedMs: stats(runs.filter(r => r.reservedMs > 0).map(r => r.reservedMs)),
    discoverableMs: stats(runs.flatMap(r => r.discoverableMs ?? [])),
    firstMessageMs: stats(ok.map(r => r.firstMessageMs as number)),
    /** from the moment the sender could first send (discoverable, or reserved with --eager) */
    sendToReplyMs: stats(ok.map(r => (r.firstMessageMs as number) - (r.discoverableMs ?? r.reservedMs)))
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ summary, runs }, null, 2) + '\n')
    return
  }
  const cell = (v: number | null): string => v == null ? '—' : String(v)
  const lines = [
    `NAT lab (${variant}): ${runs.length} runs, fresh hosts each run, times in ms from spawning both hosts`,
    '',
    '| run | running | reserved | discoverable | first msg | attempts | direct | transports |',
    '|---:|---:|---:|---:|---:|---:|:---:|---|',
    ...runs.map(r => `| ${r.run} | ${r.runningMs} | ${r.reservedMs} | ${cell(r.discoverableMs)} | ${cell(r.firstMessageMs)} | ${r.attempts} | ${r.direct ? 'yes' : 'no'} | ${r.transport}${r.error != null ? ` (${r.error})` : ''} |`),
    '',
    '| phase | median | p90 | min | max |',
    '|---|---:|---:|---:|---:|',
    ...(['runningMs', 'reservedMs', 'discoverableMs', 'firstMessageMs', 'sendToReplyMs'] as const).map(k => {
      const s = summary[k]
      return `| ${k} | ${cell(s?.median ?? null)} | ${cell(s?.p90 ?? null)} | ${cell(s?.min ?? null)} | ${cell(s?.max ?? null)} |`
    }),
    '',
    `messages delivered: ${summary.messageSuccess}/${runs.length}; direct WebRTC: ${summary.directSuccess}/${runs.length} (${Math.round(summary.directRate * 100)} %)`
  ]
  process.stdout.write(lines.join('\n') + '\n')
}

await main()
