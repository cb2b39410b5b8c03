/**
 * Messaging benchmark: what `/agentnet/msg/2.0.0` delivers next to baselines
 * measured in the same run.
 *
 * 1. One-way throughput: messages/s of 256-byte bodies from node A to node B
 *    via `A.messaging.send(B.peerId, 'sink', body, 'application/octet-stream',
 *    { oneway: true })`, a window of 256 sends in flight, 2,000 messages of
 *    warm-up, then 3 rounds of 20,000 (the median round is reported; rounds
 *    vary a lot, see the findings in the report). Baseline: the Ed25519 verify rate of one core
 *    (node:crypto `verify(null, data, publicKeyObject, sig)` over 300-byte
 *    messages, ~2 s, measured at the start and at the end of the run; their
 *    mean is the baseline). Target (issue 8): msgs/s ≥ 85 % of verify/s, since every
 *    message costs the receiver one verify. Context row: a bare libp2p stream
 *    sending the same 256-byte bodies with the same framing and window, each
 *    answered by a 38-byte ack (agentnet's ack size), i.e. the transport
 *    ceiling without envelopes.
 * 2. Request/response RTT, sequential, 32-byte body, 2,000 requests after 200
 *    of warm-up, p50/p99: `messaging.send` to an `echo` service versus a bare
 *    libp2p node (TCP, Noise, yamux) echoing the same framed 32-byte message
 *    over ONE long-lived stream (agentnet's stream reuse), and, for context,
 *    over a new stream per request. The three are interleaved in blocks of
 *    100 so that drift hits them alike. Target (issue 8): agentnet p50 − raw p50 ≤ 0.4 ms.
 *
 * Both are measured twice: with A and B in this one process (they share one
 * core of JS), and with B in a child process (`fixtures/msg-peer.ts`, so each
 * side has its own core): the realistic case. Every node is TCP on 127.0.0.1;
 * agentnet nodes come from `createAgentNode` with
 * `loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })` (and
 * `sink`/`echo` listed in `trust.publicServices`), fresh Ed25519 keys and
 * temp homes. CPU per message is from `process.cpuUsage()`
 * here and `/proc/<pid>/stat` for the child (10 ms ticks).
 *
 * Run: `./node_modules/.bin/node test/bench/messaging.bench.ts [--json]`
 * (`--total`, `--rounds`, `--warmup`, `--window`, `--rtt-requests`,
 * `--rtt-warmup`, `--verify-ms` change the sizes; `--only in-process|separate`
 * runs one half, `--skip oneway|rtt` one measurement). The rounds and RTT
 * blocks also report how many cores other processes used meanwhile: on a
 * shared 2-core machine a figure taken while that is well above 0 is low.
 * Progress goes to stderr; the tables (or JSON) to stdout. Run no other
 * benchmark at the same time: the machine has 2 cores.
 */

import { spawn } from 'node:child_process'
import { createPublicKey, generateKeyPairSync, randomBytes, sign, verify } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createBareNode, RAW_ACK, RAW_ECHO, RawClient, startAgentnetPeer, startRawPeer } from './fixtures/msg-nodes.ts'
import type { AgentnetPeer } from './fixtures/msg-nodes.ts'
import type { ChildProcess } from 'node:child_process'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Interface } from 'node:readline'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const PEER_FIXTURE = join(ROOT, 'test', 'bench', 'fixtures', 'msg-peer.ts')
const READY_TIMEOUT_MS = 30_000
const CLK_TCK = 100
const RTT_BLOCK = 100

interface Options {
  oneway: boolean
  rtt: boolean
  total: number
  rounds: number
  warmup: number
  window: number
  bodyBytes: number
  rttRequests: number
  rttWarmup: number
  verifyMs: number
}

function log (msg: string): void {
  process.stderr.write(msg + '\n')
}

// ---------------------------------------------------------------- baseline: verify

