/**
 * Strict mode at the connection level: a libp2p `ConnectionGater` that
 * refuses inbound connections (direct or relayed) from peers the trust
 * service does not admit.
 *
 * @module
 */

import type { TrustService } from './trust.ts'
import type { ConnectionGater, PeerId } from '@libp2p/interface'

export interface TrustGaterOptions {
  /**
   * Peers always admitted, even before the trust service exists or has
   * loaded its store (bootstrap and relay peers). The service's own
   * `allowPeers` applies as well once it exists.
   */
  allowPeers?: () => Iterable<string | PeerId>
}

/**
 * Make the connection gater of strict mode. libp2p needs the gater when the
 * node is created, before the trust service exists, so the gater asks
 * `getService()` at every connection:
 *
 * - no service yet → only `allowPeers` are admitted (fail closed);
 * - a service with `strict: false` → everyone is admitted;
 * - a strict service → {@link TrustService.admitsInbound}: trusted peers,
 *   `allowPeers`, peers we sent a request to (their approval dials us), and,
 *   while this node holds a live invite and `strictAdmitsInvitees` is on,
 *   unknown peers (so an invitee can present its code). Peers we rejected or
 *   revoked are refused.
 *
 * The decision is taken once the Noise handshake has authenticated the
 * remote peer (`denyInboundEncryptedConnection`), and for relayed connections
 * on the remote peer (`denyInboundRelayedConnection`). Outbound connections
 * are this node's own choice (DHT, relays, requests, invites) and are not
 * gated. Install the gater only on strict nodes.
 *
 * @example
 * ```ts
 * let service: TrustService | undefined
 * const libp2p = await createLibp2p({ connectionGater: createTrustGater(() => service, { allowPeers: () => bootstrapIds }), … })
 * service = trust({ home, strict: true })({ libp2p, privateKey })
 * await service.start()
 * ```
 */
export function createTrustGater (getService: () => TrustService | undefined, options: TrustGaterOptions = {}): ConnectionGater {
  const allowed = (peer: PeerId): boolean => {
    if (options.allowPeers !== undefined) {
      const id = peer.toString()
      for (const p of options.allowPeers()) {
        if (p.toString() === id) return true
      }
    }
    const service = getService()
    if (service === undefined) return false
    return service.admitsInbound(peer)
  }
  return {
    denyInboundEncryptedConnection: (peer: PeerId) => !allowed(peer),
    denyInboundRelayedConnection: (_relay: PeerId, remote: PeerId) => !allowed(remote)
  }
}
