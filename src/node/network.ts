/**
 * The network operations of an agent's libp2p node that the local API offers:
 * addresses, peers, status, connecting to a peer by multiaddr or by ID alone
 * (peer store, then the private DHT), preferring direct connections, ping,
 * and re-joining the bootstrap nodes after every connection was lost.
 */

import { anySignal } from 'any-signal'
import { isLoopback, isPrivate } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { PeerUnreachableError } from '../errors/index.ts'
import { parseTarget } from './target.ts'
// did-key.ts, not the did index: that one loads the agent-card code (jose), which start-up does not need
import { didKeyFromPeerId } from '../did/did-key.ts'
import type { AgentLibp2p } from './libp2p.ts'
import type { Config } from '../config/index.ts'
import type { Connection, PeerId, Startable } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'

/** How often a node with no connections re-dials its bootstrap nodes */
export const REJOIN_INTERVAL_MS = 15_000

/** The agentnet version reported to peers by identify */
export const AGENT_VERSION = 'agentnet/0.1.0'

export interface NodeInfo {
  peerId: string
  /** Full multiaddrs ending in `/p2p/<peerId>` */
  addresses: string[]
  protocols: string[]
  version: string
  /** The peer ID as a `did:key` (Ed25519 multicodec, base58btc) */
  did: string
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

export interface NetworkComponents {
  libp2p: AgentLibp2p
  logger?: Logger
}

export interface NetworkInit {
  config: Config
  /** How often a node with no connections re-dials its bootstrap nodes, ms. @default 15000 */
  rejoinIntervalMs?: number
}

export class Network implements Startable {
  private readonly libp2p: AgentLibp2p
  private readonly peerId: PeerId
  private readonly config: Config
  private readonly logger: Logger | undefined
  private readonly rejoinIntervalMs: number
  private bootstrapTimer: ReturnType<typeof setInterval> | undefined
  private did: string | undefined

  constructor (components: NetworkComponents, init: NetworkInit) {
    this.libp2p = components.libp2p
    this.peerId = components.libp2p.peerId
    this.logger = components.logger
    this.config = init.config
    this.rejoinIntervalMs = init.rejoinIntervalMs ?? REJOIN_INTERVAL_MS
  }

  start (): void {
    if (this.config.bootstrap.length > 0) {
      // @libp2p/bootstrap dials its list once; a node that later loses every
      // connection (network change, overloaded peers) must find its way back
      this.bootstrapTimer = setInterval(() => { this.rejoin() }, this.rejoinIntervalMs)
      this.bootstrapTimer.unref()
    }
  }

  stop (): void {
    clearInterval(this.bootstrapTimer)
  }

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

  addresses (): string[] {
    return this.libp2p.getMultiaddrs().map(ma => ma.toString())
  }

  info (): NodeInfo {
    return {
      peerId: this.peerId.toString(),
      addresses: this.addresses(),
      protocols: this.libp2p.getProtocols(),
      version: AGENT_VERSION,
      // computed once: `agentnet id` then needs no crypto of its own
      did: this.did ??= didKeyFromPeerId(this.peerId)
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
    const dialSignal = anySignal([signal, AbortSignal.timeout(this.config.connections.dialTimeoutMs)])
    try {
      return await this.libp2p.dial(parsed.multiaddr, { signal: dialSignal })
    } catch (err) {
      throw new PeerUnreachableError(`cannot connect to ${target}: ${(err as Error).message}`)
    } finally {
      dialSignal.clear()
    }
  }

  /**
   * A connection to `peer` by ID alone (peer store, then the DHT), preferring
   * a direct one: when the only way in is a relay and the peer listens on
   * WebRTC, try a WebRTC connection (signalled over the relay) before
   * settling for the relayed, limited one.
   */
  async reach (peer: PeerId, signal?: AbortSignal): Promise<Connection> {
    // any-signal, not AbortSignal.any, which leaks on long-lived signals (nodejs/node#54614)
    const dialSignal = anySignal([signal, AbortSignal.timeout(this.config.connections.dialTimeoutMs)])
    try {
      return await this.reachWithin(peer, dialSignal)
    } finally {
      dialSignal.clear()
    }
  }

  private async reachWithin (peer: PeerId, dialSignal: AbortSignal): Promise<Connection> {
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
    const pingSignal = anySignal([signal, AbortSignal.timeout(this.config.connections.dialTimeoutMs)])
    try {
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
    } finally {
      pingSignal.clear()
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

