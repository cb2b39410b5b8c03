/**
 * DHT benchmark: how fast the private agentnet DHT (`/agentnet/kad/1.0.0`)
 * finds a peer by ID, and how long a fresh agent needs before it can send a
 * signed message to a peer it only knows by ID. Real nodes, TCP on
 * 127.0.0.1, all in this one process (they share one JS thread: background
 * DHT traffic of every node competes with the measured one).
 *
 * 1. Lookup latency, networks of 10, 30 and 50 nodes: 2 bootstrap nodes
 *    (`configs/bootstrap.json`, i.e. `dht.mode: 'server'`, with
 *    `connections.inboundConnectionThreshold` raised to 100 000 since every
 *    peer shares the IP 127.0.0.1) and N−2 agents (`configs/default.json`)
 *    whose only contacts are the two bootstrap addresses. Agents run with
 *    `dht.mode: 'server'`: in the default `auto` mode a node on loopback never
 *    sees a public address and stays a DHT client, so agents would neither
 *    answer queries nor enter routing tables (`--agent-mode auto` runs that
 *    anyway). AutoNAT, WebRTC, DCUtR, UPnP, STUN and relay reservations/serving
 *    are off. Nodes come from `createAgentLibp2p` (no messaging layer).
 *    Agents start in batches of 8, 250 ms apart: started all at once, 48
 *    agents' handshakes starve the thread, libp2p's connection monitor aborts
 *    connections whose heartbeat ping times out, and since @libp2p/bootstrap
 *    dials its list only once, some agents stayed alone for good (seen once:
 *    a third of the lookups failed). An agent still without any connection
 *    10 s into the settling is dialled to the bootstraps by the bench, and
 *    the table says how many were (0 in the runs with batches).
 *    After the routing tables settle (every agent's routing table holds
 *    ≥ min(N−1, `--min-rt`) peers and the total has not changed for 2 s, at
 *    most `--settle-max-s`), `--lookups` sequential
 *    `libp2p.peerRouting.findPeer(target, { useCache: false })` from a random
 *    agent X to a random other agent Y. To make sure each one is a network
 *    query and not a local answer:
 *      - X and Y are picked so that X has no open connection to Y (up to 50
 *        random draws; failing that X hangs up on Y first, and that is counted);
 *      - Y is removed from X's kad-dht routing table (otherwise the query's
 *        first hop would be Y itself, which answers with its own record) and
 *        from X's peer store (`peerStore.delete`), so neither `useCache` nor
 *        the dial queue could use an old address;
 *      - every lookup's kad-dht progress events are counted (`onProgress`):
 *        a lookup that sent no FIND_NODE RPC would be reported, and the
 *        found address is checked against Y's real listen address.
 *    Same-run baselines, interleaved with the lookups (X, then a random peer
 *    Z that X is connected to): one hand-encoded FIND_NODE RPC to a DHT
 *    server on a new stream of an open connection (the unit a lookup is made
 *    of); `ping.ping(Z)` on the existing connection (a new stream + 32-byte
 *    echo; it can collide with libp2p's connection-monitor ping, which is
 *    logged); and every 4th lookup `hangUp(Z)` then
 *    `libp2p.dial(<Z's known address>)` + `ping.ping(Z)` (a new TCP + Noise +
 *    yamux connection and a ping). Also reported: the time to the first
 *    FIND_NODE response inside each lookup (≈ one DHT RPC round trip, plus a
 *    dial when the contacted peer was not connected).
 * 2. Start → first signed message by peer ID, 10 nodes: 2 bootstrap nodes
 *    and 8 agents, all from `createAgentNode` (temp homes, fresh keys,
 *    `trust.publicServices: ['echo']`, an `echo` service on every agent).
 *    Bootstraps start first (not timed). The clock starts when the 8 agents'
 *    `start()` are called (all at once); as soon as X's `start()` resolves, X
 *    calls `messaging.send(Y.peerId, 'echo', …)` (Y: a random other agent X
 *    never dialled), retrying on failure, until it succeeds. Reported per
 *    agent DHT mode (`server` and the default `auto`), median of `--reps`
 *    repetitions with fresh nodes, with a breakdown (X started, X's first
 *    connection to a bootstrap, X's initial DHT self-query done — kad-dht
 *    holds every other query until it is —, X's first connection to Y,
 *    success) and whether Y was already in X's peer store or connected when
 *    the successful attempt began.
 *
 * Run: `./node_modules/.bin/node test/bench/dht.bench.ts [--json]`
 * (`--sizes 10,30,50`, `--lookups 100`, `--reps 5`, `--agent-mode server|auto`,
 * `--agent-threshold N` (agents' inboundConnectionThreshold; default: the
 * profile's 25), `--min-rt`, `--settle-max-s`, `--gap-ms` (pause before each
 * measured operation, default 20), `--skip lookup|first`). About 2 minutes.
 * Progress goes to stderr; the tables (or JSON) to stdout. Run no other
 * benchmark at the same time: the machine has 2 cores.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { loadConfig, profilePath } from '../../src/config/index.ts'
import { createAgentLibp2p, DHT_PROTOCOL } from '../../src/node/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import type { ConfigOverrides } from '../../src/config/index.ts'
import type { AgentLibp2p } from '../../src/node/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

type DhtMode = 'server' | 'auto'

const LISTEN = ['/ip4/127.0.0.1/tcp/0']
const BOOTSTRAP_THRESHOLD = 100_000
const LOOKUP_TIMEOUT_MS = 5_000
const FIRST_MSG_GIVE_UP_MS = 30_000
const START_BATCH = 8
const START_BATCH_GAP_MS = 250
/** An agent with no connection this long after the last start is dialled to the bootstraps again */
const REBOOTSTRAP_AFTER_MS = 10_000

