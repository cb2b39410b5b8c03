/**
 * The A2A card over the agent protocol: a service handler that answers a
 * request on {@link AGENT_CARD_SERVICE} with the node's signed card, and a
 * fetch that asks a peer for its card and checks it names that peer.
 *
 * The composition root registers it through the node (so the reply passes
 * the outbox) with the card content the outbox admitted at start; the
 * service must be in `trust.publicServices` for peers that do not trust us
 * yet to read it.
 *
 * @module
 */

import { InvalidAgentCardError } from './errors.ts'
import type { A2AAgentCard, VerifiedAgentCard } from './agent-card.ts'
import type { InboundMessage } from '../messaging/index.ts'
import type { PeerId } from '@libp2p/interface'

/** Service name of the card on `/agentnet/msg/2.0.0` */
export const AGENT_CARD_SERVICE = 'agent-card'
export const AGENT_CARD_CONTENT_TYPE = 'application/json'

/** What the handler answers with (the node passes it through the outbox) */
export interface AgentCardReply {
  body: Uint8Array
  contentType: string
}

/**
 * Answers every request with the card `getCard` makes. The signed card is
 * cached while `version()` returns the same value (e.g. the card content
 * object, replaced when the agent publishes a new card), or until `refresh`.
 */
export function agentCardHandler (getCard: () => Promise<A2AAgentCard>, options: { version?: () => unknown } = {}): ((message: InboundMessage) => Promise<AgentCardReply | undefined>) & { refresh: () => void } {
  let cached: Promise<Uint8Array> | undefined
  let cachedFor: unknown
  const handler = async (message: InboundMessage): Promise<AgentCardReply | undefined> => {
    if (message.kind !== 'request') return undefined
    const version = options.version?.()
    if (cached === undefined || version !== cachedFor) {
      cachedFor = version
      cached = getCard().then(card => new TextEncoder().encode(JSON.stringify(card)))
    }
    try {
      return { body: await cached, contentType: AGENT_CARD_CONTENT_TYPE }
    } catch (err) {
      cached = undefined
      throw err
    }
  }
  return Object.assign(handler, { refresh: () => { cached = undefined } })
}

/** What {@link fetchAgentCard} needs: the node's `send` (the empty request body passes the outbox) */
export interface CardRequester {
  send: (to: PeerId, service: string, body: Uint8Array, contentType: string, options?: { timeoutMs?: number }) => Promise<{ from: string, body: Uint8Array }>
}

/**
 * Ask `peer` for its card and verify it: valid JWS by the did:key of the
 * peer ID it claims, and that peer ID is the one that answered.
 */
export async function fetchAgentCard (messaging: CardRequester, peer: PeerId, options: { timeoutMs?: number, service?: string } = {}): Promise<{ card: A2AAgentCard, verified: VerifiedAgentCard }> {
  const reply = await messaging.send(peer, options.service ?? AGENT_CARD_SERVICE, new Uint8Array(0), AGENT_CARD_CONTENT_TYPE, { timeoutMs: options.timeoutMs })
  const text = new TextDecoder().decode(reply.body)
  // jose loads only when a card is checked
  const { verifyAgentCard } = await import('./agent-card.ts')
  const verified = await verifyAgentCard(text)
  if (verified.peerId !== peer.toString() || reply.from !== peer.toString()) {
    throw new InvalidAgentCardError(`${peer.toString()} answered with the card of ${verified.peerId}`)
  }
  return { card: JSON.parse(text) as A2AAgentCard, verified }
}
