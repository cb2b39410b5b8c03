/**
 * Legitimate request latency while strangers attack, in the user's setting.
 * Node T and node L are `agentnet start` processes on 127.0.0.1; T trusts L.
 * On T an agent serves `echo` (private) through T's IPC socket, and another
 * agent (its own process) serves the public service `pub`. An agent on L
 * sends sequential requests through L's socket to T's `echo` every
 * `--gap-ms` and records their latency. Phases, `--phase-s` seconds each:
 *
 * 1. `baseline`: no attack (the same-run baseline);
 * 2. `flood`: 20 untrusted identities (one child process, each its own
 *    libp2p node and connection) send correctly signed requests to `pub`, as
 *    fast as T answers them (64 in flight each);
 * 3. `big`: 5 untrusted identities send 1,000,000-byte requests to `pub`
 *    (2 in flight each);
 * 4. `baseline-after`: no attack again (drift check).
 *
 * Printed per phase: legit p50/p99 (ms), p99 over the baseline's, legit
 * failures, the attack's answered rate, T's RSS at the end of the phase.
 * Target: p99 under attack ≤ 1 s.
 *
 * Run: `./node_modules/.bin/node test/bench/attack-latency.bench.ts
 * [--phase-s 20] [--gap-ms 50] [--quick] [--json]` (`--quick`: 5 s phases).
 * Nothing else should run meanwhile on a 2-core machine.
 */

import { spawn } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { connectClient } from '../../src/client/index.ts'
import { FrameDecoder, encodeFrame } from '../../src/messaging/index.ts'
import { Attacker, MSG_PROTOCOL, newId } from '../helpers/attacker.ts'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import type { AgentnetClient, ReceivedMessage } from '../../src/client/index.ts'
import type { RunningNode } from '../helpers/cli.ts'
import type { ChildProcess } from 'node:child_process'

const { values } = parseArgs({
  options: {
    'phase-s': { type: 'string', default: '20' },
    'gap-ms': { type: 'string', default: '50' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    // child roles
    role: { type: 'string' },
    target: { type: 'string' },
    peer: { type: 'string' },
    home: { type: 'string' },
    identities: { type: 'string' },
    bytes: { type: 'string' },
    window: { type: 'string' }
  }
})

const log = (msg: string): void => { process.stderr.write(msg + '\n') }
const SELF = fileURLToPath(import.meta.url)

// ------------------------------------------------------------------ child roles

/** Attackers: `identities` libp2p nodes, each flooding `pub` on the target with signed requests */
async function attackerRole (): Promise<void> {
  const target = multiaddr(values.target ?? '')
  const targetPeer = peerIdFromString(values.peer ?? '')
  const n = Number(values.identities)
  const bytes = Number(values.bytes)
  const window = Number(values.window)
  const body = new Uint8Array(bytes).fill(0x61)
  let answered = 0
  let stopping = false
  const attackers = await Promise.all(Array.from({ length: n }, async () => Attacker.create()))
  process.once('SIGTERM', () => {
    stopping = true
    process.stdout.write(JSON.stringify({ answered }) + '\n')
    void Promise.allSettled(attackers.map(async a => a.stop())).finally(() => process.exit(0))
  })
  await Promise.all(attackers.map(async attacker => {
    while (!stopping) {
      try {
        const stream = await attacker.libp2p.dialProtocol(target, MSG_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
        const frames = new FrameDecoder(64 * 1024 * 1024)
        let inFlight = 0
        const { promise: closed, resolve: onClose } = Promise.withResolvers<void>()
        let wake: (() => void) | undefined
        stream.addEventListener('message', evt => {
          const got = frames.push(evt.data).length
          answered += got
          inFlight -= got
          wake?.()
        })
        stream.addEventListener('close', () => { onClose(); wake?.() })
        while (!stopping && stream.status === 'open') {
          while (inFlight < window && stream.status === 'open') {
            const frame = attacker.seal({ to: targetPeer, service: 'pub', kind: 'request', id: newId('atk'), body, contentType: 'application/octet-stream', ttl: 30_000 })
            inFlight++
            if (!stream.send(encodeFrame(frame))) await stream.onDrain({ signal: AbortSignal.timeout(30_000) }).catch(() => {})
          }
          await Promise.race([new Promise<void>(resolve => { wake = resolve }), closed, new Promise(resolve => setTimeout(resolve, 1000))])
        }
      } catch {
        await new Promise(resolve => setTimeout(resolve, 200))
      }
    }
  }))
}

/** The agent serving the public service `pub` on T, in its own process */
async function pubAgentRole (): Promise<void> {
  const client = await connectClient({ home: values.home })
  await client.registerService('pub')
  client.on('message', (m: ReceivedMessage) => {
    if (m.kind === 'request') void client.reply({ id: m.id, body: 'ok' }).catch(() => {})
  })
  process.stdout.write('ready\n')
  process.once('SIGTERM', () => { client.close(); process.exit(0) })
}

// ------------------------------------------------------------------ main

interface PhaseResult {
  phase: string
  requests: number
  failed: number
  p50Ms: number
  p99Ms: number
  p99OverBaseline: number
  attackAnsweredPerS: number
  targetRssMiB: number
}

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1]) / 1024
}

function child (args: string[]): ChildProcess {
  return spawn(process.execPath, [SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
}

async function firstLine (proc: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = ''
    proc.stdout?.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl !== -1) resolve(out.slice(0, nl))
    })
    proc.once('exit', code => { reject(new Error(`child exited with ${code} before answering`)) })
  })
}