function log (msg: string): void {
  process.stderr.write(msg + '\n')
}

function sleep (ms: number): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms))
}

function errMsg (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

function pick<T> (xs: readonly T[]): T {
  const x = xs[Math.floor(Math.random() * xs.length)]
  if (x === undefined) throw new Error('pick from an empty list')
  return x
}

// ---------------------------------------------------------------- statistics

interface Stats {
  p50: number
  p90: number
  min: number
  max: number
  mean: number
  n: number
}

function percentile (sorted: number[], p: number): number {
  const rank = Math.ceil(p / 100 * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? NaN
}

function stats (samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b)
  return {
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    min: s[0] ?? NaN,
    max: s[s.length - 1] ?? NaN,
    mean: s.reduce((a, b) => a + b, 0) / Math.max(1, s.length),
    n: s.length
  }
}

function fmt (n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '–'
}

// ---------------------------------------------------------------- config

/** Everything the benchmark turns off or pins, for every node */
function baseOverrides (bootstrap: string[], threshold: number | undefined, dhtMode: 'server' | 'auto'): ConfigOverrides {
  return {
    listen: LISTEN,
    announce: [],
    bootstrap,
    logLevel: 'silent',
    dht: { enabled: true, mode: dhtMode, addressFilter: 'all' },
    nat: { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 },
    relay: { reserve: false, server: false },
    ...(threshold != null ? { connections: { inboundConnectionThreshold: threshold } } : {})
  }
}

async function bootstrapConfig (bootstrap: string[], extra: ConfigOverrides = {}): Promise<Awaited<ReturnType<typeof loadConfig>>> {
  return await loadConfig({
    defaultsFile: profilePath('bootstrap'),
    overrides: { ...baseOverrides(bootstrap, BOOTSTRAP_THRESHOLD, 'server'), ...extra }
  })
}

async function agentConfig (bootstrap: string[], mode: DhtMode, threshold: number | undefined, extra: ConfigOverrides = {}): Promise<Awaited<ReturnType<typeof loadConfig>>> {
  return await loadConfig({ overrides: { ...baseOverrides(bootstrap, threshold, mode), ...extra } })
}

function tcpAddr (lp: AgentLibp2p): Multiaddr {
  const a = lp.getMultiaddrs().find(m => m.toString().startsWith('/ip4/127.0.0.1/tcp/'))
  if (a == null) throw new Error(`${lp.peerId.toString()} has no 127.0.0.1 TCP address`)
  return a
}

// ---------------------------------------------------------------- kad-dht internals

/** The parts of kad-dht's (internal) routing table this benchmark uses */
interface RoutingTableLike {
  size: number
  find: (peer: PeerId) => Promise<PeerId | undefined>
  remove: (peer: PeerId) => Promise<void>
}

function routingTableOf (lp: AgentLibp2p): RoutingTableLike {
  const rt = (lp.services.dht as unknown as { routingTable?: RoutingTableLike } | undefined)?.routingTable
  if (rt == null || typeof rt.remove !== 'function' || typeof rt.find !== 'function') {
    throw new Error('cannot reach the kad-dht routing table (internal API changed?)')
  }
  return rt
}

// ---------------------------------------------------------------- part 1: lookups

interface LookupSample {
  ms: number
  /** FIND_NODE requests sent before the answer */
  rpcs: number
  /** failed RPCs (QUERY_ERROR) before the answer (later ones are the aborts of RPCs no longer needed) */
  rpcErrors: number
  /** ms to the first FIND_NODE response of the lookup */
  firstResponseMs: number
  /** outbound connections X opened during the lookup */
  newConnections: number
  /** X was connected to Y and hung up first */
  hungUp: boolean
  /** Y was in X's routing table (removed before the lookup) */
  wasInRoutingTable: boolean
}

interface SizeResult {
  nodes: number
  agentMode: DhtMode
  startSeconds: number
  settleSeconds: number
  settledFully: boolean
  /** routing table sizes of the agents when measuring began */
  routingTable: { min: number, median: number, max: number }
  /** open connections per agent when measuring began */
  connections: { min: number, median: number, max: number }
  lookup: Stats
  firstResponse: Stats
  rpcsPerLookup: Stats
  lookupsWithoutRpc: number
  rpcErrors: number
  lookupsWithNewConnection: number
  hungUp: number
  wasInRoutingTable: number
  failures: number
  firstFailure?: string
  pingExisting: Stats
  dhtRpc: Stats
  dialPing: Stats
  rebootstrapped: number
  measureSeconds: number
  /** lookup p50 ÷ single-FIND_NODE p50, ÷ ping-on-existing-connection p50, and ÷ new-connection+ping p50 */
  ratioToRpc: number
  ratioToPing: number
  ratioToDialPing: number
  /** the same process-wide event-loop busy share while measuring (0–1) */
  eventLoopUtilization: number
}

function summary3 (xs: number[]): { min: number, median: number, max: number } {
  const s = stats(xs)
  return { min: s.min, median: s.p50, max: s.max }
}

async function startLookupNetwork (n: number, mode: DhtMode, agentThreshold: number | undefined): Promise<{ bootstraps: AgentLibp2p[], agents: AgentLibp2p[], bootstrapAddrs: string[] }> {
  const userAgent = 'agentnet-bench/dht'
  const b1 = await createAgentLibp2p({ config: await bootstrapConfig([]), privateKey: await generateKeyPair('Ed25519'), userAgent })
  await b1.start()
  const b1Addr = tcpAddr(b1).toString()
  const b2 = await createAgentLibp2p({ config: await bootstrapConfig([b1Addr]), privateKey: await generateKeyPair('Ed25519'), userAgent })
  await b2.start()
  const bootstrapAddrs = [b1Addr, tcpAddr(b2).toString()]
  const agents: AgentLibp2p[] = []
  for (let i = 0; i < n - 2; i++) {
    const config = await agentConfig(bootstrapAddrs, mode, agentThreshold)
    agents.push(await createAgentLibp2p({ config, privateKey: await generateKeyPair('Ed25519'), userAgent }))
  }
  // in batches: 48 agents handshaking with both bootstraps in the same
  // millisecond starve this one thread long enough for dials to time out
  for (let i = 0; i < agents.length; i += START_BATCH) {
    if (i > 0) await sleep(START_BATCH_GAP_MS)
    await Promise.all(agents.slice(i, i + START_BATCH).map(async a => { await a.start() }))
  }
  return { bootstraps: [b1, b2], agents, bootstrapAddrs }
}

async function stopAll (nodes: Array<{ stop: () => Promise<void> | void }>): Promise<void> {
  await Promise.all(nodes.map(async node => { await Promise.resolve().then(async () => { await node.stop() }).catch((err: unknown) => { log(`  stop failed: ${errMsg(err)}`) }) }))
}

/**
 * Wait until every agent's routing table holds ≥ want peers and the total is
 * stable for 2 s. @libp2p/bootstrap dials its list once: an agent whose
 * bootstrap dials failed (or whose every connection was later closed) stays
 * alone for good, so the bench dials the bootstraps again for such agents
 * and counts them.
 */
async function settle (agents: AgentLibp2p[], bootstrapAddrs: string[], want: number, maxMs: number): Promise<{ ms: number, full: boolean, rebootstrapped: number }> {
  const t0 = performance.now()
  const rebootstrapped = new Set<AgentLibp2p>()
  const lastRedial = new Map<AgentLibp2p, number>()
  let lastTotal = -1
  let stableSince = performance.now()
  let lastLog = 0
  while (true) {
    const sizes = agents.map(a => routingTableOf(a).size)
    const total = sizes.reduce((a, b) => a + b, 0)
    const now = performance.now()
    if (total !== lastTotal) {
      lastTotal = total
      stableSince = now
    }
    const ok = Math.min(...sizes) >= want
    if (now - t0 >= REBOOTSTRAP_AFTER_MS) {
      for (const a of agents) {
        if (a.getConnections().length === 0 && now - (lastRedial.get(a) ?? 0) >= REBOOTSTRAP_AFTER_MS) {
          lastRedial.set(a, now)
          rebootstrapped.add(a)
          for (const addr of bootstrapAddrs) {
            a.dial(multiaddr(addr), { signal: AbortSignal.timeout(10_000) }).catch(() => {})
          }
        }
      }
    }
    if (now - lastLog >= 2000) {
      lastLog = now
      const conns = agents.map(a => a.getConnections().length)
      const s = summary3(sizes)
      const c = summary3(conns)
      log(`  settle ${fmt((now - t0) / 1000)} s: routing table ${s.min}/${s.median}/${s.max} (min/med/max, want ≥ ${want}), connections ${c.min}/${c.median}/${c.max}, re-bootstrapped ${rebootstrapped.size}`)
    }
    if (ok && now - stableSince >= 2000) return { ms: now - t0, full: true, rebootstrapped: rebootstrapped.size }
    if (now - t0 >= maxMs) return { ms: now - t0, full: false, rebootstrapped: rebootstrapped.size }
    await sleep(250)
  }
}

async function lookupOnce (agents: AgentLibp2p[]): Promise<LookupSample> {
  // prefer a pair that is not connected
  let x = pick(agents)
  let y = pick(agents.filter(a => a !== x))
  for (let i = 0; i < 50 && x.getConnections(y.peerId).length > 0; i++) {
    x = pick(agents)
    y = pick(agents.filter(a => a !== x))
  }
  const hungUp = x.getConnections(y.peerId).length > 0
  if (hungUp) await x.hangUp(y.peerId)
  const rt = routingTableOf(x)
  const wasInRoutingTable = (await rt.find(y.peerId)) != null
  if (wasInRoutingTable) await rt.remove(y.peerId)
  await x.peerStore.delete(y.peerId)
  if (await x.peerStore.has(y.peerId)) throw new Error('peer store still holds the target after delete')
  if ((await rt.find(y.peerId)) != null) throw new Error('routing table still holds the target after remove')

  let rpcs = 0
  let rpcErrors = 0
  let answered = false
  let firstResponse = NaN
  let newConnections = 0
  const onOpen = (evt: CustomEvent<Connection>): void => {
    if (evt.detail.direction === 'outbound') newConnections++
  }
  x.addEventListener('connection:open', onOpen)
  const t0 = performance.now()
  let found
  try {
    found = await x.peerRouting.findPeer(y.peerId, {
      useCache: false,
      signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
      onProgress: evt => {
        // RPCs still in flight when the answer arrives are aborted: not errors
        if (answered) return
        if (evt.type === 'kad-dht:query:send-query') rpcs++
        else if (evt.type === 'kad-dht:query:query-error') rpcErrors++
        else if (evt.type === 'kad-dht:query:final-peer') answered = true
        else if (evt.type === 'kad-dht:query:peer-response' && Number.isNaN(firstResponse)) firstResponse = performance.now() - t0
      }
    })
  } finally {
    x.removeEventListener('connection:open', onOpen)
  }
  const ms = performance.now() - t0
  if (!found.id.equals(y.peerId)) throw new Error('findPeer returned another peer')
  const want = tcpAddr(y).decapsulateCode(421).toString()
  if (!found.multiaddrs.some(m => m.toString() === want || m.decapsulateCode(421).toString() === want)) {
    throw new Error(`findPeer returned ${found.multiaddrs.map(String).join(', ')}, not ${want}`)
  }
  return { ms, rpcs, rpcErrors, firstResponseMs: firstResponse, newConnections, hungUp, wasInRoutingTable }
}

/** A peer X is connected to (a random agent or bootstrap), or undefined */
function connectedPeer (x: AgentLibp2p, all: AgentLibp2p[]): AgentLibp2p | undefined {
  const connected = all.filter(z => z !== x && x.getConnections(z.peerId).some(c => c.status === 'open'))
  return connected.length > 0 ? pick(connected) : undefined
}

async function pingExisting (agents: AgentLibp2p[], all: AgentLibp2p[]): Promise<number | undefined> {
  const x = pick(agents)
  const z = connectedPeer(x, all)
  if (z == null) return undefined
  const t0 = performance.now()
  await x.services.ping.ping(z.peerId, { signal: AbortSignal.timeout(5000) })
  return performance.now() - t0
}

/**
 * One FIND_NODE RPC, hand-encoded (`type: FIND_NODE (4)`, `key`: a random
 * agent's peer ID multihash), on a new stream of an existing connection to a
 * DHT server X is connected to: the unit a lookup is made of.
 */
async function dhtRpcOnce (agents: AgentLibp2p[], all: AgentLibp2p[]): Promise<number | undefined> {
  const x = pick(agents)
  const servers: AgentLibp2p[] = []
  for (const z of all) {
    if (z === x || !x.getConnections(z.peerId).some(c => c.status === 'open')) continue
    const peer = await x.peerStore.get(z.peerId).catch(() => undefined)
    if (peer?.protocols.includes(DHT_PROTOCOL) === true) servers.push(z)
  }
  if (servers.length === 0) return undefined
  const z = pick(servers)
  const key = pick(agents.filter(a => a !== x && a !== z)).peerId.toMultihash().bytes
  const request = new Uint8Array([0x08, 0x04, 0x12, key.byteLength, ...key])
  const signal = AbortSignal.timeout(5000)
  const t0 = performance.now()
  const stream = await x.dialProtocol(z.peerId, DHT_PROTOCOL, { signal })
  const lp = lpStream(stream)
  await lp.write(request, { signal })
  const response = await lp.read({ signal })
  const ms = performance.now() - t0
  await stream.close().catch(() => {})
  if (response.byteLength < 2) throw new Error('empty FIND_NODE response')
  return ms
}

async function dialPing (agents: AgentLibp2p[]): Promise<number | undefined> {
  const x = pick(agents)
  const z = connectedPeer(x, agents)
  if (z == null) return undefined
  const addr = tcpAddr(z)
  await x.hangUp(z.peerId)
  const t0 = performance.now()
  const signal = AbortSignal.timeout(5000)
  await x.dial(addr, { signal })
  await x.services.ping.ping(z.peerId, { signal })
  return performance.now() - t0
}

async function measureSize (n: number, opts: Options): Promise<SizeResult> {
  log(`network of ${n} nodes (2 bootstraps + ${n - 2} agents, agent dht.mode ${opts.agentMode})`)
  const t0 = performance.now()
  const { bootstraps, agents, bootstrapAddrs } = await startLookupNetwork(n, opts.agentMode, opts.agentThreshold)
  const startSeconds = (performance.now() - t0) / 1000
  log(`  started in ${fmt(startSeconds)} s`)
  try {
    const all = [...bootstraps, ...agents]
    const want = Math.min(n - 1, opts.minRt)
    const settled = await settle(agents, bootstrapAddrs, opts.agentMode === 'auto' ? Math.min(2, want) : want, opts.settleMaxS * 1000)
    log(`  ${settled.full ? 'settled' : 'NOT fully settled'} after ${fmt(settled.ms / 1000)} s`)
    const rtSizes = agents.map(a => routingTableOf(a).size)
    const connCounts = agents.map(a => a.getConnections().length)

    // warm-up: a few unmeasured operations of each kind
    for (let i = 0; i < 3; i++) {
      await lookupOnce(agents).catch(() => {})
      await pingExisting(agents, all).catch(() => {})
    }

    const samples: LookupSample[] = []
    const pings: number[] = []
    const rpcs: number[] = []
    const dials: number[] = []
    const m0 = performance.now()
    let failures = 0
    let firstFailure: string | undefined
    const elu0 = performance.eventLoopUtilization()
    for (let i = 0; i < opts.lookups; i++) {
      await sleep(opts.gapMs)
      try {
        samples.push(await lookupOnce(agents))
      } catch (err) {
        failures++
        firstFailure ??= errMsg(err)
      }
      await sleep(opts.gapMs)
      const p = await pingExisting(agents, all).catch((err: unknown) => { log(`  ping failed: ${errMsg(err)}`); return undefined })
      if (p != null) pings.push(p)
      await sleep(opts.gapMs)
      const r = await dhtRpcOnce(agents, all).catch((err: unknown) => { log(`  FIND_NODE RPC failed: ${errMsg(err)}`); return undefined })
      if (r != null) rpcs.push(r)
      if (i % 4 === 0) {
        await sleep(opts.gapMs)
        const d = await dialPing(agents).catch((err: unknown) => { log(`  dial+ping failed: ${errMsg(err)}`); return undefined })
        if (d != null) dials.push(d)
      }
      if ((i + 1) % 25 === 0) {
        const l = stats(samples.map(s => s.ms))
        log(`  ${i + 1}/${opts.lookups} lookups: p50 ${fmt(l.p50)} ms p90 ${fmt(l.p90)} ms, failures ${failures}`)
      }
    }
    const elu = performance.eventLoopUtilization(elu0)
    const measureSeconds = (performance.now() - m0) / 1000
    const lookup = stats(samples.map(s => s.ms))
    const pingS = stats(pings)
    const dialS = stats(dials)
    const rpcS = stats(rpcs)
    return {
      nodes: n,
      agentMode: opts.agentMode,
      startSeconds,
      settleSeconds: settled.ms / 1000,
      settledFully: settled.full,
      routingTable: summary3(rtSizes),
      connections: summary3(connCounts),
      lookup,
      firstResponse: stats(samples.map(s => s.firstResponseMs).filter(Number.isFinite)),
      rpcsPerLookup: stats(samples.map(s => s.rpcs)),
      lookupsWithoutRpc: samples.filter(s => s.rpcs === 0).length,
      rpcErrors: samples.reduce((a, s) => a + s.rpcErrors, 0),
      lookupsWithNewConnection: samples.filter(s => s.newConnections > 0).length,
      hungUp: samples.filter(s => s.hungUp).length,
      wasInRoutingTable: samples.filter(s => s.wasInRoutingTable).length,
      failures,
      firstFailure,
      pingExisting: pingS,
      dhtRpc: rpcS,
      dialPing: dialS,
      rebootstrapped: settled.rebootstrapped,
      measureSeconds,
      ratioToRpc: lookup.p50 / rpcS.p50,
      ratioToPing: lookup.p50 / pingS.p50,
      ratioToDialPing: lookup.p50 / dialS.p50,
      eventLoopUtilization: elu.utilization
    }
  } finally {
    await stopAll([...agents, ...bootstraps])
  }
}

// ---------------------------------------------------------------- part 2: first message

interface FirstMessageSample {
  mode: DhtMode
  /** agents' start() called → X's first successful send */
  totalMs: number
  /** → X's start() resolved */
  xStartedMs: number
  /** → X's first connection to a bootstrap node */
  xBootstrapMs: number
  /** → X's kad-dht initial self-query finished (user queries wait for it); NaN if it failed */
  xSelfQueryMs: number
  /** → X's first connection to Y */
  xConnectedToYMs: number
  /** the successful attempt alone (send call → reply) */
  lastAttemptMs: number
  attempts: number
  firstError?: string
  /** when the successful attempt began: Y was in X's peer store / X was connected to Y */
  yKnownBefore: boolean
  yConnectedBefore: boolean
  /** event-loop busy share of this process (all 10 nodes) from start() to the reply, 0–1 */
  eventLoopUtilization: number
}

const liveHomes = new Set<string>()

async function makeHome (): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'andht-'))
  liveHomes.add(home)
  return home
}

