/**
 * A NAT lab on one machine, for tests and benchmarks that need real NATs:
 * network namespaces, veth pairs, a bridge as the "public" segment and two
 * nftables NAT routers. Needs root, `ip` (iproute2) and `nft` (nftables).
 *
 * ```
 *                     ns "inet": bridge br0, 198.18.0.0/24 (RFC 2544 test range)
 *        ┌──────────────────────┼──────────────────────────┐
 *   ns "boot" eth0         ns "ra" wan0                ns "rb" wan0
 *   198.18.0.10            198.18.0.11                 198.18.0.12
 *   bootstrap + relay      NAT (masquerade)            NAT (masquerade)
 *   + STUN fixture         lan0 10.77.1.1/24           lan0 172.20.2.1/24
 *                               │                           │
 *                          ns "ha" eth0                ns "hb" eth0
 *                          10.77.1.2 (host A)          172.20.2.2 (host B)
 * ```
 *
 * Each router masquerades what leaves `wan0`, forwards back in only
 * established/related traffic, and drops new inbound connections on its input
 * hook (`iifname "wan0" ct state new drop`: an unsolicited punch packet must
 * not claim the conntrack tuple, else masquerade re-maps the port of our own
 * outbound punch and the NAT turns symmetric). Routes to other sites' private
 * ranges are `unreachable` (ICMP) or, with `foreignPrivate: 'blackhole'`,
 * silently dropped. Hosts get the STUN fixture as `nat.stunServers` unless
 * their config says otherwise.
 *
 * Nothing in the lab is linked to the machine's own network namespace: every
 * namespace has loopback and its lab links only, so no route leads out.
 * Namespace names are `annat-<owner pid>-<random>-<role>`: parallel labs do
 * not collide, and {@link cleanupStaleLabs} removes the leftovers of labs
 * whose owning process is gone.
 */

import { execFile, spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { ChildProcess } from 'node:child_process'

const run = promisify(execFile)

export const LAB_PREFIX = 'annat-'
export const BIN = fileURLToPath(new URL('../../bin/agentnet.js', import.meta.url))
export const STUN_SCRIPT = fileURLToPath(new URL('./stun-server.ts', import.meta.url))
export const DEFAULT_CONFIG = fileURLToPath(new URL('../../configs/default.json', import.meta.url))

export const PUBLIC_SUBNET = '198.18.0.0/24'
export const BOOTSTRAP_IP = '198.18.0.10'
export const STUN_PORT = 3478

export type Side = 'a' | 'b'

export const SIDES: Record<Side, { routerWan: string, routerLan: string, host: string, prefix: number }> = {
  a: { routerWan: '198.18.0.11', routerLan: '10.77.1.1', host: '10.77.1.2', prefix: 24 },
  b: { routerWan: '198.18.0.12', routerLan: '172.20.2.1', host: '172.20.2.2', prefix: 24 }
}

/** A tool's absolute path: PATH first, then the sbin folders a non-login PATH may lack */
function findTool (name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const dir of dirs.filter(d => d !== '')) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return undefined
}

const IP = findTool('ip') ?? 'ip'
const NFT = findTool('nft') ?? 'nft'

/** Why the lab cannot run here, or undefined when it can */
export function labUnavailableReason (): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    return `the NAT lab needs root (network namespaces, nftables); running as uid ${process.getuid()}`
  }
  const missing = ['ip', 'nft'].filter(tool => findTool(tool) == null)
  if (missing.length > 0) {
    return `the NAT lab needs ${missing.join(' and ')} (apt-get install ${missing.map(t => t === 'ip' ? 'iproute2' : 'nftables').join(' ')})`
  }
  return undefined
}

async function ip (...args: string[]): Promise<string> {
  try {
    return (await run(IP, args)).stdout
  } catch (err) {
    const e = err as Error & { stderr?: string }
    throw new Error(`ip ${args.join(' ')}: ${e.stderr?.trim() ?? e.message}`)
  }
}

