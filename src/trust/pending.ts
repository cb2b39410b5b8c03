/**
 * Admission to the pending-request queue. A request costs its sender one
 * throwaway key, so the queue is bounded by where requests come from, not
 * only by how many there are: each source network (the IPv4 /24 or IPv6 /48
 * of the connection's remote address) holds at most `maxPerSource` entries,
 * and when the queue is full a newcomer from a less-represented network
 * takes the place of the oldest entry of the most-represented one. A flood
 * from one network thus fills at most its own share and, even at the total
 * bound, cannot keep a request from elsewhere out. Entries also expire
 * `ttlMs` after they were first made (a repeat does not extend them).
 *
 * @module
 */

import type { Multiaddr } from '@multiformats/multiaddr'

/** Source of requests whose connection address is unknown or not IP (older stores, other transports). */
export const UNKNOWN_SOURCE = 'unknown'

/** `a.b.c` of an IPv4 address, or undefined. */
function ipv4Prefix (address: string): string | undefined {
  const parts = address.split('.')
  if (parts.length !== 4 || !parts.every(p => /^\d{1,3}$/.test(p) && Number(p) < 256)) return undefined
  return `ip4/${parts.slice(0, 3).map(Number).join('.')}.0/24`
}

/** The eight 16-bit groups of an IPv6 address (an embedded IPv4 tail as two), or undefined. */
function ipv6Groups (address: string): number[] | undefined {
  const text = address.toLowerCase().replace(/%.*$/, '')
  const parts = (piece: string): string[] => {
    if (piece === '') return []
    const out: string[] = []
    for (const g of piece.split(':')) {
      const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(g)
      if (v4 === null) {
        out.push(g)
        continue
      }
      const b = v4.slice(1).map(Number)
      if (b.some(x => x > 255)) return ['bad']
      out.push(((b[0] as number) * 256 + (b[1] as number)).toString(16), ((b[2] as number) * 256 + (b[3] as number)).toString(16))
    }
    return out
  }
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const head = parts(halves[0] as string)
  const tail = halves.length === 2 ? parts(halves[1] as string) : []
  const zeros = halves.length === 2 ? 8 - head.length - tail.length : 0
  if (zeros < 0) return undefined
  const groups = [...head, ...Array<string>(zeros).fill('0'), ...tail]
  if (groups.length !== 8 || !groups.every(g => /^[0-9a-f]{1,4}$/.test(g))) return undefined
  return groups.map(g => parseInt(g, 16))
}

/** `ip6/x:y:z::/48` of an IPv6 address (`ip4/…/24` for an IPv4-mapped one), or undefined. */
function ipv6Prefix (address: string): string | undefined {
  const g = ipv6Groups(address)
  if (g === undefined) return undefined
  if (g.slice(0, 5).every(x => x === 0) && g[5] === 0xffff) {
    return ipv4Prefix(`${(g[6] as number) >> 8}.${(g[6] as number) & 255}.${(g[7] as number) >> 8}.${(g[7] as number) & 255}`)
  }
  return `ip6/${g.slice(0, 3).map(x => x.toString(16)).join(':')}::/48`
}

/**
 * The source network of a connection: `ip4/a.b.c.0/24`, `ip6/x:y:z::/48`,
 * `relay/<relay peer ID>` for a relayed connection (peers behind one relay
 * share its share), or {@link UNKNOWN_SOURCE}.
 */
export function sourceOf (remoteAddr: Multiaddr | undefined): string {
  if (remoteAddr === undefined) return UNKNOWN_SOURCE
  const components = remoteAddr.getComponents()
  const circuit = components.findIndex(c => c.name === 'p2p-circuit')
  if (circuit >= 0) {
    const relay = components.slice(0, circuit).findLast(c => c.name === 'p2p')?.value
    return relay === undefined ? UNKNOWN_SOURCE : `relay/${relay}`
  }
  const ip = components.find(c => c.name === 'ip4' || c.name === 'ip6')
  if (ip?.value === undefined) return UNKNOWN_SOURCE
  return (ip.name === 'ip4' ? ipv4Prefix(ip.value) : ipv6Prefix(ip.value)) ?? UNKNOWN_SOURCE
}

/** What {@link PendingQueue.admit} decided for a new request. */
export type Admission =
  | { admitted: true, evict?: string }
  | { admitted: false, reason: string }

/**
 * The pending peers by source, oldest first (the order they were added;
 * a repeat keeps its place). Only bookkeeping: the records are the caller's.
 */
export class PendingQueue {
  readonly maxTotal: number
  readonly maxPerSource: number
  private readonly sourceByPeer = new Map<string, string>()
  /** per source, its peers in the order they were added */
  private readonly peersBySource = new Map<string, Set<string>>()

  constructor (maxTotal: number, maxPerSource: number) {
    this.maxTotal = maxTotal
    this.maxPerSource = maxPerSource
  }

  get size (): number {
    return this.sourceByPeer.size
  }

  sourceFor (peer: string): string | undefined {
    return this.sourceByPeer.get(peer)
  }

  /** Every pending peer, by source, each source's oldest first. */
  peers (): IterableIterator<string> {
    return this.sourceByPeer.keys()
  }

  countFor (source: string): number {
    return this.peersBySource.get(source)?.size ?? 0
  }

  /** Sources and their entry counts (a copy; stats and tests). */
  counts (): Map<string, number> {
    return new Map([...this.peersBySource].map(([s, peers]) => [s, peers.size]))
  }

  clear (): void {
    this.sourceByPeer.clear()
    this.peersBySource.clear()
  }

  add (peer: string, source: string): void {
    if (this.sourceByPeer.has(peer)) return
    this.sourceByPeer.set(peer, source)
    let peers = this.peersBySource.get(source)
    if (peers === undefined) {
      peers = new Set()
      this.peersBySource.set(source, peers)
    }
    peers.add(peer)
  }

  remove (peer: string): void {
    const source = this.sourceByPeer.get(peer)
    if (source === undefined) return
    this.sourceByPeer.delete(peer)
    const peers = this.peersBySource.get(source)
    peers?.delete(peer)
    if (peers?.size === 0) this.peersBySource.delete(source)
  }

  /**
   * May a new peer from `source` be queued? Refused when its network holds
   * its share already; when the queue is full, admitted in place of the
   * oldest entry of the most-represented network if that holds more entries
   * than the newcomer's, else refused.
   */
  admit (source: string): Admission {
    const own = this.countFor(source)
    if (own >= this.maxPerSource) return { admitted: false, reason: `${own} requests from your network are pending, its maximum` }
    if (this.size < this.maxTotal) return { admitted: true }
    let largest: Set<string> | undefined
    for (const peers of this.peersBySource.values()) {
      if (largest === undefined || peers.size > largest.size) largest = peers
    }
    if (largest === undefined || largest.size <= own + 1) return { admitted: false, reason: `${this.size} requests are pending, the maximum` }
    const evict = largest.values().next().value as string
    return { admitted: true, evict }
  }
}
