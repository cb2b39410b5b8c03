/**
 * @packageDocumentation
 *
 * Identity in forms other agent ecosystems understand: the node's peer ID as
 * a `did:key` (Ed25519 multicodec 0xed01, base58btc multibase), and an
 * A2A-style Agent Card signed with JWS (`alg: EdDSA`, `kid` = the did:key
 * verification method, payload RFC 8785 canonical JSON), made and checked
 * with `jose` and `canonicalize`.
 *
 * @example
 *
 * ```ts
 * import { loadIdentity } from '../identity/index.ts'
 * import { createAgentCard, didKeyFromPeerId, verifyAgentCard } from './index.ts'
 *
 * const { privateKey, peerId } = await loadIdentity('/tmp/agentnet-a')
 * console.log(didKeyFromPeerId(peerId))           // did:key:z6Mk…
 * const card = await createAgentCard({ name: 'translator', services: ['translate'], version: '0.1.0' }, privateKey)
 * const verified = await verifyAgentCard(JSON.stringify(card))
 * console.log(verified.peerId === peerId.toString()) // true
 * ```
 */

export { didKeyFromPeerId, didKeyFromPublicKey, didKeyVerificationMethod, publicKeyFromDidKey, peerIdFromDidKey, ed25519PublicKeyOf } from './did-key.ts'
export { createAgentCard, verifyAgentCard } from './agent-card.ts'
export type { A2AAgentCard, AgentCardInit, AgentCardSignature, AgentSkill, VerifiedAgentCard } from './agent-card.ts'
export { agentCardHandler, fetchAgentCard, AGENT_CARD_SERVICE, AGENT_CARD_CONTENT_TYPE } from './service.ts'
export type { CardRequester } from './service.ts'
export { InvalidDidError, InvalidAgentCardError } from './errors.ts'
export * from './constants.ts'