async function nft (ns: string, ruleset: string): Promise<void> {
  const child = spawn(IP, ['netns', 'exec', ns, NFT, '-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdin.end(ruleset)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  if (code !== 0) {
    throw new Error(`nft in ${ns} failed (${code}): ${stderr.trim()}\n${ruleset}`)
  }
}

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function listNamespaces (): Promise<string[]> {
  const out = await ip('netns', 'list')
  return out.split('\n').map(l => l.trim().split(/\s+/)[0] ?? '').filter(n => n !== '')
}

/** Kill what still runs in a namespace (processes this lab started), then delete it */
async function removeNamespace (ns: string): Promise<void> {
  const pids = await ip('netns', 'pids', ns).catch(() => '')
  for (const pid of pids.split('\n').map(Number).filter(p => p > 0)) {
    try { process.kill(pid, 'SIGKILL') } catch {}
  }
  await ip('netns', 'del', ns).catch(() => {})
}

/**
 * Remove namespaces of earlier lab runs whose owner process has exited
 * (a crashed or interrupted test). Live labs of parallel runs are kept.
 */
export async function cleanupStaleLabs (): Promise<string[]> {
  const stale = (await listNamespaces()).filter(ns => {
    const m = ns.match(/^annat-(\d+)-/)
    return m != null && (Number(m[1]) === process.pid ? false : !pidAlive(Number(m[1])))
  })
  for (const ns of stale) await removeNamespace(ns)
  // node homes (temp folders) of those runs
  for (const entry of await readdir(tmpdir())) {
    const m = entry.match(/^annat-(\d+)-/)
    if (m != null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) {
      await rm(join(tmpdir(), entry), { recursive: true, force: true })
    }
  }
  return stale
}

/** Router firewall: masquerade out of wan0, only established traffic back in */
function routerRuleset (): string {
  return `
table ip nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade
  }
}
table ip filter {
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
  }
  chain input {
    type filter hook input priority filter; policy accept;
    # an unsolicited packet from outside must not create a conntrack entry:
    # that entry would make masquerade pick a new port for our own outbound
    # punch to the same peer (symmetric NAT behaviour) and break hole punching
    iifname "wan0" ct state new drop
  }
}
table ip labcut {
  # filled by NatLab.cut() to sever a path during a test; empty otherwise
  chain forward {
    type filter hook forward priority -10; policy accept;
  }
}
`
}

export interface LabProcess {
  name: string
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
  stop: () => Promise<void>
}

export interface LabNode extends LabProcess {
  home: string
  socketPath: string
  peerId: string
  /** Multiaddrs logged at start */
  addresses: string[]
  startedAt: number
  runningAt: number
  call: (method: string, params?: unknown, timeoutMs?: number) => Promise<any>
}

export interface HostOptions {
  /** Config merged over the defaults (written to the home's config.json) */
  config?: Record<string, unknown>
  logLevel?: string
}

export interface NatLab {
  id: string
  ns: { inet: string, boot: string, ra: string, rb: string, ha: string, hb: string }
  bootstrap: LabNode
  /** `/ip4/198.18.0.10/tcp/4001/p2p/<id>` */
  bootstrapAddr: string
  stunUrl: string
  startHost: (side: Side, options?: HostOptions) => Promise<LabNode>
  /** Drop forwarded traffic between a side's LAN and `ip` at its router */
  cut: (side: Side, ip: string) => Promise<void>
  /** Undo every cut */
  heal: () => Promise<void>
  /** Run a command inside a lab namespace */
  exec: (ns: string, cmd: string, ...args: string[]) => Promise<string>
  teardown: () => Promise<void>
}

function spawnIn (ns: string, name: string, argv: string[]): LabProcess {
  const child = spawn(IP, ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>(resolve => child.on('close', resolve))
  return {
    name,
    child,
    output: () => output,
    exited,
    stop: async () => {
      if (child.exitCode != null || child.signalCode != null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    }
  }
}

async function waitFor (proc: LabProcess, match: (line: any) => boolean, timeoutMs: number): Promise<any> {
  const deadline = Date.now() + timeoutMs
  let seen = 0
  while (Date.now() < deadline) {
    const text = proc.output()
    // the last element is a partial line (or '' after a newline): keep it for the next round
    const complete = text.slice(seen).split('\n').slice(0, -1)
    for (const line of complete) {
      seen += line.length + 1
      if (!line.startsWith('{')) continue
      try {
        const parsed = JSON.parse(line)
        if (match(parsed)) return parsed
      } catch {}
    }
    if (proc.child.exitCode != null || proc.child.signalCode != null) {
      throw new Error(`${proc.name} exited (${proc.child.exitCode ?? proc.child.signalCode}) before it was ready:\n${proc.output()}`)
    }
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  throw new Error(`${proc.name} was not ready within ${timeoutMs} ms:\n${proc.output()}`)
}

async function startAgentnet (ns: string, name: string, args: string[], home: string): Promise<LabNode> {
  const startedAt = performance.now()
  const proc = spawnIn(ns, name, [process.execPath, BIN, 'start', '--home', home, ...args])
  const running = await waitFor(proc, l => l.msg === 'agentnet node running', 60_000)
  const runningAt = performance.now()
  const socketPath = join(home, 'agentnet.sock')
  let socket: RawSocket | undefined
  const node: LabNode = {
    ...proc,
    home,
    socketPath,
    peerId: running.peerId,
    addresses: running.addresses ?? [],
    startedAt,
    runningAt,
    call: async (method, params = {}, timeoutMs = 30_000) => {
      if (socket == null || socket.closed) socket = await RawSocket.connect(socketPath)
      const id = randomBytes(6).toString('hex')
      socket.send({ jsonrpc: '2.0', id, method, params })
      // calls run concurrently on this one socket (e.g. waitDiscoverable for both hosts): take only our answer
      return socket.take(m => m.id === id, timeoutMs)
    },
    stop: async () => {
      socket?.close()
      await proc.stop()
    }
  }
  return node
}

/** Build the lab, start the STUN fixture and the bootstrap/relay node in it */
export interface LabOptions {
  bootstrapLogLevel?: string
  /** What a router does with packets for another site's private address (default `unreachable`) */
  foreignPrivate?: 'unreachable' | 'blackhole'
}

export async function createLab (options: LabOptions = {}): Promise<NatLab> {
  const id = `${process.pid}-${randomBytes(3).toString('hex')}`
  const name = (role: string): string => `${LAB_PREFIX}${id}-${role}`
  const ns = { inet: name('inet'), boot: name('boot'), ra: name('ra'), rb: name('rb'), ha: name('ha'), hb: name('hb') }
  const processes: LabProcess[] = []
  const homes: string[] = []
  let tornDown = false

  const teardown = async (): Promise<void> => {
    if (tornDown) return
    tornDown = true
    await Promise.all(processes.map(async p => p.stop().catch(() => {})))
    for (const n of Object.values(ns)) await removeNamespace(n)
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  }

  try {
    for (const n of Object.values(ns)) {
      await ip('netns', 'add', n)
      await ip('-n', n, 'link', 'set', 'lo', 'up')
    }
    // the public segment: a bridge in its own namespace
    await ip('-n', ns.inet, 'link', 'add', 'br0', 'type', 'bridge')
    await ip('-n', ns.inet, 'link', 'set', 'br0', 'up')
    const plug = async (member: string, ifname: string, port: string, address: string): Promise<void> => {
      await ip('-n', member, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', port, 'netns', ns.inet)
      await ip('-n', ns.inet, 'link', 'set', port, 'master', 'br0', 'up')
      await ip('-n', member, 'addr', 'add', address, 'dev', ifname)
      await ip('-n', member, 'link', 'set', ifname, 'up')
    }
    await plug(ns.boot, 'eth0', 'p-boot', `${BOOTSTRAP_IP}/24`)
    for (const side of ['a', 'b'] as const) {
      const s = SIDES[side]
      const router = side === 'a' ? ns.ra : ns.rb
      const host = side === 'a' ? ns.ha : ns.hb
      await plug(router, 'wan0', `p-r${side}`, `${s.routerWan}/24`)
      await ip('-n', router, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host)
      await ip('-n', router, 'addr', 'add', `${s.routerLan}/${s.prefix}`, 'dev', 'lan0')
      await ip('-n', router, 'link', 'set', 'lan0', 'up')
      await ip('-n', host, 'addr', 'add', `${s.host}/${s.prefix}`, 'dev', 'eth0')
      await ip('-n', host, 'link', 'set', 'eth0', 'up')
      await ip('-n', host, 'route', 'add', 'default', 'via', s.routerLan)
      // other sites' private addresses lead nowhere: `unreachable` answers with
      // ICMP net-unreachable (a dial fails at once), `blackhole` drops silently
      // (a dial hangs until its timeout), as most of the internet does
      for (const net of ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16']) {
        await ip('-n', router, 'route', 'add', options.foreignPrivate ?? 'unreachable', net)
      }
      // /proc/sys/net belongs to the writer's namespace (no sysctl binary needed)
      await ip('netns', 'exec', router, '/bin/sh', '-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward')
      await nft(router, routerRuleset())
    }

    // the bootstrap profile answers STUN itself (nat.stunServerPort 3478); hosts
    // use it through nat.stunFromBootstrap, with no STUN server configured

    const bootHome = await mkdtemp(join(tmpdir(), `${LAB_PREFIX}${process.pid}-boot-`))
    homes.push(bootHome)
    const bootArgs = ['--profile', 'bootstrap', '--listen', `/ip4/${BOOTSTRAP_IP}/tcp/4001`]
    if (options.bootstrapLogLevel != null) bootArgs.push('--log-level', options.bootstrapLogLevel)
    const bootstrap = await startAgentnet(ns.boot, 'bootstrap', bootArgs, bootHome)
    processes.push(bootstrap)
    const bootstrapAddr = bootstrap.addresses.find(a => a.startsWith(`/ip4/${BOOTSTRAP_IP}/tcp/4001/p2p/`))
    if (bootstrapAddr == null) throw new Error(`bootstrap has no ${BOOTSTRAP_IP} address: ${bootstrap.addresses.join(' ')}`)

    const defaults = JSON.parse(await readFile(DEFAULT_CONFIG, 'utf8'))
    let hostCount = 0

    const lab: NatLab = {
      id,
      ns,
      bootstrap,
      bootstrapAddr,
      stunUrl: `stun:${BOOTSTRAP_IP}:${STUN_PORT}`,
      startHost: async (side, hostOptions = {}) => {
        const home = await mkdtemp(join(tmpdir(), `${LAB_PREFIX}${process.pid}-h${side}-`))
        homes.push(home)
        const config: Record<string, any> = structuredClone(hostOptions.config ?? {})
        config.nat = { ...config.nat }
        // "private by default" trust gating, when the build has it: open the echo service
        if (defaults.trust != null && 'publicServices' in defaults.trust) {
          config.trust = { publicServices: ['echo'], ...config.trust }
        }
        await writeFile(join(home, 'config.json'), JSON.stringify(config))
        const args = ['--config', join(home, 'config.json'), '--bootstrap', bootstrapAddr]
        if (hostOptions.logLevel != null) args.push('--log-level', hostOptions.logLevel)
        const node = await startAgentnet(side === 'a' ? ns.ha : ns.hb, `host-${side}${++hostCount}`, args, home)
        processes.push(node)
        return node
      },
      cut: async (side, target) => {
        const router = side === 'a' ? ns.ra : ns.rb
        await nft(router, `add rule ip labcut forward ip daddr ${target} drop\nadd rule ip labcut forward ip saddr ${target} drop\n`)
      },
      heal: async () => {
        for (const router of [ns.ra, ns.rb]) await nft(router, 'flush chain ip labcut forward\n')
      },
      exec: async (n, cmd, ...args) => (await run(IP, ['netns', 'exec', n, cmd === 'ip' ? IP : cmd, ...args])).stdout,
      teardown
    }
    return lab
  } catch (err) {
    await teardown()
    throw err
  }
}

export interface ConnectionSummary {
  peerId: string
  address: string
  direct: boolean
  transport: 'tcp' | 'webrtc' | 'webrtc-direct' | 'relay'
  direction: 'inbound' | 'outbound'
}

export async function status (node: LabNode): Promise<{ reachability: string, relayReservations: string[], addresses: string[], connections: ConnectionSummary[] }> {
  const reply = await node.call('node.status')
  if (reply.error != null) throw new Error(`node.status: ${JSON.stringify(reply.error)}`)
  return reply.result
}

/** Poll `node.status` until `ready` holds; resolves to that status */
export async function waitForStatus (node: LabNode, ready: (s: Awaited<ReturnType<typeof status>>) => boolean, timeoutMs = 30_000): Promise<Awaited<ReturnType<typeof status>>> {
  const deadline = Date.now() + timeoutMs
  let last
  while (Date.now() < deadline) {
    last = await status(node)
    if (ready(last)) return last
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  throw new Error(`${node.name}: status not ready within ${timeoutMs} ms: ${JSON.stringify(last)}\n${node.output().slice(-4000)}`)
}

/** Wait until a host holds a relay reservation (and, with WebRTC, listens on /webrtc) */
export async function waitForReservation (node: LabNode, webrtc = true, timeoutMs = 30_000): Promise<void> {
  await waitForStatus(node, s => s.relayReservations.length > 0 && (!webrtc || s.addresses.some(a => a.includes('/webrtc/'))), timeoutMs)
}

/**
 * Wait until the bootstrap node (the DHT server the hosts query) holds a
 * host's relay address (`…/p2p-circuit`, and `…/p2p-circuit/webrtc` when
 * `webrtc`): from then on a lookup by peer ID returns a usable address
 */
export async function waitDiscoverable (lab: NatLab, node: LabNode, webrtc = true, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let addresses: string[] = []
  while (Date.now() < deadline) {
    const reply = await lab.bootstrap.call('peers.list', {}, Math.max(1, deadline - Date.now()))
    addresses = (reply.result as Array<{ peerId: string, addresses: string[] }>).find(p => p.peerId === node.peerId)?.addresses ?? []
    if (addresses.some(a => a.endsWith('/p2p-circuit')) && (!webrtc || addresses.some(a => a.endsWith('/p2p-circuit/webrtc')))) return
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  throw new Error(`the bootstrap node does not know ${node.name}'s relay address after ${timeoutMs} ms: ${addresses.join(' ')}`)
}

export interface EchoService {
  /** `msg.received` notifications answered so far */
  received: any[]
  stop: () => void
}

/**
 * Register `echo` on a node's socket and answer every request with its body
 */
export async function serveEcho (node: LabNode): Promise<EchoService> {
  const socket = await RawSocket.connect(node.socketPath)
  const registered = await socket.call('service.register', { service: 'echo' })
  if (registered.result?.service !== 'echo') throw new Error(`service.register: ${JSON.stringify(registered)}`)
  const received: any[] = []
  void (async () => {
    while (!socket.closed) {
      const note = await socket.next(m => m.method === 'msg.received', 3_600_000).catch(() => undefined)
      if (note == null) return
      received.push(note.params)
      socket.send({ jsonrpc: '2.0', id: `r-${String(note.params.id)}`, method: 'msg.reply', params: { id: note.params.id, body: note.params.body } })
    }
  })()
  return { received, stop: () => { socket.close() } }
}