/** Ed25519 verifies per second on this thread, node:crypto, 300-byte messages */
function measureVerifyRate (ms: number): number {
  const { privateKey: priv, publicKey } = generateKeyPairSync('ed25519')
  // a public KeyObject built from SPKI DER bytes, as agentnet builds its peers' keys
  const pub = createPublicKey({ key: publicKey.export({ format: 'der', type: 'spki' }), format: 'der', type: 'spki' })
  const messages = Array.from({ length: 256 }, () => randomBytes(300))
  const sigs = messages.map(m => sign(null, m, priv))
  // short warm-up so that the JIT and the key object are settled
  for (let i = 0; i < 500; i++) verify(null, messages[i & 255]!, pub, sigs[i & 255]!)
  let n = 0
  let ok = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < ms) {
    for (let j = 0; j < 64; j++, n++) {
      if (verify(null, messages[n & 255]!, pub, sigs[n & 255]!)) ok++
    }
    elapsed = performance.now() - start
  }
  if (ok !== n) throw new Error('a baseline signature failed to verify')
  return n / (elapsed / 1000)
}

/** Ed25519 signs per second on this thread, node:crypto, 300-byte messages */
function measureSignRate (ms: number): number {
  const { privateKey: priv } = generateKeyPairSync('ed25519')
  const messages = Array.from({ length: 256 }, () => randomBytes(300))
  for (let i = 0; i < 500; i++) sign(null, messages[i & 255]!, priv)
  let n = 0
  const start = performance.now()
  let elapsed = 0
  while (elapsed < ms) {
    for (let j = 0; j < 64; j++, n++) sign(null, messages[n & 255]!, priv)
    elapsed = performance.now() - start
  }
  return n / (elapsed / 1000)
}

// ---------------------------------------------------------------- child processes

interface ChildPeer {
  child: ChildProcess
  peerId: PeerId
  addr: string
  lines: Interface
  nextLine: () => Promise<string>
}

const children = new Set<ChildProcess>()

async function spawnPeer (mode: 'agentnet' | 'raw'): Promise<ChildPeer> {
  const child = spawn(process.execPath, [PEER_FIXTURE, mode], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] })
  children.add(child)
  child.once('exit', () => { children.delete(child) })
  const lines = createInterface({ input: child.stdout! })
  const queue: string[] = []
  const waiting: Array<(line: string) => void> = []
  lines.on('line', line => {
    const w = waiting.shift()
    if (w != null) w(line)
    else queue.push(line)
  })
  const nextLine = (): Promise<string> => {
    const line = queue.shift()
    if (line != null) return Promise.resolve(line)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`msg-peer ${mode}: no answer within ${READY_TIMEOUT_MS} ms`)) }, READY_TIMEOUT_MS)
      waiting.push(l => { clearTimeout(timer); resolve(l) })
    })
  }
  const ready = JSON.parse(await Promise.race([
    nextLine(),
    new Promise<never>((_resolve, reject) => child.once('exit', code => { reject(new Error(`msg-peer ${mode} exited with ${code} before listening`)) }))
  ])) as { peerId: string, addrs: string[] }
  const addr = ready.addrs.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))
  if (addr == null) throw new Error(`msg-peer ${mode}: no TCP address in ${JSON.stringify(ready.addrs)}`)
  return { child, peerId: peerIdFromString(ready.peerId), addr, lines, nextLine }
}

async function stopPeer (peer: ChildPeer): Promise<number | null> {
  const exited = new Promise<number | null>(resolve => {
    if (peer.child.exitCode != null) resolve(peer.child.exitCode)
    else peer.child.once('exit', code => { resolve(code) })
  })
  peer.child.stdin?.end()
  const timer = setTimeout(() => { peer.child.kill('SIGKILL') }, 15_000)
  const code = await exited
  clearTimeout(timer)
  return code
}

/** CPU seconds (user + system) a process has used so far */
async function procCpuSeconds (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields 14 and 15 of stat(5); `rest` starts at field 3
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK
}

