/**
 * Fixtures for the trust integration tests: real libp2p nodes on 127.0.0.1
 * (TCP, Noise, yamux, identify, ping) running the messaging service with the
 * trust gate and the trust service, each on its own temporary home; and a
 * raw sender that writes arbitrary handshake frames.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { MessagingService } from '../../src/messaging/index.ts'
import { Outbox } from '../../src/outbox/index.ts'
import { createSigner, loadReplayCache, saveReplayCache, TRUST_SIGNATURE_SCHEME } from '../../src/protocol/index.ts'
import { createTrustGater, decodeTrustFrame, MAX_FRAME_BYTES, sealTrustFrame, trust, TRUST_PROTOCOL } from '../../src/trust/index.ts'
import type { MessageSigner } from '../../src/protocol/index.ts'
import type { HandshakeFields, HandshakeMessage, TrustInit, TrustService } from '../../src/trust/index.ts'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export const encoder = new TextEncoder()
export const decoder = new TextDecoder()

/** Records what the trust service appends to the audit log */
export class AuditRecorder {
  readonly records: Array<{ type: string, data: Record<string, unknown> }> = []
  async append (type: string, data: Record<string, unknown>): Promise<void> {
    this.records.push({ type, data })
  }

  types (peer?: string): string[] {
    return this.records.filter(r => peer === undefined || r.data.peer === peer).map(r => r.type)
  }
}

export interface TestNode {
  key: PrivateKey
  home: string
  libp2p: Libp2p
  peerId: PeerId
  id: string
  addr: Multiaddr
  trust: TrustService
  messaging: MessagingService
  /** No stages: this harness tests the trust layer, not the guard (src/agent wires the real ones) */
  outbox: Outbox
  /** trust.request / reject / revoke with the reason admitted through {@link outbox} */
  request: (peer: string, reason: string) => ReturnType<TrustService['request']>
  reject: (peer: string, reason?: string) => ReturnType<TrustService['reject']>
  revoke: (peer: string, reason?: string) => ReturnType<TrustService['revoke']>
  audit: AuditRecorder
  /** peers passed to onRevoke */
  revoked: string[]
  stop: () => Promise<void>
}

export interface NodeOptions {
  key?: PrivateKey
  home?: string
  init?: Omit<TrustInit, 'home'>
  /** install the strict-mode connection gater */
  gater?: boolean
  /** peers the gater admits before the service exists */
  allowPeers?: string[]
  /** listen addresses @default ['/ip4/127.0.0.1/tcp/0'] */
  listen?: string[]
  /** the trust service's clock @default Date.now */
  clock?: () => number
  /** share one replay cache between messaging and trust, loaded from and saved to the home as the node does */
  persistReplay?: boolean
}

export async function makeHome (): Promise<string> {
  return mkdtemp(join(tmpdir(), 'agentnet-trust-'))
}

export async function removeHome (home: string): Promise<void> {
  await rm(home, { recursive: true, force: true })
}

/** `localAddress`: the source address of its outbound TCP connections (e.g. `127.0.1.1`: another /24 on loopback) */
export async function bareLibp2p (key: PrivateKey, gater?: ReturnType<typeof createTrustGater>, listen = ['/ip4/127.0.0.1/tcp/0'], localAddress?: string): Promise<Libp2p> {
  // @libp2p/tcp spreads dialOpts into net.connect, whose localAddress its type does not list
  const dialOpts = { noDelay: true, ...(localAddress === undefined ? {} : { localAddress }) }
  return createLibp2p({
    privateKey: key,
    addresses: { listen },
    transports: [tcp({ dialOpts })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 10_000 },
    ...(gater === undefined ? {} : { connectionGater: gater }),
    services: { identify: identify(), ping: ping() }
  })
}

