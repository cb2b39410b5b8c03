/**
 * @packageDocumentation
 *
 * The libp2p node behind an agent: TCP and WebRTC-direct transports, Noise
 * encryption, yamux multiplexing, identify and ping, assembled from a
 * validated {@link Config}. {@link AgentNode} wraps it with the operations the
 * local API offers (info, peers, connect, ping) so that the IPC layer never
 * reaches into libp2p itself.
 *
 * @example
 *
 * ```ts
 * import { loadConfig } from '../config/index.ts'
 * import { loadOrCreateIdentity } from '../identity/index.ts'
 * import { createAgentNode } from './index.ts'
 *
 * const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
 * const { privateKey } = await loadOrCreateIdentity('/tmp/agentnet-a')
 * const node = await createAgentNode({ config, privateKey })
 * await node.start()
 * console.log(node.info())
 * await node.stop()
 * ```
 */

import { MessagingService } from '../messaging/index.ts'
import { ReplayCache } from '../protocol/index.ts'
import { TokenService } from '../tokens/index.ts'
import { isLoopback, isPrivate } from '@libp2p/utils'
import { MemoryDatastore } from 'datastore-core'
import { CARD_NAMESPACE, cardKey, createCardValidator, decodeCard, encodeCard, selectCard } from '../cards/index.ts'
import type { AgentCard, CardContent } from '../cards/index.ts'
import { parseTarget } from './target.ts'
import { loadReplayCache, saveReplayCache } from './replay-state.ts'
import { AuditSink } from './audit-sink.ts'
import { AUDIT_LOG_FILE, openAuditLog } from '../audit/index.ts'
import { createTrustGater, TrustService } from '../trust/index.ts'
import { startStunServer } from '../stun/index.ts'
import type { StunServer } from '../stun/index.ts'
import { multiaddr } from '@multiformats/multiaddr'
import type { AuditData } from '../audit/index.ts'
import { join } from 'node:path'
import { createAgentLibp2p } from './libp2p.ts'
import { Milestones } from './milestones.ts'
import type { Config } from '../config/index.ts'
import type { AgentLibp2p } from './libp2p.ts'
import type { Connection, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'

export { parseTarget, parsePeerId, InvalidTargetError } from './target.ts'
export type { Target } from './target.ts'

export { createAgentLibp2p, effectiveListen, DHT_PROTOCOL } from './libp2p.ts'
export { Milestones } from './milestones.ts'
export type { Readiness } from './milestones.ts'
export type { AgentLibp2p, AgentServices } from './libp2p.ts'

export interface NodeInfo {
  peerId: string
  /** Full multiaddrs ending in `/p2p/<peerId>` */
  addresses: string[]
  protocols: string[]
  version: string
}

export interface PeerSummary {
  peerId: string
  addresses: string[]
}

export interface ConnectionSummary {
  peerId: string
  address: string
  /** false when the connection runs through a relay */
  direct: boolean
  transport: 'tcp' | 'webrtc' | 'webrtc-direct' | 'relay'
  direction: 'inbound' | 'outbound'
}

export type Reachability = 'public' | 'private' | 'unknown'

export interface NodeStatus {
  peerId: string
  addresses: string[]
  /**
   * `public` when the node announces a direct address on a public IP (a
   * listen address, or one AutoNAT confirmed); `private` when it has only
   * private, loopback or relayed addresses; `unknown` before it listens
   */
  reachability: Reachability
  /** Peer IDs of the relays holding a reservation for us */
  relayReservations: string[]
  connections: ConnectionSummary[]
}

export interface AgentNodeInit {
  config: Config
  privateKey: PrivateKey
  /** Home folder for persistent state (tokens, replay cache) */
  home: string
  /**
   * The previous node on this home did not stop cleanly: its replay cache
   * snapshot is missing, so refuse anything timestamped before start + skew
   */
  afterCrash?: boolean
  /** How often a node with no connections re-dials its bootstrap nodes, ms. @default 15000 */
  rejoinIntervalMs?: number
  /** Structured logger; defaults to a silent one */
  logger?: Logger
}

/** How often a node with no connections re-dials its bootstrap nodes */
export const REJOIN_INTERVAL_MS = 15_000

/** The agentnet version reported to peers by identify */
export const AGENT_VERSION = 'agentnet/0.1.0'

export class CardNotFoundError extends Error {
  static readonly code = 'CardNotFound'
  readonly code = 'CardNotFound'
  override name = 'CardNotFoundError'
}

export class PeerUnreachableError extends Error {
  static readonly code = 'PeerUnreachable'
  readonly code = 'PeerUnreachable'
  override name = 'PeerUnreachableError'
}

export interface AgentNodeParts {
  rejoinIntervalMs?: number
  libp2p: AgentLibp2p
  trust: TrustService
  audit: AuditSink
  privateKey: PrivateKey
  messaging: MessagingService
  tokens: TokenService
  config: Config
  home: string
  logger?: Logger
}

export class AgentNode {
  readonly libp2p: AgentLibp2p
  readonly peerId: PeerId
  readonly messaging: MessagingService
  readonly tokens: TokenService
  readonly trust: TrustService
  readonly audit: AuditSink
  private readonly privateKey: PrivateKey
  private readonly config: Config
  private readonly home: string
  private readonly logger: Logger | undefined

  constructor (parts: AgentNodeParts) {
    this.libp2p = parts.libp2p
    this.peerId = parts.libp2p.peerId
    this.messaging = parts.messaging
    this.tokens = parts.tokens
    this.trust = parts.trust
    this.audit = parts.audit
    this.privateKey = parts.privateKey
    this.config = parts.config
    this.card = { ...parts.config.card }
    this.rejoinIntervalMs = parts.rejoinIntervalMs ?? REJOIN_INTERVAL_MS
    this.home = parts.home
    this.logger = parts.logger
  }

  /** Operator milestones and readiness (set once started) */
  milestones: Milestones | undefined
  private card: CardContent
  private lastCardSeq = 0
  private cardTimer: ReturnType<typeof setTimeout> | undefined
  private stun: StunServer | undefined
  private bootstrapTimer: ReturnType<typeof setInterval> | undefined
  private readonly rejoinIntervalMs: number

  /** Dial the bootstrap nodes again when the node has no connection left */
  private rejoin (): void {
    if (this.libp2p.getConnections().length > 0) {
      return
    }
    this.logger?.info('no connections left; dialling the bootstrap nodes again')
    for (const address of this.config.bootstrap) {
      this.libp2p.dial(multiaddr(address), { signal: AbortSignal.timeout(this.config.connections.dialTimeoutMs) }).catch((err: Error) => {
        this.logger?.debug({ address, err: err.message }, 'bootstrap dial failed')
      })
    }
  }

  /**
   * Sign and publish our agent card in the DHT (replacing the content when
   * given). Resolves once at least one DHT peer stored it.
   */
  async publishCard (content?: Partial<CardContent>, signal?: AbortSignal): Promise<AgentCard> {
    if (this.libp2p.services.dht == null) {
      throw new PeerUnreachableError('the DHT is disabled in this node\'s config')
    }
    const next = { ...this.card, ...content }
    const seq = Math.max(Date.now(), this.lastCardSeq + 1)
    const value = encodeCard(next, this.privateKey, seq)
    this.card = next
    this.lastCardSeq = seq
    await this.libp2p.contentRouting.put(cardKey(this.peerId), value, { signal: signal ?? AbortSignal.timeout(30_000) })
    return { peerId: this.peerId.toString(), seq, ...next }
  }

  /** Fetch a peer's card from the DHT and verify it (every DHT hop validated it too) */
  async lookupCard (peer: PeerId, signal?: AbortSignal): Promise<AgentCard> {
    if (this.libp2p.services.dht == null) {
      throw new PeerUnreachableError('the DHT is disabled in this node\'s config')
    }
    const key = cardKey(peer)
    let value: Uint8Array
    try {
      value = await this.libp2p.contentRouting.get(key, { signal: signal ?? AbortSignal.timeout(30_000) })
    } catch (err) {
      throw new CardNotFoundError(`no card found for ${peer.toString()}: ${(err as Error).message}`)
    }
    return decodeCard(key, value)
  }

  /** Publish soon after start (once peers are known), then every 30 minutes */
  private scheduleCardPublish (delayMs: number): void {
    this.cardTimer = setTimeout(() => {
      this.publishCard().then(card => {
        this.milestones?.cardPublished(card.seq)
        this.scheduleCardPublish(30 * 60_000)
      }, (err: Error) => {
        this.logger?.debug({ err: err.message }, 'card publish failed; retrying')
        this.scheduleCardPublish(Math.min(delayMs * 2, 60_000))
      })
    }, delayMs)
    this.cardTimer.unref()
  }

  async start (): Promise<void> {
    await this.trust.start()
    await this.libp2p.start()
    this.milestones = new Milestones(this.libp2p, this.config.bootstrap, { reachabilityOf, relaysOf }, this.logger)
    this.milestones.start()
    await this.tokens.start()
    await this.messaging.start()
    if (this.libp2p.services.dht != null) {
      this.scheduleCardPublish(1000)
    }
    if (this.config.bootstrap.length > 0) {
      // @libp2p/bootstrap dials its list once; a node that later loses every
      // connection (network change, overloaded peers) must find its way back
      this.bootstrapTimer = setInterval(() => { this.rejoin() }, this.rejoinIntervalMs)
      this.bootstrapTimer.unref()
    }
    if (this.config.nat.stunServerPort > 0) {
      try {
        this.stun = await startStunServer({ host: '0.0.0.0', port: this.config.nat.stunServerPort })
      } catch (err) {
        await this.stop().catch(() => {})
        throw new Error(`cannot answer STUN on UDP port ${this.config.nat.stunServerPort}: ${(err as Error).message} (set nat.stunServerPort to another port, or 0 to turn it off)`)
      }
      this.logger?.info({ port: this.stun.port }, 'answering STUN binding requests')
    }
  }

  async stop (): Promise<void> {
    clearTimeout(this.cardTimer)
    clearInterval(this.bootstrapTimer)
    this.milestones?.stop()
    await this.stun?.close().catch(() => {})
    await this.messaging.stop()
    await this.tokens.stop()
    await this.trust.stop()
    await this.libp2p.stop()
    await this.audit.close().catch(err => this.logger?.error({ err }, 'could not close the audit log'))
    // only a clean stop leaves a snapshot; its absence at the next start means a crash
    try {
      await saveReplayCache(this.home, this.messaging.replayCache)
    } catch (err) {
      this.logger?.error({ err }, 'could not save the replay cache; the next start will treat this stop as a crash')
      throw err
    }
    this.logger?.info('node stopped')
  }

  addresses (): string[] {
    return this.libp2p.getMultiaddrs().map(ma => ma.toString())
  }

  info (): NodeInfo {
    return {
      peerId: this.peerId.toString(),
      addresses: this.addresses(),
      protocols: this.libp2p.getProtocols(),
      version: AGENT_VERSION
    }
  }

  async peers (): Promise<PeerSummary[]> {
    const connected = new Set(this.libp2p.getPeers().map(p => p.toString()))
    const peers = await this.libp2p.peerStore.all()
    return peers
      .filter(peer => connected.has(peer.id.toString()))
      .map(peer => ({
        peerId: peer.id.toString(),
        addresses: peer.addresses.map(a => a.multiaddr.toString())
      }))
  }

  status (): NodeStatus {
    const addresses = this.libp2p.getMultiaddrs()
    return {
      peerId: this.peerId.toString(),
      addresses: addresses.map(ma => ma.toString()),
      reachability: reachabilityOf(addresses),
      relayReservations: relaysOf(addresses),
      connections: this.libp2p.getConnections().map(summarizeConnection)
    }
  }

  /** Open (or reuse) a connection to a multiaddr, peer ID or agentnet URL */
  async connect (target: string, signal?: AbortSignal): Promise<Connection> {
    const parsed = parseTarget(target)
    if (parsed.kind === 'peer') {
      return this.reach(parsed.peerId, signal)
    }
    const timeout = AbortSignal.timeout(this.config.connections.dialTimeoutMs)
    try {
      return await this.libp2p.dial(parsed.multiaddr, { signal: signal == null ? timeout : AbortSignal.any([signal, timeout]) })
    } catch (err) {
      throw new PeerUnreachableError(`cannot connect to ${target}: ${(err as Error).message}`)
    }
  }

  /**
   * A connection to `peer` by ID alone (peer store, then the DHT), preferring
   * a direct one: when the only way in is a relay and the peer listens on
   * WebRTC, try a WebRTC connection (signalled over the relay) before
   * settling for the relayed, limited one.
   */
  async reach (peer: PeerId, signal?: AbortSignal): Promise<Connection> {
    const timeout = AbortSignal.timeout(this.config.connections.dialTimeoutMs)
    const dialSignal = signal == null ? timeout : AbortSignal.any([signal, timeout])
    const open = this.libp2p.getConnections(peer).filter(c => c.status === 'open')
    const direct = open.find(c => c.limits == null)
    if (direct != null) {
      return direct
    }
    let connection = open[0]
    if (connection == null) {
      try {
        connection = await this.libp2p.dial(peer, { signal: dialSignal })
      } catch (err) {
        // the peer store's addresses may be stale or incomplete (e.g. learnt
        // before the peer had a relay reservation): ask the DHT again, once
        connection = await this.redial(peer, dialSignal, err as Error)
      }
    }
    if (connection.limits == null || !this.config.nat.webrtc) {
      return connection
    }
    const addresses = await this.libp2p.peerStore.get(peer).then(p => p.addresses.map(a => a.multiaddr), () => [])
    for (const address of addresses.filter(isWebRTCAddress)) {
      try {
        const upgraded = await this.libp2p.dial(address, { signal: dialSignal })
        if (upgraded.limits == null) {
          this.logger?.debug({ peer: peer.toString(), address: address.toString() }, 'direct WebRTC connection')
          return upgraded
        }
      } catch (err) {
        this.logger?.debug({ peer: peer.toString(), err: (err as Error).message }, 'WebRTC upgrade failed; staying on the relay')
      }
    }
    return connection
  }

  private async redial (peer: PeerId, signal: AbortSignal, first: Error): Promise<Connection> {
    if (this.libp2p.services.dht == null || signal.aborted) {
      throw new PeerUnreachableError(`cannot reach ${peer.toString()}: ${first.message}`)
    }
    try {
      const found = await this.libp2p.peerRouting.findPeer(peer, { signal, useCache: false })
      await this.libp2p.peerStore.merge(peer, { multiaddrs: found.multiaddrs })
      return await this.libp2p.dial(peer, { signal })
    } catch (err) {
      throw new PeerUnreachableError(`cannot reach ${peer.toString()}: ${(err as Error).message}`)
    }
  }

  /** Round-trip time in ms to a peer over the libp2p ping protocol */
  async ping (target: string, signal?: AbortSignal): Promise<{ peerId: string, rttMs: number }> {
    const connection = await this.connect(target, signal)
    const timeout = AbortSignal.timeout(this.config.connections.dialTimeoutMs)
    try {
      const pingSignal = signal == null ? timeout : AbortSignal.any([signal, timeout])
      let started = performance.now()
      try {
        await this.libp2p.services.ping.ping(connection.remotePeer, { signal: pingSignal })
      } catch (err) {
        // a peer running an older limit (one inbound/outbound ping stream) may still race the DHT's ping: once more
        if (!/Too many (outbound|inbound) protocol streams/.test((err as Error).message) || pingSignal.aborted) throw err
        await new Promise(resolve => setTimeout(resolve, 50))
        started = performance.now()
        await this.libp2p.services.ping.ping(connection.remotePeer, { signal: pingSignal })
      }
      // libp2p reports whole milliseconds; on a LAN the interesting part is below one
      const rttMs = Math.round((performance.now() - started) * 1000) / 1000
      return { peerId: connection.remotePeer.toString(), rttMs }
    } catch (err) {
      throw new PeerUnreachableError(`ping ${target} failed: ${(err as Error).message}`)
    }
  }
}

function isRelayed (address: Multiaddr): boolean {
  return address.getComponents().some(c => c.name === 'p2p-circuit')
}

export function reachabilityOf (addresses: Multiaddr[]): Reachability {
  if (addresses.length === 0) {
    return 'unknown'
  }
  const direct = addresses.filter(a => !isRelayed(a))
  return direct.some(a => !isPrivate(a) && !isLoopback(a)) ? 'public' : 'private'
}

/** The relay of a circuit address is the peer named before `/p2p-circuit` */
export function relaysOf (addresses: Multiaddr[]): string[] {
  const relays = new Set<string>()
  for (const address of addresses) {
    const components = address.getComponents()
    const circuit = components.findIndex(c => c.name === 'p2p-circuit')
    const relay = components.slice(0, Math.max(circuit, 0)).findLast(c => c.name === 'p2p')?.value
    if (circuit > 0 && relay != null) {
      relays.add(relay)
    }
  }
  return [...relays]
}

/** A WebRTC private-to-private address: `…/p2p-circuit/webrtc/p2p/<peer>` */
export function isWebRTCAddress (address: Multiaddr): boolean {
  return address.getComponents().some(c => c.name === 'webrtc')
}

export function summarizeConnection (connection: Connection): ConnectionSummary {
  // a WebRTC connection signalled over a relay may keep the circuit in its
  // address; the data path is direct when libp2p put no relay limits on it
  const relayed = connection.limits != null || (isRelayed(connection.remoteAddr) && !isWebRTCAddress(connection.remoteAddr))
  return {
    peerId: connection.remotePeer.toString(),
    address: connection.remoteAddr.toString(),
    direct: !relayed,
    transport: relayed ? 'relay' : isWebRTCAddress(connection.remoteAddr) ? 'webrtc' : connection.remoteAddr.getComponents().some(c => c.name === 'webrtc-direct') ? 'webrtc-direct' : 'tcp',
    direction: connection.direction
  }
}

/** Assemble (but do not start) the libp2p node described by `config` */
export async function createAgentNode (init: AgentNodeInit): Promise<AgentNode> {
  const { config } = init
  // the DHT's records live here; the card validator reads it to refuse older cards
  const datastore = new MemoryDatastore()
  // strict mode needs the gater at creation, before the trust service exists
  let trustService: TrustService | undefined
  const infrastructurePeers = config.bootstrap.map(a => multiaddr(a).getComponents().findLast(c => c.name === 'p2p')?.value).filter((p): p is string => p != null)
  const libp2p = await createAgentLibp2p({
    config,
    connectionGater: config.trust.strict ? createTrustGater(() => trustService, { allowPeers: () => infrastructurePeers }) : undefined,
    privateKey: init.privateKey,
    userAgent: AGENT_VERSION,
    datastore,
    dhtValidators: { [CARD_NAMESPACE]: createCardValidator(datastore) },
    dhtSelectors: { [CARD_NAMESPACE]: selectCard }
  })
  const replayCache: ReplayCache = await loadReplayCache(init.home, {
    windowMs: config.messaging.replayWindowMs,
    afterCrash: init.afterCrash === true,
    maxSkewMs: config.messaging.maxClockSkewMs,
    logger: init.logger
  })
  const auditLog = await openAuditLog({ path: join(init.home, AUDIT_LOG_FILE) })
  for (const warning of auditLog.recovery.warnings) {
    init.logger?.warn({ warning }, 'audit log')
  }
  const audit = new AuditSink(auditLog, init.logger)
  const trust = new TrustService({
    libp2p,
    privateKey: init.privateKey,
    logger: init.logger,
    // trust decisions are rare: the caller waits until its record is on disk
    audit: { append: async (type, data) => { await audit.recordNow(type, JSON.parse(JSON.stringify(data)) as AuditData) } },
    onRevoke: async peer => { await tokens.revoke(peer) }
  }, {
    home: init.home,
    staticPeers: config.trust.peers,
    publicServices: config.trust.publicServices,
    strict: config.trust.strict,
    allowPeers: () => infrastructurePeers
  })
  trustService = trust
  const publicServices = new Set(config.trust.publicServices)
  const tokens: TokenService = new TokenService({
    libp2p,
    privateKey: init.privateKey,
    logger: init.logger,
    // a token opens a private service only for a peer that is trusted anyway
    mayIssue: (peer, services) => trust.isTrusted(peer) || services.every(s => publicServices.has(s)),
    onEvent: ({ type, ...data }) => { audit.record(type, { ...data }) }
  }, {
    home: init.home,
    protectedServices: config.tokens.protectedServices,
    lifetimeMs: config.tokens.lifetimeMs,
    maxLifetimeMs: config.tokens.maxLifetimeMs
  })
  let node: AgentNode | undefined
  const messaging = new MessagingService({
    libp2p,
    privateKey: init.privateKey,
    logger: init.logger,
    tokenProvider: tokens,
    outboundGate: peer => { trust.outboundCheck(peer) },
    onReject: event => { audit.rejectedMessage(event) },
    connect: async (peer, signal) => {
      if (node == null) throw new Error('node not assembled')
      return node.reach(peer, signal)
    }
  }, {
    maxBodyBytes: config.messaging.maxBodyBytes,
    replayWindowMs: config.messaging.replayWindowMs,
    maxClockSkewMs: config.messaging.maxClockSkewMs,
    requestTimeoutMs: config.messaging.requestTimeoutMs,
    retries: config.messaging.retries,
    replayCache
  })
  // who first (trust), then with what (token)
  messaging.addInboundGate(trust.gate)
  messaging.addInboundGate(tokens.gate)
  node = new AgentNode({ rejoinIntervalMs: init.rejoinIntervalMs, libp2p, audit, trust, privateKey: init.privateKey, messaging, tokens, config, home: init.home, logger: init.logger })
  return node
}
