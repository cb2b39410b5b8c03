/**
 * Connection slots for the peers that matter. libp2p's connection manager
 * refuses an inbound connection before it knows who dials (at
 * `maxConnections`), so throwaway identities could fill every slot and lock
 * out a trusted peer. The node therefore runs libp2p with
 * `maxConnections + reservedConnections` slots and this guard closes, as soon
 * as a connection opens, an inbound connection from a peer that is not
 * preferred (trusted or infrastructure) when it would exceed:
 * - `maxConnections` connections from such peers in all, or
 * - `maxPerIp` from one IP address, or `maxPerSubnet` from one /24 (IPv4)
 *   or /48 (IPv6).
 * Trusted peers are also tagged in the peer store (see the composition root)
 * so libp2p's pruner, when it must close connections, closes strangers'
 * first.
 */
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import type { Logger } from 'pino'

export interface ConnectionGuardInit {
  /** Inbound connections from peers that are not preferred, at most */
  maxConnections: number
  /** … from one IP address */
  maxPerIp: number
  /** … from one /24 (IPv4) or /48 (IPv6) */
  maxPerSubnet: number
}

export interface ConnectionGuardComponents {
  libp2p: Pick<Libp2p, 'addEventListener' | 'removeEventListener' | 'getConnections'>
  isPreferred: (peer: PeerId) => boolean
  logger?: Logger
}

/** At most one log line per this long */
const LOG_INTERVAL_MS = 10_000

export class ConnectionGuard {
  private readonly components: ConnectionGuardComponents
  private readonly init: ConnectionGuardInit
  private refused = 0
  private lastLog = 0

  constructor (components: ConnectionGuardComponents, init: ConnectionGuardInit) {
    this.components = components
    this.init = init
  }

  start (): void {
    this.components.libp2p.addEventListener('connection:open', this.onOpen)
  }

  stop (): void {
    this.components.libp2p.removeEventListener('connection:open', this.onOpen)
  }

  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    if (connection.direction !== 'inbound' || this.components.isPreferred(connection.remotePeer)) {
      return
    }
    const reason = this.overLimit(connection)
    if (reason === undefined) {
      return
    }
    this.refused++
    connection.abort(new Error(`connection refused: ${reason}`))
    const now = Date.now()
    if (now - this.lastLog >= LOG_INTERVAL_MS) {
      this.lastLog = now
      this.components.logger?.warn({ refused: this.refused, reason, peer: connection.remotePeer.toString() }, 'closed inbound connections from untrusted peers over the limits (slots stay free for trusted peers)')
      this.refused = 0
    }
  }

  /** Why `connection` is one too many, or undefined */
  private overLimit (connection: Connection): string | undefined {
    const host = hostOf(connection)
    const subnet = host === undefined ? undefined : subnetOf(host)
    let total = 0
    let sameHost = 0
    let sameSubnet = 0
    for (const c of this.components.libp2p.getConnections()) {
      if (c.direction !== 'inbound' || c.status !== 'open' || this.components.isPreferred(c.remotePeer)) continue
      total++
      if (host === undefined) continue
      const h = hostOf(c)
      if (h === host) sameHost++
      if (h !== undefined && subnetOf(h) === subnet) sameSubnet++
    }
    // the counts include `connection` itself
    if (total > this.init.maxConnections) return `more than ${this.init.maxConnections} connections from untrusted peers`
    if (sameHost > this.init.maxPerIp) return `more than ${this.init.maxPerIp} connections from ${host}`
    if (sameSubnet > this.init.maxPerSubnet) return `more than ${this.init.maxPerSubnet} connections from ${subnet}`
    return undefined
  }
}

function hostOf (connection: Connection): string | undefined {
  for (const c of connection.remoteAddr.getComponents()) {
    if (c.name === 'ip4' || c.name === 'ip6') return c.value
  }
  return undefined
}

/** `a.b.c` for IPv4 (/24), the first three groups for IPv6 (/48) */
function subnetOf (host: string): string {
  if (host.includes(':')) {
    return expandIpv6(host).slice(0, 3).join(':') + '::/48'
  }
  return host.split('.').slice(0, 3).join('.') + '.0/24'
}

function expandIpv6 (host: string): string[] {
  const [head = '', tail = ''] = host.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = host.includes('::') ? (tail === '' ? [] : tail.split(':')) : []
  const fill = host.includes('::') ? new Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0') : []
  return [...left, ...fill, ...right]
}
