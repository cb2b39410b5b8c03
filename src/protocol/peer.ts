/**
 * Peer IDs from their strings, parsed once: every outbound frame names its
 * recipient by ID string, and parsing (base58 decode, then encode again for
 * the canonical string) per frame was a visible share of a sender's CPU (a
 * group commit to 100 members parsed 100 of them).
 *
 * @module
 */

import { peerIdFromString } from '@libp2p/peer-id'
import { InvalidArgumentError } from './errors.ts'
import type { PeerId } from '@libp2p/interface'

/** Most parsed peer IDs {@link toPeer} keeps; the cache is emptied when full (it only saves work) */
const PARSED_PEERS_MAX = 1024
const parsedPeers = new Map<string, PeerId>()

/**
 * The peer ID a string names; parsed IDs are kept, and a kept PeerId also
 * keeps its encoded string.
 *
 * @throws {InvalidArgumentError} when `peer` is not a peer ID
 */
export function toPeer (peer: PeerId | string, what = 'peer'): PeerId {
  if (typeof peer !== 'string') return peer
  const known = parsedPeers.get(peer)
  if (known !== undefined) return known
  let parsed: PeerId
  try {
    parsed = peerIdFromString(peer)
  } catch {
    throw new InvalidArgumentError(`${what}: ${JSON.stringify(peer.slice(0, 80))} is not a peer ID`)
  }
  if (parsedPeers.size >= PARSED_PEERS_MAX) parsedPeers.clear()
  parsedPeers.set(peer, parsed)
  return parsed
}
