/**
 * Noise vs TLS 1.3, in one run: two agentnet nodes (createAgentNode, full
 * messaging stack, DHT and NAT services off) per encrypter, both in this
 * process, on 127.0.0.1.
 *
 * - handshake: time of `libp2p.dial(addr)` for a fresh connection (TCP
 *   connect + encrypter handshake + yamux negotiation), the previous
 *   connection closed first; `--dials N` times (default 100)
 * - request RTT: signed 32-byte request → signed response over the
 *   `echo` service on one open connection; `--requests N` (default 2000)
 *
 * The two encrypters alternate in rounds so machine load affects both alike.
 *
 * Run: `./node_modules/.bin/node test/bench/tls.bench.ts [--dials N] [--requests N] [--json]`
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { loadConfig } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import type { SecurityProtocol } from '../../src/config/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'

const args = process.argv.slice(2)
function flag (name: string, fallback: number): number {
  const i = args.indexOf(name)
  const value = i === -1 ? fallback : Number(args[i + 1])
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`)
  return value
}
const DIALS = flag('--dials', 100)
const REQUESTS = flag('--requests', 2000)
const ROUNDS = 4
const JSON_OUT = args.includes('--json')
const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }

interface Pair { a: AgentNode, b: AgentNode, homes: string[] }

async function pair (security: SecurityProtocol[]): Promise<Pair> {
  const homes: string[] = []
  const make = async (): Promise<AgentNode> => {
    const home = await mkdtemp(join(tmpdir(), 'an-tlsb-'))
    homes.push(home)
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], nat: quiet, relay: { reserve: false }, dht: { enabled: false }, security, trust: { publicServices: ['echo'] }, connections: { inboundConnectionThreshold: 100_000 } } })
    const node = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home })
    await node.start()
    node.registerService('echo', m => ({ body: m.body, contentType: m.contentType }))
    return node
  }
  return { a: await make(), b: await make(), homes }
}

function quantile (sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN
}

async function handshakes (p: Pair, n: number): Promise<number[]> {
  const addr = p.b.libp2p.getMultiaddrs()[0]
  if (addr === undefined) throw new Error('no address')
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    await p.a.libp2p.hangUp(p.b.peerId)
    const t0 = performance.now()
    await p.a.libp2p.dial(addr)
    out.push(performance.now() - t0)
  }
  return out
}

async function rtts (p: Pair, n: number): Promise<number[]> {
  const body = new Uint8Array(32).fill(7)
  const out: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    await p.a.send(p.b.peerId, 'echo', body, 'application/octet-stream', { timeoutMs: 5000 })
    out.push(performance.now() - t0)
  }
  return out
}

const kinds: Array<{ name: string, security: SecurityProtocol[] }> = [{ name: 'noise', security: ['noise'] }, { name: 'tls', security: ['tls'] }]
const pairs = new Map<string, Pair>()
for (const k of kinds) pairs.set(k.name, await pair(k.security))
const results = new Map<string, { hs: number[], rtt: number[], encryption: string }>()
try {
  for (const k of kinds) {
    const p = pairs.get(k.name) as Pair
    await handshakes(p, 5) // warm-up
    await rtts(p, 100)
    const encryption = p.a.libp2p.getConnections(p.b.peerId)[0]?.encryption ?? '?'
    results.set(k.name, { hs: [], rtt: [], encryption })
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const k of r % 2 === 0 ? kinds : [...kinds].reverse()) {
      const p = pairs.get(k.name) as Pair
      const res = results.get(k.name) as { hs: number[], rtt: number[] }
      res.hs.push(...await handshakes(p, Math.ceil(DIALS / ROUNDS)))
      res.rtt.push(...await rtts(p, Math.ceil(REQUESTS / ROUNDS)))
    }
  }
} finally {
  for (const p of pairs.values()) {
    await p.a.stop()
    await p.b.stop()
    await Promise.all(p.homes.map(async h => rm(h, { recursive: true, force: true })))
  }
}

const summary = kinds.map(k => {
  const res = results.get(k.name) as { hs: number[], rtt: number[], encryption: string }
  const hs = [...res.hs].sort((x, y) => x - y)
  const rtt = [...res.rtt].sort((x, y) => x - y)
  const r3 = (x: number): number => Math.round(x * 1000) / 1000
  return { encrypter: k.name, protocol: res.encryption, dials: hs.length, handshakeP50Ms: r3(quantile(hs, 0.5)), handshakeP90Ms: r3(quantile(hs, 0.9)), requests: rtt.length, rttP50Ms: r3(quantile(rtt, 0.5)), rttP99Ms: r3(quantile(rtt, 0.99)) }
})
if (JSON_OUT) {
  process.stdout.write(JSON.stringify(summary) + '\n')
} else {
  process.stdout.write('encrypter  protocol     new connection p50 / p90      signed request RTT p50 / p99\n')
  for (const s of summary) {
    process.stdout.write(`${s.encrypter.padEnd(10)} ${s.protocol.padEnd(12)} ${s.handshakeP50Ms.toFixed(2).padStart(7)} / ${s.handshakeP90Ms.toFixed(2).padStart(7)} ms (${s.dials})   ${s.rttP50Ms.toFixed(3).padStart(7)} / ${s.rttP99Ms.toFixed(3).padStart(7)} ms (${s.requests})\n`)
  }
  const [n, t] = summary
  if (n !== undefined && t !== undefined) process.stdout.write(`tls / noise: handshake p50 ×${(t.handshakeP50Ms / n.handshakeP50Ms).toFixed(2)}, RTT p50 ×${(t.rttP50Ms / n.rttP50Ms).toFixed(2)}\n`)
}
process.exit(0)