/** CPU seconds used by the whole machine so far (all cores, every process) */
async function machineCpuSeconds (): Promise<number> {
  const stat = await readFile('/proc/stat', 'utf8')
  const cpu = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number)
  // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
  const busy = (cpu[0] ?? 0) + (cpu[1] ?? 0) + (cpu[2] ?? 0) + (cpu[5] ?? 0) + (cpu[6] ?? 0) + (cpu[7] ?? 0)
  return busy / CLK_TCK
}

function selfCpuSeconds (): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

// ---------------------------------------------------------------- measurement

interface WindowResult {
  msgsPerSec: number
  seconds: number
  failures: number
  firstError?: string
  /** CPU µs per message of this process */
  localCpuUsPerMsg: number
  /** CPU µs per message of the child process, when there is one */
  remoteCpuUsPerMsg?: number
  /**
   * Cores used by other processes on the machine during the round (machine
   * busy time minus ours, ÷ wall time): anything well above 0 means the
   * round competed for the 2 cores and its figure is low.
   */
  otherCores: number
}

/** Keep `window` calls of `send` in flight until `total` have completed */
async function runWindow (send: () => Promise<unknown>, total: number, window: number, remotePid?: number): Promise<WindowResult> {
  let started = 0
  let failures = 0
  let firstError: string | undefined
  const machine0 = await machineCpuSeconds()
  const cpu0 = selfCpuSeconds()
  const remote0 = remotePid != null ? await procCpuSeconds(remotePid) : 0
  const t0 = performance.now()
  await new Promise<void>(resolve => {
    let done = 0
    const next = (): void => {
      if (started >= total) return
      started++
      send().catch((err: unknown) => {
        failures++
        firstError ??= err instanceof Error ? err.message : String(err)
      }).finally(() => {
        done++
        if (done === total) resolve()
        else next()
      })
    }
    for (let i = 0; i < Math.min(window, total); i++) next()
  })
  const seconds = (performance.now() - t0) / 1000
  const localCpu = selfCpuSeconds() - cpu0
  const remoteCpu = remotePid != null ? await procCpuSeconds(remotePid) - remote0 : undefined
  const machineCpu = await machineCpuSeconds() - machine0
  return {
    otherCores: Math.max(0, machineCpu - localCpu - (remoteCpu ?? 0)) / seconds,
    msgsPerSec: total / seconds,
    seconds,
    failures,
    firstError,
    localCpuUsPerMsg: localCpu * 1e6 / total,
    remoteCpuUsPerMsg: remoteCpu != null ? remoteCpu * 1e6 / total : undefined
  }
}

interface Latency {
  p50: number
  p90: number
  p99: number
  mean: number
  max: number
  n: number
}

