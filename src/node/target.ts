import { AgentnetError } from '../errors/index.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export class InvalidTargetError extends AgentnetError { override readonly code = 'InvalidTarget' }

/** What a user may write to name a peer */
export type Target =
  | { kind: 'multiaddr', multiaddr: Multiaddr, peerId?: PeerId }
  | { kind: 'peer', peerId: PeerId, service?: string }

/**
 * Parse a peer reference: a multiaddr (`/ip4/…/p2p/12D3…`), a bare peer ID
 * (`12D3KooW…`) or an agentnet URL (`agentnet://12D3KooW…/service`).
 */
export function parseTarget (input: string): Target {
  const text = input.trim()
  if (text.startsWith('/')) {
    let ma: Multiaddr
    try {
      ma = multiaddr(text)
    } catch (err) {
      throw new InvalidTargetError(`invalid multiaddr ${JSON.stringify(input)}: ${(err as Error).message}`)
    }
    const id = ma.getComponents().findLast(c => c.name === 'p2p')?.value
    if (id == null) {
      return { kind: 'multiaddr', multiaddr: ma }
    }
    return { kind: 'multiaddr', multiaddr: ma, peerId: parsePeerId(id) }
  }
  if (text.startsWith('agentnet://')) {
    const rest = text.slice('agentnet://'.length)
    const slash = rest.indexOf('/')
    const id = slash === -1 ? rest : rest.slice(0, slash)
    const service = slash === -1 ? undefined : rest.slice(slash + 1)
    const target: Target = { kind: 'peer', peerId: parsePeerId(id) }
    if (service != null && service !== '') {
      target.service = service
    }
    return target
  }
  return { kind: 'peer', peerId: parsePeerId(text) }
}

export function parsePeerId (text: string): PeerId {
  try {
    return peerIdFromString(text)
  } catch {
    throw new InvalidTargetError(`not a peer ID or multiaddr: ${JSON.stringify(text)}`)
  }
}

/** Whether `text` is a valid peer ID */
export function isPeerId (text: string): boolean {
  try {
    peerIdFromString(text)
    return true
  } catch {
    return false
  }
}