/** A started node with the trust and messaging services; `echo` is registered, `card` is public if configured. */
export async function startNode (options: NodeOptions = {}): Promise<TestNode> {
  const key = options.key ?? await generateKeyPair('Ed25519')
  const home = options.home ?? await makeHome()
  let service: TrustService | undefined
  const gater = options.gater === true ? createTrustGater(() => service, { allowPeers: () => options.allowPeers ?? [] }) : undefined
  const libp2p = await bareLibp2p(key, gater, options.listen)
  const audit = new AuditRecorder()
  const revoked: string[] = []
  const replayCache = options.persistReplay === true ? await loadReplayCache(home, { windowMs: 60_000, maxSkewMs: 30_000, afterCrash: false }) : undefined
  service = trust({ home, ...options.init })({
    ...(replayCache === undefined ? {} : { replayCache }),
    libp2p,
    privateKey: key,
    audit,
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    onRevoke: (peer) => { revoked.push(peer.toString()) }
  })
  const messaging = new MessagingService({ libp2p, privateKey: key, inboundGates: [{ name: 'trust gate', check: service.gate }] }, { requestTimeoutMs: 3000, retries: 0, ...(replayCache === undefined ? {} : { replayCache }) })
  const outbox = new Outbox([])
  messaging.registerService('echo', async m => outbox.admit({ kind: 'reply', body: m.body, contentType: m.contentType }))
  messaging.registerService('card', async () => outbox.admit({ kind: 'reply', body: encoder.encode('public card'), contentType: 'text/plain' }))
  try {
    await service.start()
    await messaging.start()
  } catch (err) {
    await libp2p.stop()
    throw err
  }
  const addr = libp2p.getMultiaddrs()[0]
  if (addr === undefined) throw new Error('no listen address')
  const trustService = service
  return {
    key,
    home,
    libp2p,
    peerId: libp2p.peerId,
    id: libp2p.peerId.toString(),
    addr,
    trust: trustService,
    messaging,
    outbox,
    request: async (peer, reason) => trustService.request(peer, await outbox.admitText({ kind: 'trust-reason', text: reason })),
    reject: async (peer, reason) => trustService.reject(peer, reason === undefined ? undefined : await outbox.admitText({ kind: 'trust-reason', text: reason })),
    revoke: async (peer, reason) => trustService.revoke(peer, reason === undefined ? undefined : await outbox.admitText({ kind: 'trust-reason', text: reason })),
    audit,
    revoked,
    stop: async () => {
      await messaging.stop()
      await trustService.stop()
      await libp2p.stop()
      if (replayCache !== undefined) await saveReplayCache(home, replayCache)
    }
  }
}

/** Stop a node and start a new one on the same key, home and listen address (as a node with a configured port). */
export async function restart (node: TestNode, options: Omit<NodeOptions, 'key' | 'home'> = {}): Promise<TestNode> {
  await node.stop()
  const listen = [node.addr.toString().replace(`/p2p/${node.id}`, '')]
  return startNode({ listen, ...options, key: node.key, home: node.home })
}

/** Connect a to b (so b's peer ID is dialable by ID from a, and vice versa). */
export async function connect (a: { libp2p: Libp2p }, b: { libp2p: Libp2p }): Promise<void> {
  const addr = b.libp2p.getMultiaddrs()[0]
  if (addr === undefined) throw new Error('no address')
  await a.libp2p.dial(addr)
}

/** Send a text request over the messaging service; resolves with the reply text or rejects with the typed error. */
export async function send (from: TestNode, to: TestNode, service = 'echo', text = 'hi'): Promise<string> {
  const { body, contentType } = await from.outbox.admit({ kind: 'request', body: encoder.encode(text), contentType: 'text/plain' })
  const reply = await from.messaging.send(to.peerId, service, body, contentType)
  return decoder.decode(reply.body)
}

export async function codeOf (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err) {
    return String((err as { code?: unknown }).code ?? (err as Error).message)
  }
  return 'ok'
}

/** A libp2p node with no agentnet services: writes whatever handshake frames a test wants. */
export class RawPeer {
  readonly libp2p: Libp2p
  readonly key: PrivateKey
  readonly signer: MessageSigner

  private constructor (libp2p: Libp2p, key: PrivateKey) {
    this.libp2p = libp2p
    this.key = key
    this.signer = createSigner(key, TRUST_SIGNATURE_SCHEME)
  }

  /** `localAddress`: dial from this source address, listening nowhere (a throwaway identity on another network) */
  static async create (options: { localAddress?: string } = {}): Promise<RawPeer> {
    const key = await generateKeyPair('Ed25519')
    const libp2p = options.localAddress === undefined ? await bareLibp2p(key) : await bareLibp2p(key, undefined, [], options.localAddress)
    return new RawPeer(libp2p, key)
  }

  get peerId (): PeerId {
    return this.libp2p.peerId
  }

  frame (fields: HandshakeFields): Uint8Array {
    return sealTrustFrame(fields, this.signer)
  }

  /** Write one frame body on a new trust stream to `target` and return the decoded reply (not verified). */
  async exchange (target: PeerId | Multiaddr, body: Uint8Array): Promise<HandshakeMessage> {
    const stream = await this.libp2p.dialProtocol(target, TRUST_PROTOCOL, { signal: AbortSignal.timeout(5000) })
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    await lp.write(body, { signal: AbortSignal.timeout(5000) })
    const reply = await lp.read({ signal: AbortSignal.timeout(5000) })
    await stream.close().catch(() => {})
    return decodeTrustFrame(reply.subarray())
  }

  async stop (): Promise<void> {
    await this.libp2p.stop()
  }
}
