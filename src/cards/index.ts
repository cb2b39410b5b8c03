/**
 * @packageDocumentation
 *
 * Agent cards: a small signed, sequence-numbered description of an agent
 * (display name, services, free-form metadata) that a node publishes in the
 * private DHT under its own key, `/agentnet-card/<peerId>`. Anyone can look a
 * card up by peer ID and check it was signed by that peer.
 *
 * Every DHT node runs {@link cardValidator} before storing or returning a
 * card, so forged (signed by another key, or for another peer's key),
 * oversized and older-sequence cards are refused network-wide, not only by
 * the reader. The sequence number is the publication time in ms (strictly
 * increasing per publisher), so it needs no stored counter.
 *
 * ```
 * record value = 0x01 || uvarint(len(payload)) || payload || signature(64)
 * payload      = UTF-8 JSON {"peerId", "seq", "name", "services": [..], "metadata": {..}}
 * signature    = Ed25519 by peerId's key over
 *                uvarint(13) || "agentnet-card" || uvarint(20) || "/agentnet/card/1.0.0" || uvarint(len(payload)) || payload
 * ```
 *
 * @example
 *
 * ```ts
 * import { createCardValidator, encodeCard, cardKey } from './index.ts'
 *
 * const value = encodeCard({ name: 'translator', services: ['translate'], metadata: {} }, privateKey)
 * await libp2p.services.dht.put(cardKey(peerId), value)
 * ```
 */

export * from './codec.ts'
export { CardService, CardNotFoundError, CARD_REPUBLISH_MS } from './service.ts'
export type { CardServiceComponents, CardServiceInit } from './service.ts'
