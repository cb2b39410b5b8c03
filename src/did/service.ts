/**
 * The A2A card over the agent protocol: a service handler that answers a
 * request on {@link AGENT_CARD_SERVICE} with the node's signed card, and a
 * fetch that asks a peer for its card and checks it names that peer.
 *
 * Wiring (one line where the node registers its own services; the service
 * must be public so peers that do not trust us yet can read it):
 *
 * ```ts
 * node.messaging.registerService(AGENT_CARD_SERVICE, agentCardHandler(async () => createAgentCard({...config.card, version}, privateKey)))
 * // and AGENT_CARD_SERVICE answered for untrusted peers (trust.publicServices)
 * ```
 *
 * @module
 */

import { verifyAgentCard } from './agent-card.ts'
import { InvalidAgentCardError } from './errors.ts'
import type { A2AAgentCard, VerifiedAgentCard } from './agent-card.ts'
import type { InboundMessage, ServiceHandler, ServiceReply } from '../messaging/index.ts'
import type { PeerId } from '@libp2p/interface'

/** Service name of the card on `/agentnet/msg/1.0.0` */
export const AGENT_CARD_SERVICE = 'agent-card'
export const AGENT_CARD_CONTENT_TYPE = 'application/json'

/** Answers every request with the card `getCard` makes (made once, then cached until `refresh`) */
export function agentCardHandler (getCard: () => Promise<A2AAgentCard>): ServiceHandler & { refresh: () => void } {
  let cached: Promise<Uint8Array> | undefined
  const handler = async (message: InboundMessage): Promise<ServiceReply | undefined> => {
    if (message.kind !== 'request') return undefined
    cached ??= getCard().then(card => new TextEncoder().encode(JSON.stringify(card)))
    try {
      return { body: await cached, contentType: AGENT_CARD_CONTENT_TYPE }
    } catch (err) {
      cached = undefined
      throw err
    }
  }
  return Object.assign(handler, { refresh: () => { cached = undefined } })
}

/** What {@link fetchAgentCard} needs of the messaging service */
export interface CardRequester {
  send: (to: PeerId, service: string, body: Uint8Array, contentType: string, options?: { timeoutMs?: number }) => Promise<{ from: string, body: Uint8Array }>
}

/**
 * Ask `peer` for its card and verify it: valid JWS by the did:key of the
 * peer ID it claims, and that peer ID is the one that answered.
 */
export async function fetchAgentCard (messaging: CardRequester, peer: PeerId, options: { timeoutMs?: number } = {}): Promise<{ card: A2AAgentCard, verified: VerifiedAgentCard }> {
  const reply = await messaging.send(peer, AGENT_CARD_SERVICE, new Uint8Array(0), AGENT_CARD_CONTENT_TYPE, options)
  const text = new TextDecoder().decode(reply.body)
  const verified = await verifyAgentCard(text)
  if (verified.peerId !== peer.toString() || reply.from !== peer.toString()) {
    throw new InvalidAgentCardError(`${peer.toString()} answered with the card of ${verified.peerId}`)
  }
  return { card: JSON.parse(text) as A2AAgentCard, verified }
}
