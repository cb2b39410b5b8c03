/**
 * Milestones an operator waits for, logged once each (or on change):
 * listening, bootstrap connected, DHT ready, relay reserved, reachability
 * changed, card published. The same state answers `node.state` /
 * `node.wait` (what `agentnet wait` and `start --detach` wait for).
 */

import { multiaddr } from '@multiformats/multiaddr'
import type { AgentLibp2p } from './libp2p.ts'
import type { Reachability } from './network.ts'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'

export interface Readiness {
  peerId: string
  addresses: string[]
  /** listening and, with bootstrap peers configured, connected to one with the DHT joined */
  ready: boolean
  listening: boolean
  bootstrap: { configured: number, connected: number }
  dht: 'disabled' | 'joining' | 'ready'
  reachability: Reachability
  relayReservations: string[]
}

export interface MilestoneHelpers {
  reachabilityOf: (addresses: Multiaddr[]) => Reachability
  relaysOf: (addresses: Multiaddr[]) => string[]
}

interface EventSource {
  addEventListener: (event: any, handler: any) => void
  removeEventListener: (event: any, handler: any) => void
}

export class Milestones {
  private readonly libp2p: AgentLibp2p
  private readonly logger: Logger | undefined
  private readonly bootstrapPeers: Set<string>
  private readonly helpers: MilestoneHelpers
  private readonly connectedBootstrap = new Set<string>()
  private listening = false
  private dhtReady = false
  private reachability: Reachability = 'unknown'
  private relays = new Set<string>()
  private readonly waiters = new Set<() => void>()
  private readonly cleanups: Array<() => void> = []

  constructor (libp2p: AgentLibp2p, bootstrap: string[], helpers: MilestoneHelpers, logger?: Logger) {
    this.libp2p = libp2p
    this.logger = logger
    this.helpers = helpers
    this.bootstrapPeers = new Set(bootstrap.map(a => multiaddr(a).getComponents().findLast(c => c.name === 'p2p')?.value).filter((p): p is string => p != null))
  }

  /** Call after libp2p started listening */
  start (): void {
    const on = (target: EventSource, event: string, handler: (evt: any) => void): void => {
      target.addEventListener(event, handler)
      this.cleanups.push(() => { target.removeEventListener(event, handler) })
    }
    on(this.libp2p, 'peer:connect', (evt: CustomEvent) => {
      const peer = String(evt.detail)
      if (this.bootstrapPeers.has(peer) && !this.connectedBootstrap.has(peer)) {
        this.connectedBootstrap.add(peer)
        this.logger?.info({ milestone: 'bootstrap-connected', peer }, 'connected to bootstrap peer')
        this.changed()
      }
    })
    on(this.libp2p, 'peer:disconnect', (evt: CustomEvent) => {
      this.connectedBootstrap.delete(String(evt.detail))
    })
    on(this.libp2p, 'self:peer:update', () => { this.addressesChanged() })
    const routingTable = (this.libp2p.services.dht as { routingTable?: EventSource & { size: number } } | undefined)?.routingTable
    if (routingTable != null) {
      on(routingTable, 'peer:add', () => {
        if (!this.dhtReady) {
          this.dhtReady = true
          this.logger?.info({ milestone: 'dht-ready', routingTable: routingTable.size }, 'DHT ready (routing table has peers)')
          this.changed()
        }
      })
    }
    this.listening = this.libp2p.getMultiaddrs().length > 0
    this.logger?.info({ milestone: 'listening', peerId: this.libp2p.peerId.toString(), addresses: this.libp2p.getMultiaddrs().map(a => a.toString()) }, 'listening')
    this.addressesChanged()
    this.changed()
  }

  stop (): void {
    for (const cleanup of this.cleanups.splice(0)) cleanup()
    for (const waiter of this.waiters) waiter()
    this.waiters.clear()
  }

  /** Log a published card (called by the node) */
  cardPublished (seq: number): void {
    this.logger?.info({ milestone: 'card-published', seq }, 'agent card published in the DHT')
  }

  state (): Readiness {
    const dht = this.libp2p.services.dht == null ? 'disabled' : this.dhtReady ? 'ready' : 'joining'
    const addresses = this.libp2p.getMultiaddrs()
    const bootstrapDone = this.bootstrapPeers.size === 0 || (this.connectedBootstrap.size > 0 && dht !== 'joining')
    return {
      peerId: this.libp2p.peerId.toString(),
      addresses: addresses.map(a => a.toString()),
      ready: this.listening && bootstrapDone,
      listening: this.listening,
      bootstrap: { configured: this.bootstrapPeers.size, connected: this.connectedBootstrap.size },
      dht,
      reachability: this.reachability,
      relayReservations: [...this.relays]
    }
  }

  /** Resolves with the state once ready; rejects with `signal`'s reason */
  async whenReady (signal?: AbortSignal): Promise<Readiness> {
    while (true) {
      const state = this.state()
      if (state.ready) return state
      signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          this.waiters.delete(done)
          reject(signal?.reason)
        }
        const done = (): void => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        this.waiters.add(done)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
      if (this.cleanups.length === 0) throw new Error('the node is stopping')
    }
  }

  private addressesChanged (): void {
    const addresses = this.libp2p.getMultiaddrs()
    const reachability = this.helpers.reachabilityOf(addresses)
    if (reachability !== this.reachability) {
      const before = this.reachability
      this.reachability = reachability
      if (before !== 'unknown' || reachability !== 'private') {
        this.logger?.info({ milestone: 'reachability', from: before, to: reachability }, `reachability ${reachability}`)
      }
    }
    const relays = new Set(this.helpers.relaysOf(addresses))
    for (const relay of relays) {
      if (!this.relays.has(relay)) this.logger?.info({ milestone: 'relay-reserved', relay }, 'relay reservation made')
    }
    for (const relay of this.relays) {
      if (!relays.has(relay)) this.logger?.info({ milestone: 'relay-lost', relay }, 'relay reservation lost')
    }
    this.relays = relays
  }

  private changed (): void {
    const waiters = [...this.waiters]
    this.waiters.clear()
    for (const waiter of waiters) waiter()
  }
}