async function firstMessageOnce (mode: DhtMode, agentThreshold: number | undefined): Promise<FirstMessageSample> {
  const nodes: AgentNode[] = []
  const homes: string[] = []
  const newNode = async (config: Awaited<ReturnType<typeof loadConfig>>): Promise<AgentNode> => {
    const home = await makeHome()
    homes.push(home)
    const node = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home })
    nodes.push(node)
    return node
  }
  const started: AgentNode[] = []
  try {
    const trust = { trust: { peers: [], publicServices: ['echo'], strict: false } }
    const b1 = await newNode(await bootstrapConfig([], trust))
    await b1.start()
    started.push(b1)
    const b1Addr = tcpAddr(b1.libp2p).toString()
    const b2 = await newNode(await bootstrapConfig([b1Addr], trust))
    await b2.start()
    started.push(b2)
    const bootstrapAddrs = [b1Addr, tcpAddr(b2.libp2p).toString()]
    const bootstrapIds = new Set([b1.peerId.toString(), b2.peerId.toString()])
    const agents: AgentNode[] = []
    for (let i = 0; i < 8; i++) {
      const node = await newNode(await agentConfig(bootstrapAddrs, mode, agentThreshold, trust))
      node.registerService('echo', msg => ({ body: msg.body, contentType: msg.contentType }))
      agents.push(node)
    }
    const x = agents[0]!
    const y = pick(agents.slice(1))
    let xBootstrapAt = NaN
    const onConnect = (evt: CustomEvent<PeerId>): void => {
      if (Number.isNaN(xBootstrapAt) && bootstrapIds.has(evt.detail.toString())) xBootstrapAt = performance.now()
    }
    let xConnectedToYAt = NaN
    const onConnectY = (evt: CustomEvent<PeerId>): void => {
      if (Number.isNaN(xConnectedToYAt) && evt.detail.equals(y.peerId)) xConnectedToYAt = performance.now()
    }
    let xSelfQueryAt = NaN
    const onSelfQuery = (): void => {
      if (Number.isNaN(xSelfQueryAt)) xSelfQueryAt = performance.now()
    }
    // kad-dht reports its self-query on the node's event bus; not in libp2p's typed event map
    const bus = x.libp2p as unknown as { addEventListener: (type: string, fn: () => void) => void, removeEventListener: (type: string, fn: () => void) => void }
    x.libp2p.addEventListener('peer:connect', onConnect)
    x.libp2p.addEventListener('peer:connect', onConnectY)
    bus.addEventListener('kad-dht:query:self', onSelfQuery)

    const elu0 = performance.eventLoopUtilization()
    const t0 = performance.now()
    const starts = agents.map(a => a.start().then(() => { started.push(a) }))
    await starts[0]
    const xStartedAt = performance.now()
    const body = new TextEncoder().encode('hello from the dht bench')
    let attempts = 0
    let firstError: string | undefined
    let lastAttemptMs = NaN
    let yKnownBefore = false
    let yConnectedBefore = false
    while (true) {
      if (performance.now() - t0 > FIRST_MSG_GIVE_UP_MS) throw new Error(`no successful send within ${FIRST_MSG_GIVE_UP_MS} ms: ${firstError}`)
      attempts++
      yKnownBefore = await x.libp2p.peerStore.has(y.peerId)
      yConnectedBefore = x.libp2p.getConnections(y.peerId).length > 0
      const a0 = performance.now()
      try {
        const reply = await x.send(y.peerId, 'echo', body, 'text/plain; charset=utf-8', { retries: 0 })
        if (reply.from !== y.peerId.toString() || new TextDecoder().decode(reply.body) !== 'hello from the dht bench') {
          throw new Error('wrong echo')
        }
        lastAttemptMs = performance.now() - a0
        break
      } catch (err) {
        firstError ??= errMsg(err)
        await sleep(25)
      }
    }
    const doneAt = performance.now()
    const elu = performance.eventLoopUtilization(elu0).utilization
    x.libp2p.removeEventListener('peer:connect', onConnect)
    x.libp2p.removeEventListener('peer:connect', onConnectY)
    bus.removeEventListener('kad-dht:query:self', onSelfQuery)
    await Promise.all(starts)
    return {
      mode,
      totalMs: doneAt - t0,
      xStartedMs: xStartedAt - t0,
      xBootstrapMs: xBootstrapAt - t0,
      xSelfQueryMs: xSelfQueryAt - t0,
      xConnectedToYMs: xConnectedToYAt - t0,
      lastAttemptMs,
      attempts,
      firstError,
      yKnownBefore,
      yConnectedBefore,
      eventLoopUtilization: elu
    }
  } finally {
    await stopAll(started)
    for (const home of homes) {
      await rm(home, { recursive: true, force: true })
      liveHomes.delete(home)
    }
  }
}