async function main (): Promise<void> {
  const phaseMs = 1000 * (values.quick ? 5 : Number(values['phase-s']))
  const gapMs = Number(values['gap-ms'])
  const homes: string[] = [await makeHome('an-atk-t-'), await makeHome('an-atk-l-')]
  const [homeT, homeL] = homes as [string, string]
  const running: RunningNode[] = []
  const children: ChildProcess[] = []
  const clients: AgentnetClient[] = []
  try {
    // `pub` is public on T
    const configFile = join(homeT, 'bench-config.json')
    await writeFile(configFile, JSON.stringify({ trust: { publicServices: ['pub'] } }))
    const [t, l] = await Promise.all([startNode(homeT, ['--config', configFile]), startNode(homeL)])
    running.push(t, l)
    const idT = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeT])
    const idL = await runJson<{ peerId: string }>(['id', '--home', homeL])
    await runJson(['connect', idT.addresses[0] ?? '', '--home', homeL])
    await runJson(['trust', 'request', idT.peerId, '--reason', 'bench', '--home', homeL])
    await runJson(['trust', 'approve', idL.peerId, '--home', homeT])
    const addrT = (await runJson<{ addresses: string[] }>(['id', '--home', homeT])).addresses[0] ?? ''

    const echoAgent = await connectClient({ home: homeT })
    const legit = await connectClient({ home: homeL })
    clients.push(echoAgent, legit)
    await echoAgent.registerService('echo')
    echoAgent.on('message', (m: ReceivedMessage) => { void echoAgent.reply({ id: m.id, body: m.body }).catch(() => {}) })
    const pub = child(['--role', 'pub', '--home', homeT])
    children.push(pub)
    await firstLine(pub)

    const measure = async (phase: string, attack?: { identities: number, bytes: number, window: number }): Promise<PhaseResult> => {
      let attacker: ChildProcess | undefined
      if (attack != null) {
        attacker = child(['--role', 'attacker', '--target', addrT, '--peer', idT.peerId, '--identities', String(attack.identities), '--bytes', String(attack.bytes), '--window', String(attack.window)])
        children.push(attacker)
        // let the attack ramp up before measuring
        await new Promise(resolve => setTimeout(resolve, 2000))
      }
      log(`phase ${phase}…`)
      const latencies: number[] = []
      let failed = 0
      const started = performance.now()
      let n = 0
      while (performance.now() - started < phaseMs) {
        const t0 = performance.now()
        try {
          await legit.send({ to: idT.peerId, service: 'echo', body: { n: n++ }, timeoutMs: 10_000 })
          latencies.push(performance.now() - t0)
        } catch {
          failed++
        }
        const rest = gapMs - (performance.now() - t0)
        if (rest > 0) await new Promise(resolve => setTimeout(resolve, rest))
      }
      const elapsedS = (performance.now() - started) / 1000
      const targetRssMiB = await rssMiB(running[0]?.child.pid as number)
      let attackAnsweredPerS = 0
      if (attacker != null) {
        const answer = firstLine(attacker)
        attacker.kill('SIGTERM')
        const { answered } = JSON.parse(await answer) as { answered: number }
        attackAnsweredPerS = answered / (elapsedS + 2)
      }
      latencies.sort((a, b) => a - b)
      return { phase, requests: latencies.length + failed, failed, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), p99OverBaseline: Number.NaN, attackAnsweredPerS, targetRssMiB }
    }

    const results: PhaseResult[] = []
    results.push(await measure('baseline'))
    results.push(await measure('flood: 20 identities, signed requests', { identities: 20, bytes: 64, window: 64 }))
    results.push(await measure('big: 5 identities, 1 MB requests', { identities: 5, bytes: 1_000_000, window: 2 }))
    results.push(await measure('baseline-after'))
    const base = results[0]?.p99Ms ?? Number.NaN
    for (const r of results) r.p99OverBaseline = r.p99Ms / base

    if (values.json) {
      process.stdout.write(JSON.stringify({ phaseSeconds: phaseMs / 1000, gapMs, targetP99Ms: 1000, results }, null, 2) + '\n')
      return
    }
    const f = (x: number, d = 1): string => Number.isFinite(x) ? x.toFixed(d) : '—'
    process.stdout.write(`legitimate requests L → T (trusted, through the IPC sockets), ${phaseMs / 1000} s per phase, one every ${gapMs} ms; target p99 under attack ≤ 1000 ms\n\n`)
    process.stdout.write('| phase | legit requests | failed | p50 (ms) | p99 (ms) | p99 / baseline | attack answered/s | T RSS (MiB) |\n|---|---|---|---|---|---|---|---|\n')
    for (const r of results) {
      process.stdout.write(`| ${r.phase} | ${r.requests} | ${r.failed} | ${f(r.p50Ms)} | ${f(r.p99Ms)} | ${f(r.p99OverBaseline, 2)} | ${r.attackAnsweredPerS > 0 ? f(r.attackAnsweredPerS, 0) : '—'} | ${f(r.targetRssMiB)} |\n`)
    }
  } finally {
    for (const c of clients) c.close()
    for (const c of children) if (c.exitCode == null) c.kill('SIGKILL')
    await Promise.allSettled(running.map(async n => n.stop()))
    await Promise.allSettled(homes.map(removeHome))
  }
}

if (values.role === 'attacker') {
  await attackerRole()
} else if (values.role === 'pub') {
  await pubAgentRole()
} else {
  await main()
}
