/**
 * Fixtures for the groups integration tests: real libp2p nodes on 127.0.0.1
 * (TCP, Noise, yamux as agentnet nodes run it, identify, ping), each running the groups service on
 * its own temporary home, with a recorded audit trail and a dial filter that
 * simulates partitions and hung peers.
 */

import { Outbox } from '../../src/outbox/index.ts'
import type { GuardedBody } from '../../src/outbox/index.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { agentnetMuxer } from '../../src/node/index.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { groups, MLS_PROTOCOL } from '../../src/groups/index.ts'
import type { GroupAuditEvent, GroupsInit, GroupsLibp2p, GroupsService } from '../../src/groups/index.ts'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'

export const encoder = new TextEncoder()

/** A stageless outbox: these tests exercise the groups layer; src/agent wires the real stages */
const outbox = new Outbox([])
/** `text` as a body that passed the outbox, which `GroupsService.send` requires */
export async function guarded (text: string | Uint8Array): Promise<GuardedBody> {
  return (await outbox.admit({ kind: 'group', body: typeof text === 'string' ? encoder.encode(text) : text, contentType: 'application/octet-stream' })).body
}
export const decoder = new TextDecoder()

export interface GroupNode {
  key: PrivateKey
  home: string
  libp2p: Libp2p
  id: string
  svc: GroupsService
  audit: GroupAuditEvent[]
  received: Array<{ groupId: string, from: string, text: string, epoch: number }>
  /** what dials to a peer do: 'pass', 'drop' (fail at once) or 'hang' (until aborted) */
  dialPolicy: Map<string, 'pass' | 'drop' | 'hang'>
  stop: () => Promise<void>
}

export async function makeHome (): Promise<string> {
  return mkdtemp(join(tmpdir(), 'agentnet-groups-'))
}

type DialRule = 'pass' | 'drop' | 'hang'

/**
 * The dial rules of one node. The service keeps one long-lived stream per
 * peer, so a rule other than 'pass' also cuts the node's open group streams
 * to that peer (as a partition would): its next frame has to dial, and the
 * dial obeys the rule.
 */
class DialPolicy extends Map<string, DialRule> {
  cut: (peer: string) => void = () => {}
  override set (peer: string, rule: DialRule): this {
    super.set(peer, rule)
    if (rule !== 'pass') this.cut(peer)
    return this
  }
}

function cutGroupStreams (libp2p: Libp2p, peer: string): void {
  for (const conn of libp2p.getConnections(peerIdFromString(peer))) {
    for (const s of conn.streams) if (s.protocol === MLS_PROTOCOL && s.direction === 'outbound') s.abort(new Error('partitioned (test)'))
  }
}

/** A libp2p handle whose dials obey `policy` (partitions, hung peers). */
function filtered (libp2p: Libp2p, policy: Map<string, 'pass' | 'drop' | 'hang'>): GroupsLibp2p {
  return {
    peerId: libp2p.peerId,
    handle: libp2p.handle.bind(libp2p),
    unhandle: libp2p.unhandle.bind(libp2p),
    getConnections: libp2p.getConnections.bind(libp2p),
    addEventListener: libp2p.addEventListener.bind(libp2p),
    removeEventListener: libp2p.removeEventListener.bind(libp2p),
    dialProtocol: (async (peer: PeerId, protocols: string | string[], options?: { signal?: AbortSignal }) => {
      const rule = policy.get(peer.toString()) ?? 'pass'
      if (rule === 'drop') throw new Error('partitioned (test)')
      if (rule === 'hang') {
        await new Promise((_resolve, reject) => {
          options?.signal?.addEventListener('abort', () => { reject(new Error('hung (test)')) }, { once: true })
        })
      }
      return libp2p.dialProtocol(peer, protocols, options)
    }) as GroupsLibp2p['dialProtocol']
  }
}

export async function startGroupNode (options: { key?: PrivateKey, home?: string, init?: Omit<GroupsInit, 'home'>, port?: number } = {}): Promise<GroupNode> {
  const key = options.key ?? await generateKeyPair('Ed25519')
  const home = options.home ?? await makeHome()
  const libp2p = await createLibp2p({
    privateKey: key,
    addresses: { listen: [`/ip4/127.0.0.1/tcp/${options.port ?? 0}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [agentnetMuxer()],
    connectionManager: { inboundConnectionThreshold: 10_000 },
    services: { identify: identify(), ping: ping() }
  })
  const audit: GroupAuditEvent[] = []
  const received: GroupNode['received'] = []
  const dialPolicy = new DialPolicy()
  dialPolicy.cut = (peer) => { cutGroupStreams(libp2p, peer) }
  const svc = groups({ home, ackTimeoutMs: 2000, requestTimeoutMs: 3000, ...options.init })({
    libp2p: filtered(libp2p, dialPolicy),
    privateKey: key,
    audit: (e) => { audit.push(e) }
  })
  svc.on('received', (m) => { received.push({ groupId: m.groupId, from: m.from, text: decoder.decode(m.body), epoch: m.epoch }) })
  await svc.start()
  return {
    key, home, libp2p, id: libp2p.peerId.toString(), svc, audit, received, dialPolicy,
    stop: async () => {
      await svc.stop()
      await libp2p.stop()
    }
  }
}

/** Connect every node to every other (so peer IDs resolve to addresses). */
export async function mesh (nodes: GroupNode[]): Promise<void> {
  for (const a of nodes) {
    for (const b of nodes) {
      if (a === b || a.libp2p.status !== 'started' || b.libp2p.status !== 'started') continue
      const addr = b.libp2p.getMultiaddrs()[0]
      if (addr !== undefined) await a.libp2p.dial(addr)
    }
  }
}

export async function waitFor (what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

export function epochOf (node: GroupNode, groupId: string): number | undefined {
  return node.svc.list().find(g => g.groupId === groupId)?.epoch
}

export async function removeHome (home: string): Promise<void> {
  await rm(home, { recursive: true, force: true })
}