interface FirstMessageResult {
  mode: DhtMode
  samples: FirstMessageSample[]
  total: Stats
  xStarted: Stats
  xBootstrap: Stats
  xSelfQuery: Stats
  xConnectedToY: Stats
  lastAttempt: Stats
}

// ---------------------------------------------------------------- output

interface Options {
  sizes: number[]
  lookups: number
  reps: number
  agentMode: DhtMode
  agentThreshold: number | undefined
  minRt: number
  settleMaxS: number
  gapMs: number
  lookup: boolean
  first: boolean
}

interface Report {
  node: string
  options: Options
  lookups: SizeResult[]
  firstMessage: FirstMessageResult[]
  totalSeconds: number
}

function renderTable (header: string[], rows: string[][]): string {
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map(r => (r[i] ?? '').length)))
  const line = (r: string[]): string => '| ' + r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join(' | ') + ' |'
  const sep = '|' + widths.map((w, i) => i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':').join('|') + '|'
  return [line(header), sep, ...rows.map(line)].join('\n')
}

function render (r: Report): string {
  const out: string[] = []
  if (r.lookups.length > 0) {
    out.push(`1. DHT findPeer(useCache: false), ${r.options.lookups} sequential lookups per size, agent → agent, target removed from the querier's routing table and peer store first; all nodes in one process, Node ${r.node}`)
    const cols = r.lookups.map(s => `${s.nodes} nodes`)
    const row = (name: string, f: (s: SizeResult) => string): string[] => [name, ...r.lookups.map(f)]
    out.push(renderTable(['figure', ...cols], [
      row('lookup p50 (ms)', s => fmt(s.lookup.p50, 2)),
      row('lookup p90 (ms)', s => fmt(s.lookup.p90, 2)),
      row('lookup min..max (ms)', s => `${fmt(s.lookup.min, 1)}..${fmt(s.lookup.max, 1)}`),
      row('first FIND_NODE response p50 (ms)', s => fmt(s.firstResponse.p50, 2)),
      row('baseline: one FIND_NODE RPC p50 (ms)', s => fmt(s.dhtRpc.p50, 2)),
      row('baseline: one FIND_NODE RPC p90 (ms)', s => fmt(s.dhtRpc.p90, 2)),
      row('baseline: ping, open conn p50 (ms)', s => fmt(s.pingExisting.p50, 2)),
      row('baseline: ping, open conn p90 (ms)', s => fmt(s.pingExisting.p90, 2)),
      row('baseline: dial+ping p50 (ms)', s => `${fmt(s.dialPing.p50, 2)} (n=${s.dialPing.n})`),
      row('ratio lookup p50 / FIND_NODE RPC p50', s => fmt(s.ratioToRpc, 1)),
      row('ratio lookup p50 / ping p50', s => fmt(s.ratioToPing, 1)),
      row('ratio lookup p50 / dial+ping p50', s => fmt(s.ratioToDialPing, 1)),
      row('FIND_NODE RPCs per lookup p50 (p90)', s => `${fmt(s.rpcsPerLookup.p50, 0)} (${fmt(s.rpcsPerLookup.p90, 0)})`),
      row('lookups that opened a connection', s => `${s.lookupsWithNewConnection}/${s.lookup.n}`),
      row('target was in querier routing table', s => `${s.wasInRoutingTable}/${s.lookup.n}`),
      row('pairs that had to hang up first', s => `${s.hungUp}/${s.lookup.n}`),
      row('lookups with no RPC (local answer)', s => String(s.lookupsWithoutRpc)),
      row('failed lookups / failed RPCs', s => `${s.failures} / ${s.rpcErrors}`),
      row('agent routing table min/med/max', s => `${s.routingTable.min}/${s.routingTable.median}/${s.routingTable.max}`),
      row('agent connections min/med/max', s => `${s.connections.min}/${s.connections.median}/${s.connections.max}`),
      row('agents re-dialled to bootstraps by bench', s => String(s.rebootstrapped)),
      row('start / settle / measure (s)', s => `${fmt(s.startSeconds)} / ${fmt(s.settleSeconds)}${s.settledFully ? '' : ' (cap)'} / ${fmt(s.measureSeconds)}`),
      row('event-loop busy while measuring', s => `${fmt(s.eventLoopUtilization * 100, 0)} %`)
    ]))
    for (const s of r.lookups) {
      if (s.firstFailure != null) out.push(`  ${s.nodes} nodes: first failure: ${s.firstFailure}`)
    }
    out.push(`agents: dht.mode '${r.options.agentMode}', inboundConnectionThreshold ${r.options.agentThreshold ?? 'profile default (25)'}; bootstraps: bootstrap profile, inboundConnectionThreshold ${BOOTSTRAP_THRESHOLD}`)
  }
  if (r.firstMessage.length > 0) {
    if (out.length > 0) out.push('')
    out.push(`2. Start → first signed message by peer ID (createAgentNode, 2 bootstraps + 8 agents, X → random Y it never dialled), ${r.options.reps} fresh networks per mode`)
    const cols = r.firstMessage.map(f => `agents dht.mode ${f.mode}`)
    const row = (name: string, g: (f: FirstMessageResult) => string): string[] => [name, ...r.firstMessage.map(g)]
    out.push(renderTable(['figure', ...cols], [
      row('start() → first echo reply, median (ms)', f => fmt(f.total.p50, 0)),
      row('  min..max (ms)', f => `${fmt(f.total.min, 0)}..${fmt(f.total.max, 0)}`),
      row('start() → X started, median (ms)', f => fmt(f.xStarted.p50, 0)),
      row('start() → X connected to a bootstrap, median (ms)', f => fmt(f.xBootstrap.p50, 0)),
      row('start() → X DHT self-query done, median (ms)', f => `${fmt(f.xSelfQuery.p50, 0)} (n=${f.xSelfQuery.n})`),
      row('start() → X connected to Y, median (ms)', f => fmt(f.xConnectedToY.p50, 0)),
      row('successful send() call alone, median (ms)', f => fmt(f.lastAttempt.p50, 0)),
      row('event-loop busy, start() → reply, median', f => `${fmt(stats(f.samples.map(s => s.eventLoopUtilization * 100)).p50, 0)} %`),
      row('send attempts (total over reps)', f => String(f.samples.reduce((a, s) => a + s.attempts, 0))),
      row('Y already in X peer store at success attempt', f => `${f.samples.filter(s => s.yKnownBefore).length}/${f.samples.length}`),
      row('X already connected to Y at success attempt', f => `${f.samples.filter(s => s.yConnectedBefore).length}/${f.samples.length}`),
      row('samples (ms)', f => f.samples.map(s => fmt(s.totalMs, 0)).join(' '))
    ]))
    for (const f of r.firstMessage) {
      const errs = f.samples.map(s => s.firstError).filter((e): e is string => e != null)
      if (errs.length > 0) out.push(`  ${f.mode}: first failed attempt: ${errs[0]}`)
    }
  }
  out.push('', `total ${fmt(r.totalSeconds)} s`)
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
      sizes: { type: 'string', default: '10,30,50' },
      lookups: { type: 'string', default: '100' },
      reps: { type: 'string', default: '5' },
      'agent-mode': { type: 'string', default: 'server' },
      'agent-threshold': { type: 'string' },
      'min-rt': { type: 'string', default: '8' },
      'settle-max-s': { type: 'string', default: '30' },
      'gap-ms': { type: 'string', default: '20' },
      skip: { type: 'string' }
    }
  })
  const skip = new Set((values.skip ?? '').split(',').filter(x => x !== ''))
  for (const x of skip) {
    if (x !== 'lookup' && x !== 'first') throw new Error('--skip takes lookup or first')
  }
  const mode = values['agent-mode']
  if (mode !== 'server' && mode !== 'auto') throw new Error('--agent-mode must be server or auto')
  const opts: Options = {
    sizes: (values.sizes ?? '').split(',').map(s => positive('sizes', s)),
    lookups: positive('lookups', values.lookups),
    reps: positive('reps', values.reps),
    agentMode: mode,
    agentThreshold: values['agent-threshold'] != null ? positive('agent-threshold', values['agent-threshold']) : undefined,
    minRt: positive('min-rt', values['min-rt']),
    settleMaxS: positive('settle-max-s', values['settle-max-s']),
    gapMs: positive('gap-ms', values['gap-ms']),
    lookup: !skip.has('lookup'),
    first: !skip.has('first')
  }
  for (const n of opts.sizes) if (n < 4) throw new Error('--sizes: each network needs at least 4 nodes')

  const t0 = performance.now()
  const lookups: SizeResult[] = []
  if (opts.lookup) {
    for (const n of opts.sizes) {
      lookups.push(await measureSize(n, opts))
    }
  }
  const firstMessage: FirstMessageResult[] = []
  if (opts.first) {
    const modes: DhtMode[] = ['server', 'auto']
    const samples: Record<DhtMode, FirstMessageSample[]> = { server: [], auto: [] }
    // one unmeasured run first: module loading and JIT warm-up
    log('first message: warm-up run')
    await firstMessageOnce('server', opts.agentThreshold)
    for (let i = 0; i < opts.reps; i++) {
      // alternate the modes so that drift hits both alike
      for (const m of modes) {
        const s = await firstMessageOnce(m, opts.agentThreshold)
        samples[m].push(s)
        log(`  rep ${i + 1}/${opts.reps} ${m.padEnd(6)} first reply after ${fmt(s.totalMs, 0)} ms (X started ${fmt(s.xStartedMs, 0)}, bootstrap conn ${fmt(s.xBootstrapMs, 0)}, self-query ${fmt(s.xSelfQueryMs, 0)}, conn to Y ${fmt(s.xConnectedToYMs, 0)}, last send ${fmt(s.lastAttemptMs, 0)} ms, ${s.attempts} attempt(s)${s.firstError != null ? `, first error ${s.firstError}` : ''})`)
      }
    }
    for (const m of modes) {
      const ss = samples[m]
      firstMessage.push({
        mode: m,
        samples: ss,
        total: stats(ss.map(s => s.totalMs)),
        xStarted: stats(ss.map(s => s.xStartedMs)),
        xBootstrap: stats(ss.map(s => s.xBootstrapMs).filter(Number.isFinite)),
        xSelfQuery: stats(ss.map(s => s.xSelfQueryMs).filter(Number.isFinite)),
        xConnectedToY: stats(ss.map(s => s.xConnectedToYMs).filter(Number.isFinite)),
        lastAttempt: stats(ss.map(s => s.lastAttemptMs))
      })
    }
  }
  const report: Report = { node: process.version, options: opts, lookups, firstMessage, totalSeconds: (performance.now() - t0) / 1000 }
  if (values.json === true) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n')
  } else {
    process.stdout.write(render(report) + '\n')
  }
}

function abandon (): void {
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
  // libp2p may leave timers behind; the run is over
  process.exit(0)
} catch (err) {
  abandon()
  process.stderr.write(`dht bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
}