function percentile (sorted: number[], p: number): number {
  const rank = Math.ceil(p / 100 * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

function latency (samples: number[]): Latency {
  const s = [...samples].sort((a, b) => a - b)
  return {
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    max: s[s.length - 1]!,
    n: s.length
  }
}

type RttKind = 'agentnet' | 'rawStream' | 'rawNewStream'

interface RttResult extends Latency {
  /** CPU µs per request of this process (A) */
  localCpuUs: number
  /** CPU µs per request of B's process, when B is a child (10 ms ticks, summed over blocks) */
  remoteCpuUs?: number
  /** cores used by other processes on the machine while this kind ran */
  otherCores: number
}

/**
 * Sequential round trips, the kinds interleaved in blocks of {@link RTT_BLOCK}.
 * `remotePids` gives, per kind, the child process serving it (if any).
 */
async function measureRtt (fns: Record<RttKind, () => Promise<unknown>>, requests: number, warmup: number, remotePids: Partial<Record<RttKind, number>>): Promise<Record<RttKind, RttResult>> {
  const kinds = Object.keys(fns) as RttKind[]
  for (const kind of kinds) {
    for (let i = 0; i < warmup; i++) await fns[kind]()
  }
  const samples: Record<RttKind, number[]> = { agentnet: [], rawStream: [], rawNewStream: [] }
  const cpu: Record<RttKind, { local: number, remote: number, machine: number, wall: number }> = {
    agentnet: { local: 0, remote: 0, machine: 0, wall: 0 },
    rawStream: { local: 0, remote: 0, machine: 0, wall: 0 },
    rawNewStream: { local: 0, remote: 0, machine: 0, wall: 0 }
  }
  for (let done = 0; done < requests; done += RTT_BLOCK) {
    const n = Math.min(RTT_BLOCK, requests - done)
    for (const kind of kinds) {
      const fn = fns[kind]
      const out = samples[kind]
      const pid = remotePids[kind]
      const machine0 = await machineCpuSeconds()
      const remote0 = pid != null ? await procCpuSeconds(pid) : 0
      const local0 = selfCpuSeconds()
      const wall0 = performance.now()
      for (let i = 0; i < n; i++) {
        const t0 = performance.now()
        await fn()
        out.push(performance.now() - t0)
      }
      const c = cpu[kind]
      c.wall += (performance.now() - wall0) / 1000
      c.local += selfCpuSeconds() - local0
      if (pid != null) c.remote += await procCpuSeconds(pid) - remote0
      c.machine += await machineCpuSeconds() - machine0
    }
  }
  const result = (kind: RttKind): RttResult => {
    const c = cpu[kind]
    const n = samples[kind].length
    return {
      ...latency(samples[kind]),
      localCpuUs: c.local * 1e6 / n,
      remoteCpuUs: remotePids[kind] != null ? c.remote * 1e6 / n : undefined,
      otherCores: Math.max(0, c.machine - c.local - c.remote) / c.wall
    }
  }
  return { agentnet: result('agentnet'), rawStream: result('rawStream'), rawNewStream: result('rawNewStream') }
}

function checkEcho (sent: Uint8Array, got: Uint8Array): void {
  if (got.length !== sent.length || got[0] !== sent[0] || got[got.length - 1] !== sent[sent.length - 1]) {
    throw new Error('echo does not match the request')
  }
}

interface Rounds {
  /** the round with the median msgs/s */
  median: WindowResult
  rounds: WindowResult[]
}

function summarizeRounds (rounds: WindowResult[]): Rounds {
  const sorted = [...rounds].sort((x, y) => x.msgsPerSec - y.msgsPerSec)
  return { median: sorted[(sorted.length - 1) >> 1]!, rounds }
}

interface SectionResult {
  oneway?: { agentnet: Rounds, raw: Rounds, sinkReceived: number }
  rtt?: Record<RttKind, RttResult>
}

/**
 * Both halves run the same measurements; only where B lives differs.
 * `agentnetB` / `rawB` are where to send, and how to read B's sink count.
 */
async function runSection (name: string, opts: Options, a: AgentnetPeer, rawClientNode: Libp2p, agentnetB: { peerId: PeerId, addr: string, pid?: number, sunk: () => Promise<number> }, rawB: { peerId: PeerId, addr: string, pid?: number }): Promise<SectionResult> {
  await a.node.libp2p.dial(multiaddr(agentnetB.addr))
  await rawClientNode.dial(multiaddr(rawB.addr))
  const result: SectionResult = {}
  if (opts.oneway) result.oneway = await measureOneway(name, opts, a, rawClientNode, agentnetB, rawB)
  if (opts.rtt) result.rtt = await measureRttSection(name, opts, a, rawClientNode, agentnetB, rawB)
  return result
}

async function measureOneway (name: string, opts: Options, a: AgentnetPeer, rawClientNode: Libp2p, agentnetB: { peerId: PeerId, pid?: number, sunk: () => Promise<number> }, rawB: { peerId: PeerId, pid?: number }): Promise<NonNullable<SectionResult['oneway']>> {
  const body = randomBytes(opts.bodyBytes)
  const sendOneway = (): Promise<unknown> => a.node.send(agentnetB.peerId, 'sink', body, 'application/octet-stream', { oneway: true })
  log(`${name}: agentnet one-way warm-up ${opts.warmup}`)
  const warm = await runWindow(sendOneway, opts.warmup, opts.window)
  if (warm.failures > 0) throw new Error(`${name}: ${warm.failures} warm-up sends failed: ${warm.firstError}`)
  const sunkBefore = await agentnetB.sunk()
  const agentnetRounds: WindowResult[] = []
  for (let r = 0; r < opts.rounds; r++) {
    log(`${name}: agentnet one-way round ${r + 1}/${opts.rounds}: ${opts.total} messages, window ${opts.window}`)
    const w = await runWindow(sendOneway, opts.total, opts.window, agentnetB.pid)
    agentnetRounds.push(w)
    log(`  ${fmt(w.msgsPerSec)} msgs/s, ${w.failures} failed${w.firstError != null ? ` (${w.firstError})` : ''}, CPU µs/msg A ${fmt(w.localCpuUsPerMsg, 1)} B ${fmt(w.remoteCpuUsPerMsg, 1)}, other processes ${fmt(w.otherCores, 2)} cores`)
  }
  const agentnet = summarizeRounds(agentnetRounds)
  // the ack goes out before the handler runs: give the last handlers a moment
  await new Promise(resolve => setTimeout(resolve, 100))
  const sinkReceived = await agentnetB.sunk() - sunkBefore
  log(`  sink got ${sinkReceived} of ${opts.total * opts.rounds}`)

  const ackClient = new RawClient(rawClientNode, rawB.peerId)
  await ackClient.open(RAW_ACK)
  const sendRaw = (): Promise<unknown> => ackClient.request(body)
  log(`${name}: raw libp2p one-way warm-up ${opts.warmup}`)
  await runWindow(sendRaw, opts.warmup, opts.window)
  const rawRounds: WindowResult[] = []
  for (let r = 0; r < opts.rounds; r++) {
    log(`${name}: raw libp2p one-way round ${r + 1}/${opts.rounds}: ${opts.total} messages, window ${opts.window}`)
    const w = await runWindow(sendRaw, opts.total, opts.window, rawB.pid)
    rawRounds.push(w)
    log(`  ${fmt(w.msgsPerSec)} msgs/s, other processes ${fmt(w.otherCores, 2)} cores`)
  }
  const raw = summarizeRounds(rawRounds)
  ackClient.close()
  return { agentnet, raw, sinkReceived }
}

async function measureRttSection (name: string, opts: Options, a: AgentnetPeer, rawClientNode: Libp2p, agentnetB: { peerId: PeerId, pid?: number }, rawB: { peerId: PeerId, pid?: number }): Promise<NonNullable<SectionResult['rtt']>> {
  const small = randomBytes(32)
  const echoClient = new RawClient(rawClientNode, rawB.peerId)
  await echoClient.open(RAW_ECHO)
  log(`${name}: RTT, ${opts.rttRequests} sequential requests of each kind after ${opts.rttWarmup} of warm-up`)
  const rtt = await measureRtt({
    agentnet: async () => {
      const reply = await a.node.send(agentnetB.peerId, 'echo', small, 'application/octet-stream')
      checkEcho(small, reply.body)
    },
    rawStream: async () => { checkEcho(small, await echoClient.request(small)) },
    rawNewStream: async () => { checkEcho(small, await echoClient.requestOnNewStream(small)) }
  }, opts.rttRequests, opts.rttWarmup, { agentnet: agentnetB.pid, rawStream: rawB.pid, rawNewStream: rawB.pid })
  echoClient.close()
  log(`  p50 agentnet ${fmt(rtt.agentnet.p50, 3)} ms, raw ${fmt(rtt.rawStream.p50, 3)} ms, raw new stream ${fmt(rtt.rawNewStream.p50, 3)} ms`)
  return rtt
}

async function inProcess (opts: Options): Promise<SectionResult> {
  const a = await startAgentnetPeer()
  const b = await startAgentnetPeer()
  const rawServer = await startRawPeer()
  const rawClient = await createBareNode()
  try {
    const addrOf = (addrs: string[]): string => addrs.find(x => x.startsWith('/ip4/127.0.0.1/tcp/'))!
    return await runSection('in-process', opts, a, rawClient,
      { peerId: b.node.peerId, addr: addrOf(b.node.addresses()), sunk: async () => b.sunk() },
      { peerId: rawServer.peerId, addr: addrOf(rawServer.getMultiaddrs().map(m => m.toString())) })
  } finally {
    await a.stop()
    await b.stop()
    await rawServer.stop()
    await rawClient.stop()
  }
}

async function separateProcesses (opts: Options): Promise<SectionResult> {
  const bAgentnet = await spawnPeer('agentnet')
  const bRaw = await spawnPeer('raw')
  const a = await startAgentnetPeer()
  const rawClient = await createBareNode()
  try {
    return await runSection('separate processes', opts, a, rawClient, {
      peerId: bAgentnet.peerId,
      addr: bAgentnet.addr,
      pid: bAgentnet.child.pid,
      sunk: async () => {
        bAgentnet.child.stdin!.write('stats\n')
        return (JSON.parse(await bAgentnet.nextLine()) as { sunk: number }).sunk
      }
    }, { peerId: bRaw.peerId, addr: bRaw.addr, pid: bRaw.child.pid })
  } finally {
    await a.stop()
    await rawClient.stop()
    const codes = [await stopPeer(bAgentnet), await stopPeer(bRaw)]
    if (codes.some(c => c !== 0)) log(`warning: msg-peer exit codes ${codes.join(', ')}`)
  }
}

// ---------------------------------------------------------------- output

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

interface Report {
  node: string
  options: Options
  verifyPerSec: { start: number, end: number, mean: number }
  /** Ed25519 signs/s, one core, mean of start and end */
  signPerSec: number
  sections: Partial<Record<'inProcess' | 'separate', SectionResult>>
  totalSeconds: number
}

type Where = 'inProcess' | 'separate'

function render (r: Report): string {
  const v = r.verifyPerSec.mean
  const label = { inProcess: 'A and B in one process', separate: 'B in a child process' }
  const pct = (x: number): string => `${fmt(100 * x, 1)} %`
  const out = [`messaging benchmark, Node ${r.node}; Ed25519 verify/s (node:crypto, one core) at start ${fmt(r.verifyPerSec.start)}, at end ${fmt(r.verifyPerSec.end)}; their mean is the baseline`]
  const o = r.options

  const onewayCols = (['inProcess', 'separate'] as const).filter(k => r.sections[k]?.oneway != null)
  if (onewayCols.length > 0) {
    const ow = (k: Where): NonNullable<SectionResult['oneway']> => r.sections[k]!.oneway!
    const range = (x: Rounds): string => x.rounds.map(w => fmt(w.msgsPerSec)).join(', ')
    const failures = (x: Rounds): number => x.rounds.reduce((n, w) => n + w.failures, 0)
    const rows: string[][] = [
      ['agentnet one-way msgs/s (256 B body), median round', ...onewayCols.map(k => fmt(ow(k).agentnet.median.msgsPerSec))],
      ['  every round', ...onewayCols.map(k => range(ow(k).agentnet))],
      ['  other processes\' CPU in each round (cores)', ...onewayCols.map(k => ow(k).agentnet.rounds.map(w => fmt(w.otherCores, 2)).join(', '))],
      ['Ed25519 verify/s, one core (same run)', ...onewayCols.map(() => fmt(v))],
      ['ratio msgs/s ÷ verify/s (target ≥ 85 %)', ...onewayCols.map(k => pct(ow(k).agentnet.median.msgsPerSec / v))],
      ['  sender CPU µs/msg (A process)', ...onewayCols.map(k => fmt(ow(k).agentnet.median.localCpuUsPerMsg, 1))],
      ['  receiver CPU µs/msg (B process)', ...onewayCols.map(k => k === 'inProcess' ? '(in A)' : fmt(ow(k).agentnet.median.remoteCpuUsPerMsg, 1))],
      ['  B busy (receiver CPU × msgs/s)', ...onewayCols.map(k => k === 'inProcess' ? '—' : pct((ow(k).agentnet.median.remoteCpuUsPerMsg ?? NaN) * ow(k).agentnet.median.msgsPerSec / 1e6))],
      ['  failed sends / sink received', ...onewayCols.map(k => `${failures(ow(k).agentnet)} / ${ow(k).sinkReceived}`)],
      ['raw libp2p framed + ack msgs/s (context), median', ...onewayCols.map(k => fmt(ow(k).raw.median.msgsPerSec))],
      ['  every round', ...onewayCols.map(k => range(ow(k).raw))],
      ['  other processes\' CPU in each round (cores)', ...onewayCols.map(k => ow(k).raw.rounds.map(w => fmt(w.otherCores, 2)).join(', '))],
      ['  agentnet ÷ raw libp2p', ...onewayCols.map(k => pct(ow(k).agentnet.median.msgsPerSec / ow(k).raw.median.msgsPerSec))],
      ['  raw CPU µs/msg A / B', ...onewayCols.map(k => {
        const w = ow(k).raw.median
        return k === 'inProcess' ? `${fmt(w.localCpuUsPerMsg, 1)} (both)` : `${fmt(w.localCpuUsPerMsg, 1)} / ${fmt(w.remoteCpuUsPerMsg, 1)}`
      })]
    ]
    out.push('', `One-way throughput: ${o.rounds} rounds of ${o.total} messages after ${o.warmup} warm-up, window ${o.window}`,
      renderTable(['figure', ...onewayCols.map(k => label[k])], rows))
  }

  const rttCols = (['inProcess', 'separate'] as const).filter(k => r.sections[k]?.rtt != null)
  if (rttCols.length > 0) {
    const rt = (k: Where): Record<RttKind, RttResult> => r.sections[k]!.rtt!
    const kinds: Array<[RttKind, string]> = [
      ['agentnet', 'agentnet request/response (echo)'],
      ['rawStream', 'raw libp2p, one long-lived stream'],
      ['rawNewStream', 'raw libp2p, new stream per request']
    ]
    const rows: string[][] = kinds.map(([kind, name]) => [name, ...rttCols.flatMap(k => {
      const l = rt(k)[kind]
      const cpu = k === 'inProcess' ? fmt(l.localCpuUs) : `${fmt(l.localCpuUs)} / ${fmt(l.remoteCpuUs)}`
      return [fmt(l.p50, 3), fmt(l.p99, 3), fmt(l.mean, 3), cpu, fmt(l.otherCores, 2)]
    })])
    rows.push(['overhead agentnet − raw stream (target p50 ≤ 0.4 ms)', ...rttCols.flatMap(k => {
      const s = rt(k)
      const cpu = k === 'inProcess'
        ? fmt(s.agentnet.localCpuUs - s.rawStream.localCpuUs)
        : `${fmt(s.agentnet.localCpuUs - s.rawStream.localCpuUs)} / ${fmt((s.agentnet.remoteCpuUs ?? NaN) - (s.rawStream.remoteCpuUs ?? NaN))}`
      return [fmt(s.agentnet.p50 - s.rawStream.p50, 3), fmt(s.agentnet.p99 - s.rawStream.p99, 3), fmt(s.agentnet.mean - s.rawStream.mean, 3), cpu, '']
    })])
    // what the signed protocol costs in series at the least: the request signed, verified, the reply signed, verified
    const floorMs = 2000 / r.signPerSec + 2000 / r.verifyPerSec.mean
    rows.push(['  of which Ed25519 in series (2 signs + 2 verifies, same run)', ...rttCols.flatMap(() => [fmt(floorMs, 3), '', '', '', ''])])
    out.push('', `Request/response RTT (ms): ${o.rttRequests} sequential 32 B requests per kind after ${o.rttWarmup} warm-up, interleaved in blocks of ${RTT_BLOCK}; CPU µs per request (A / B); other processes' CPU in cores`,
      renderTable(['figure', ...rttCols.flatMap(k => [`${label[k]}: p50`, 'p99', 'mean', k === 'inProcess' ? 'CPU µs' : 'CPU µs A / B', 'other'])], rows))
  }
  out.push('', `total ${fmt(r.totalSeconds, 1)} s`)
  return out.join('\n')
}

// ---------------------------------------------------------------- main

function positive (name: string, value: string | undefined): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer`)
  return n
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      total: { type: 'string', default: '20000' },
      rounds: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '2000' },
      window: { type: 'string', default: '256' },
      body: { type: 'string', default: '256' },
      'rtt-requests': { type: 'string', default: '2000' },
      'rtt-warmup': { type: 'string', default: '200' },
      'verify-ms': { type: 'string', default: '2000' },
      only: { type: 'string' },
      skip: { type: 'string' }
    }
  })
  const skip = new Set((values.skip ?? '').split(',').filter(x => x !== ''))
  for (const x of skip) {
    if (x !== 'oneway' && x !== 'rtt') throw new Error('--skip takes oneway or rtt')
  }
  const opts: Options = {
    oneway: !skip.has('oneway'),
    rtt: !skip.has('rtt'),
    total: positive('total', values.total),
    rounds: positive('rounds', values.rounds),
    warmup: positive('warmup', values.warmup),
    window: positive('window', values.window),
    bodyBytes: positive('body', values.body),
    rttRequests: positive('rtt-requests', values['rtt-requests']),
    rttWarmup: positive('rtt-warmup', values['rtt-warmup']),
    verifyMs: positive('verify-ms', values['verify-ms'])
  }
  if (values.only != null && values.only !== 'in-process' && values.only !== 'separate') throw new Error('--only must be in-process or separate')

  const t0 = performance.now()
  log(`verify baseline (${opts.verifyMs} ms)`)
  const vStart = measureVerifyRate(opts.verifyMs)
  const sStart = measureSignRate(opts.verifyMs / 2)
  log(`  ${fmt(vStart)} verify/s, ${fmt(sStart)} sign/s`)
  const sections: Report['sections'] = {}
  if (values.only !== 'separate') sections.inProcess = await inProcess(opts)
  if (values.only !== 'in-process') sections.separate = await separateProcesses(opts)
  log(`verify baseline again (${opts.verifyMs} ms)`)
  const vEnd = measureVerifyRate(opts.verifyMs)
  const sEnd = measureSignRate(opts.verifyMs / 2)
  log(`  ${fmt(vEnd)} verify/s, ${fmt(sEnd)} sign/s`)

  const report: Report = {
    node: process.version,
    options: opts,
    verifyPerSec: { start: vStart, end: vEnd, mean: (vStart + vEnd) / 2 },
    signPerSec: (sStart + sEnd) / 2,
    sections,
    totalSeconds: (performance.now() - t0) / 1000
  }
  if (values.json === true) {
    const ratios = Object.fromEntries(Object.entries(sections).map(([k, s]) => [k, {
      onewayMsgsPerVerify: s.oneway != null ? s.oneway.agentnet.median.msgsPerSec / report.verifyPerSec.mean : undefined,
      rttP50OverheadMs: s.rtt != null ? s.rtt.agentnet.p50 - s.rtt.rawStream.p50 : undefined
    }]))
    process.stdout.write(JSON.stringify({ ...report, ratios }, null, 2) + '\n')
  } else {
    process.stdout.write(render(report) + '\n')
  }
}

function abandon (): void {
  for (const child of children) child.kill('SIGKILL')
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    abandon()
    process.exit(130)
  })
}

try {
  await main()
  // libp2p may leave timers behind; the run is over
  process.exit(0)
} catch (err) {
  abandon()
  process.stderr.write(`messaging bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
}
