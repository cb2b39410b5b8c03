/**
 * IPC bulk benchmark (issue 16) in the user's setting: four processes, node A
 * and node B (`agentnet start`, TCP on 127.0.0.1), an echo agent on B (its
 * own process, on B's IPC socket) and the client agent on A (this process, on
 * A's IPC socket); every body crosses four IPC hops and one libp2p hop. Beside
 * it, in the same run: a raw libp2p stream between two bare libp2p processes
 * (this process and `msg-peer.ts raw`: TCP, Noise, yamux, framed echo on one
 * long-lived stream) and raw TCP (this process and `ipc-peer.ts tcp`: 4-byte
 * length-prefixed echo).
 *
 * Figures (each a round trip: the body goes out and comes back; MB/s counts
 * the body once, the same for every row):
 * - bulk MB/s at 1 MiB bodies with 1, 8 and 32 in flight: the SDK's binary
 *   path, and a plain JSON client sending `bodyBase64` lines as a Python
 *   stdlib agent writes them (its echo agent is plain JSON too);
 * - bulk MB/s at 64 KiB with 1, 8 and 32 in flight on the binary path;
 * - 64 B round trip p50/p99, one at a time;
 * - 64 B requests/s with 64 in flight.
 * Targets: 1 MiB binary ≥ 50 % of raw libp2p, plain JSON ≥ 25 %, 64 KiB
 * binary ≥ 40 %, 64 B p50 ≤ 3× raw libp2p, 64 in flight ≥ 40 % of raw.
 *
 * Bodies are random bytes with the high bit set: random ASCII now and then
 * looks like an e-mail address to the leakage guard, which scans bodies.
 *
 * Run: `./node_modules/.bin/node test/bench/ipc-bulk.bench.ts [--quick] [--json]`
 * (`--quick`: a fraction of the requests, under a minute, for checking that it
 * runs; figures from it mean little). Progress goes to stderr, the table (or
 * JSON) to stdout. Timings on a shared machine are not the product's: run it on
 * a quiet one. Run no other benchmark at the same time.
 */

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { connectClient } from '../../src/client/index.ts'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import { onJsonLines, onLengthPrefixed } from './fixtures/stream-readers.ts'
import { createBareNode, RAW_ECHO, RawClient } from './fixtures/msg-nodes.ts'
import type { AgentnetClient } from '../../src/client/index.ts'
import type { RunningNode } from '../helpers/cli.ts'
import type { ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const IPC_PEER = join(ROOT, 'test', 'bench', 'fixtures', 'ipc-peer.ts')
const MSG_PEER = join(ROOT, 'test', 'bench', 'fixtures', 'msg-peer.ts')
const MIB = 1024 * 1024

const { values: args } = parseArgs({ options: { quick: { type: 'boolean' }, json: { type: 'boolean' } } })
const quick = args.quick === true
const SIZES = quick
  ? { bulk1m: 24, bulk64k: 96, rtt: 200, rttWarmup: 50, rps: 2_000 }
  : { bulk1m: 256, bulk64k: 2_048, rtt: 2_000, rttWarmup: 200, rps: 20_000 }

function log (msg: string): void {
  process.stderr.write(msg + '\n')
}

/** A body of random bytes that are not ASCII */
function body (size: number): Buffer {
  const bytes = randomBytes(size)
  for (let i = 0; i < bytes.length; i++) bytes[i] = (bytes[i] ?? 0) | 0x80
  return bytes
}

type Send = (body: Buffer) => Promise<number>

/** One of the compared paths: sends a body, resolves with the echoed length */
interface Path {
  name: string
  send: Send
}

async function child (file: string, argv: string[]): Promise<{ proc: ChildProcess, ready: any }> {
  const proc = spawn(process.execPath, [file, ...argv], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = createInterface({ input: proc.stdout! })
  const ready = await new Promise<any>((resolve, reject) => {
    lines.once('line', line => { resolve(JSON.parse(line)) })
    proc.once('exit', code => { reject(new Error(`${file} ${argv.join(' ')} exited ${code}`)) })
  })
  return { proc, ready }
}

/** A plain JSON client of the IPC socket: one line per request, bytes as bodyBase64 */
class PlainClient {
  private readonly socket: Socket
  private nextId = 1
  private readonly pending = new Map<number, (msg: any) => void>()

  constructor (socket: Socket) {
    this.socket = socket
    onJsonLines(socket, msg => {
      this.pending.get(msg.id)?.(msg)
      this.pending.delete(msg.id)
    })
  }

  static async connect (path: string): Promise<PlainClient> {
    const socket = createConnection(path)
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    return new PlainClient(socket)
  }

  async call (method: string, params: unknown): Promise<any> {
    const id = this.nextId++
    const { promise, resolve } = Promise.withResolvers<any>()
    this.pending.set(id, resolve)
    this.socket.write(JSON.stringify({ jsonrpc: '2.0', id, method, params }) + '\n')
    const msg = await promise
    if (msg.error != null) throw new Error(`${msg.error.data?.code}: ${msg.error.message}`)
    return msg.result
  }

  close (): void {
    this.socket.destroy()
  }
}

/** Raw TCP echo with a 4-byte length prefix; answers arrive in order */
class TcpClient {
  private readonly socket: Socket
  private readonly waiters: Array<(n: number) => void> = []

  constructor (socket: Socket) {
    this.socket = socket
    socket.setNoDelay(true)
    onLengthPrefixed(socket, frame => { this.waiters.shift()?.(frame.length - 4) })
  }

  static async connect (port: number): Promise<TcpClient> {
    const socket = createConnection(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    return new TcpClient(socket)
  }

  async send (data: Buffer): Promise<number> {
    const { promise, resolve } = Promise.withResolvers<number>()
    this.waiters.push(resolve)
    const prefix = Buffer.allocUnsafe(4)
    prefix.writeUInt32BE(data.length)
    this.socket.write(prefix)
    this.socket.write(data)
    return promise
  }

  close (): void {
    this.socket.destroy()
  }
}

/** `total` sends of `data`, `inflight` at a time; seconds taken */
async function drive (send: Send, data: Buffer, total: number, inflight: number): Promise<number> {
  let started = 0
  const t0 = performance.now()
  const worker = async (): Promise<void> => {
    while (started < total) {
      started++
      const n = await send(data)
      if (n !== data.length) throw new Error(`echo returned ${n} bytes for ${data.length}`)
    }
  }
  await Promise.all(Array.from({ length: Math.min(inflight, total) }, worker))
  return (performance.now() - t0) / 1000
}

async function latencies (send: Send, data: Buffer, count: number, warmup: number): Promise<{ p50: number, p99: number }> {
  for (let i = 0; i < warmup; i++) await send(data)
  const times: number[] = []
  for (let i = 0; i < count; i++) {
    const t0 = performance.now()
    await send(data)
    times.push(performance.now() - t0)
  }
  times.sort((x, y) => x - y)
  return { p50: times[Math.floor(times.length * 0.5)] ?? NaN, p99: times[Math.floor(times.length * 0.99)] ?? NaN }
}

interface Row { measure: string, path: string, value: number, unit: string, vsLibp2p?: number, vsTcp?: number, target?: string }

async function main (): Promise<void> {
  const homes: string[] = []
  const nodes: RunningNode[] = []
  const children: ChildProcess[] = []
  const closers: Array<() => void | Promise<void>> = []
  try {
    log('starting node A and node B …')
    const config = { nat: { autonat: false, webrtc: false, dcutr: false }, relay: { reserve: false }, trust: { publicServices: ['echo', 'echo-plain'] }, messaging: { requestTimeoutMs: 120_000 } }
    const started: Array<{ home: string, peerId: string, address: string }> = []
    for (let i = 0; i < 2; i++) {
      const home = await makeHome('an-ipcb-')
      homes.push(home)
      await writeFile(join(home, 'config.json'), JSON.stringify(config))
      nodes.push(await startNode(home, ['--config', join(home, 'config.json')]))
      const id = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', home])
      started.push({ home, peerId: id.peerId, address: id.addresses[0] ?? '' })
    }
    const [a, b] = started as [typeof started[0], typeof started[0]]
    await runJson(['connect', b.address, '--home', a.home])
    // the user's setting for bulk traffic: the two agents trust each other (a stranger's requests in flight are bounded, issue 9)
    const invite = await runJson<{ code: string }>(['invite', 'create', '--home', b.home])
    await runJson(['invite', 'accept', invite.code, '--home', a.home])

    log('starting the echo agents on B, the raw libp2p peer and the TCP echo …')
    for (const [mode, service] of [['echo-binary', 'echo'], ['echo-plain', 'echo-plain']] as const) {
      children.push((await child(IPC_PEER, [mode, b.home, service])).proc)
    }
    const rawPeer = await child(MSG_PEER, ['raw'])
    children.push(rawPeer.proc)
    const tcpPeer = await child(IPC_PEER, ['tcp'])
    children.push(tcpPeer.proc)

    // the client agent on A: the SDK (binary) and a plain JSON client
    const sdk: AgentnetClient = await connectClient({ home: a.home })
    closers.push(() => { sdk.close() })
    if (!sdk.binary) throw new Error('node A did not agree to binary bodies')
    const plain = await PlainClient.connect(join(a.home, 'agentnet.sock'))
    closers.push(() => { plain.close() })
    const bare = await createBareNode()
    closers.push(async () => { await bare.stop() })
    const rawPeerId = peerIdFromString(rawPeer.ready.peerId)
    await bare.dial(multiaddr(rawPeer.ready.addrs[0]))
    const raw = new RawClient(bare, rawPeerId)
    await raw.open(RAW_ECHO)
    closers.push(() => { raw.close() })
    const tcp = await TcpClient.connect(tcpPeer.ready.port)
    closers.push(() => { tcp.close() })

    const paths: Record<string, Path> = {
      binary: { name: 'agentnet, SDK binary', send: async data => (await sdk.send({ to: b.peerId, service: 'echo', bytes: data, timeoutMs: 120_000 })).bytes?.byteLength ?? -1 },
      plain: {
        name: 'agentnet, plain JSON base64',
        send: async data => {
          const result = await plain.call('msg.send', { to: b.peerId, service: 'echo-plain', bodyBase64: data.toString('base64'), timeoutMs: 120_000 })
          return Buffer.from(result.bodyBase64 ?? '', 'base64').length
        }
      },
      libp2p: { name: 'raw libp2p stream', send: async data => (await raw.request(data)).byteLength },
      tcp: { name: 'raw TCP', send: async data => tcp.send(data) }
    }

    const rows: Row[] = []
    const bulk = async (size: number, total: number, which: string[]): Promise<void> => {
      const data = body(size)
      for (const inflight of [1, 8, 32]) {
        const figures: Record<string, number> = {}
        for (const key of [...which, 'libp2p', 'tcp']) {
          const path = paths[key] as Path
          await drive(path.send, data, Math.min(4, total), Math.min(inflight, 4)) // warm-up
          const seconds = await drive(path.send, data, total, inflight)
          figures[key] = total * size / seconds / 1e6
          log(`  ${size === MIB ? '1 MiB' : `${size / 1024} KiB`} × ${total}, ${inflight} in flight, ${path.name}: ${figures[key]!.toFixed(1)} MB/s`)
        }
        for (const key of which) {
          const target = size === MIB ? (key === 'binary' ? '≥ 50 %' : '≥ 25 %') : '≥ 40 %'
          rows.push({ measure: `${size === MIB ? '1 MiB' : '64 KiB'} bulk, ${inflight} in flight`, path: paths[key]!.name, value: figures[key]!, unit: 'MB/s', vsLibp2p: figures[key]! / figures.libp2p!, vsTcp: figures[key]! / figures.tcp!, target })
        }
        rows.push({ measure: `${size === MIB ? '1 MiB' : '64 KiB'} bulk, ${inflight} in flight`, path: paths.libp2p!.name, value: figures.libp2p!, unit: 'MB/s' })
        rows.push({ measure: `${size === MIB ? '1 MiB' : '64 KiB'} bulk, ${inflight} in flight`, path: paths.tcp!.name, value: figures.tcp!, unit: 'MB/s' })
      }
    }

    log('bulk, 1 MiB bodies …')
    await bulk(MIB, SIZES.bulk1m, ['binary', 'plain'])
    log('bulk, 64 KiB bodies …')
    await bulk(64 * 1024, SIZES.bulk64k, ['binary'])

    log('64 B round trips, one at a time …')
    const small = body(64)
    const rtt: Record<string, { p50: number, p99: number }> = {}
    for (const key of ['binary', 'libp2p', 'tcp']) {
      rtt[key] = await latencies(paths[key]!.send, small, SIZES.rtt, SIZES.rttWarmup)
      log(`  ${paths[key]!.name}: p50 ${rtt[key]!.p50.toFixed(3)} ms, p99 ${rtt[key]!.p99.toFixed(3)} ms`)
    }
    rows.push({ measure: '64 B round trip p50', path: paths.binary!.name, value: rtt.binary!.p50, unit: 'ms', vsLibp2p: rtt.binary!.p50 / rtt.libp2p!.p50, vsTcp: rtt.binary!.p50 / rtt.tcp!.p50, target: '≤ 3×' })
    rows.push({ measure: '64 B round trip p99', path: paths.binary!.name, value: rtt.binary!.p99, unit: 'ms', vsLibp2p: rtt.binary!.p99 / rtt.libp2p!.p99, vsTcp: rtt.binary!.p99 / rtt.tcp!.p99 })
    for (const key of ['libp2p', 'tcp']) {
      rows.push({ measure: '64 B round trip p50', path: paths[key]!.name, value: rtt[key]!.p50, unit: 'ms' })
      rows.push({ measure: '64 B round trip p99', path: paths[key]!.name, value: rtt[key]!.p99, unit: 'ms' })
    }

    log('64 B requests/s, 64 in flight …')
    const rps: Record<string, number> = {}
    for (const key of ['binary', 'libp2p', 'tcp']) {
      await drive(paths[key]!.send, small, 256, 64)
      rps[key] = SIZES.rps / await drive(paths[key]!.send, small, SIZES.rps, 64)
      log(`  ${paths[key]!.name}: ${rps[key]!.toFixed(0)} requests/s`)
    }
    rows.push({ measure: '64 B requests/s, 64 in flight', path: paths.binary!.name, value: rps.binary!, unit: 'req/s', vsLibp2p: rps.binary! / rps.libp2p!, vsTcp: rps.binary! / rps.tcp!, target: '≥ 40 %' })
    rows.push({ measure: '64 B requests/s, 64 in flight', path: paths.libp2p!.name, value: rps.libp2p!, unit: 'req/s' })
    rows.push({ measure: '64 B requests/s, 64 in flight', path: paths.tcp!.name, value: rps.tcp!, unit: 'req/s' })

    if (args.json === true) {
      process.stdout.write(JSON.stringify({ quick, sizes: SIZES, rows }, null, 2) + '\n')
    } else {
      const pct = (x?: number): string => x == null ? '' : x >= 3 || x < 0.01 ? `${x.toFixed(2)}×` : `${(x * 100).toFixed(0)} %`
      process.stdout.write(`IPC bulk benchmark${quick ? ' (--quick: figures mean little)' : ''}: node A, node B, echo agent on B, client agent on A\n\n`)
      process.stdout.write('| measure | path | value | vs raw libp2p | vs raw TCP | target (vs libp2p) |\n|---|---|---|---|---|---|\n')
      for (const row of rows) {
        const value = row.unit === 'ms' ? row.value.toFixed(3) : row.value.toFixed(row.unit === 'MB/s' ? 1 : 0)
        const ratio = row.unit === 'ms' ? (row.vsLibp2p == null ? '' : `${row.vsLibp2p.toFixed(2)}×`) : pct(row.vsLibp2p)
        const ratioTcp = row.unit === 'ms' ? (row.vsTcp == null ? '' : `${row.vsTcp.toFixed(2)}×`) : pct(row.vsTcp)
        process.stdout.write(`| ${row.measure} | ${row.path} | ${value} ${row.unit} | ${ratio} | ${ratioTcp} | ${row.target ?? ''} |\n`)
      }
    }
  } finally {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => {})
    for (const proc of children) proc.kill('SIGTERM')
    for (const node of nodes) await node.stop()
    for (const home of homes) await removeHome(home)
  }
}

await main()
