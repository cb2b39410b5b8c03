/**
 * The checks other layers ask of the trust records: the inbound gate of the
 * messaging service, the outbound check before a send, and strict-mode
 * admission of inbound connections. Synchronous and read-only.
 *
 * @module
 */

import { RevokedByPeerError, UntrustedPeerError } from './errors.ts'
import type { TrustRecords } from './records.ts'
import type { InboundGate } from '../messaging/index.ts'
import type { Message } from '../protocol/index.ts'
import type { PeerId } from '@libp2p/interface'

/**
 * The inbound gate: requests and one-way messages pass only from trusted
 * peers, or to a service in `publicServices`; peers we revoked or that
 * revoked us never pass.
 */
export function inboundGate (records: TrustRecords, publicServices: ReadonlySet<string>): InboundGate {
  return (message: Message, remotePeer: PeerId): void => {
    const state = records.effectiveState(remotePeer.toString())
    if (state === 'trusted') return
    if (state === 'revoked') throw new UntrustedPeerError('this node revoked its trust in you')
    if (state === 'revoked-by-peer') throw new UntrustedPeerError('you revoked your trust in this node')
    if (publicServices.has(message.service)) return
    throw new UntrustedPeerError(`service ${JSON.stringify(message.service)} answers trusted peers only; ask for trust first`)
  }
}

/**
 * Before sending to `id`: {@link RevokedByPeerError} when the peer revoked
 * us, {@link UntrustedPeerError} when we revoked it; others pass.
 */
export function checkOutbound (records: TrustRecords, id: string): void {
  const state = records.effectiveState(id)
  if (state === 'revoked-by-peer') throw new RevokedByPeerError(`${id} revoked its trust in this node`)
  if (state === 'revoked') throw new UntrustedPeerError(`this node revoked its trust in ${id}`)
}

export interface AdmissionPolicy {
  strict: boolean
  strictAdmitsInvitees: boolean
  /** the store is loaded (before it is, only allowed peers pass) */
  loaded: boolean
  isAllowed: (id: string) => boolean
}

/** Strict-mode admission of an inbound connection; always true when not strict. */
export function admits (records: TrustRecords, policy: AdmissionPolicy, peer: PeerId): boolean {
  if (!policy.strict) return true
  const id = peer.toString()
  if (policy.isAllowed(id)) return true
  if (!policy.loaded) return false
  const state = records.effectiveState(id)
  // trusted, or we asked it and its answer will come by dialling us
  if (state === 'trusted' || state === 'pending-outbound') return true
  if (state === 'revoked' || state === 'rejected') return false
  return policy.strictAdmitsInvitees && records.hasLiveInvite()
}
