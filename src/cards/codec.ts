/** Agent card codec, DHT validator and selector; see `index.ts` */

import { AgentnetError } from '../errors/index.ts'
import { Libp2pRecord } from '@libp2p/record'
import { peerIdFromString } from '@libp2p/peer-id'
import { Key } from 'interface-datastore'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { CARD_SIGNATURE_SCHEME, createSigner, decodeSignedBlob, encodeSignedBlob, verifySignature } from '../protocol/index.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

/** First segment of card keys in the DHT */
export const CARD_NAMESPACE = 'agentnet-card'
/** Largest card record accepted anywhere */
export const MAX_CARD_BYTES = 4096
export const MAX_NAME_LENGTH = 64
export const MAX_SERVICES = 32
/** Where kad-dht keeps records in its datastore (its default prefix) */
const DHT_RECORD_PREFIX = '/dht/record'

export interface CardContent {
  name: string
  services: string[]
  metadata: Record<string, unknown>
}

export interface AgentCard extends CardContent {
  peerId: string
  /** Publication time in ms; a newer card always has a higher seq */
  seq: number
}

export class InvalidCardError extends AgentnetError { override readonly code = 'InvalidCard' }

export class StaleCardError extends AgentnetError { override readonly code = 'StaleCard' }

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function cardKey (peer: PeerId | string): Uint8Array {
  return encoder.encode(`/${CARD_NAMESPACE}/${peer.toString()}`)
}

/** Check a card's content before publishing it: the same limits validators apply */
export function checkCardContent (content: CardContent): void {
  if (typeof content.name !== 'string' || content.name.length > MAX_NAME_LENGTH) {
    throw new InvalidCardError(`card name must be a string of at most ${MAX_NAME_LENGTH} characters`)
  }
  if (!Array.isArray(content.services) || content.services.length > MAX_SERVICES ||
      !content.services.every(s => typeof s === 'string' && s.length > 0 && s.length <= 128)) {
    throw new InvalidCardError(`card services must be at most ${MAX_SERVICES} names`)
  }
  if (typeof content.metadata !== 'object' || content.metadata === null || Array.isArray(content.metadata)) {
    throw new InvalidCardError('card metadata must be a JSON object')
  }
}

export function encodeCard (content: CardContent, privateKey: PrivateKey, seq: number): Uint8Array {
  checkCardContent(content)
  const signer = createSigner(privateKey, CARD_SIGNATURE_SCHEME)
  const card: AgentCard = { peerId: signer.peerId.toString(), seq, name: content.name, services: content.services, metadata: content.metadata }
  const value = encodeSignedBlob(encoder.encode(JSON.stringify(card)), signer)
  if (value.length > MAX_CARD_BYTES) {
    throw new InvalidCardError(`card is ${value.length} bytes; the limit is ${MAX_CARD_BYTES}`)
  }
  return value
}

/**
 * Decode a card stored under `key` and verify it: size, shape, the key names
 * the card's own peer, and that peer signed it. Throws {@link InvalidCardError}.
 */
export function decodeCard (key: Uint8Array, value: Uint8Array): AgentCard {
  let payload: Uint8Array
  let signature: Uint8Array
  try {
    ({ payload, signature } = decodeSignedBlob(value, MAX_CARD_BYTES))
  } catch (err) {
    throw new InvalidCardError(`malformed card: ${(err as Error).message}`)
  }
  let card: AgentCard
  try {
    card = JSON.parse(decoder.decode(payload)) as AgentCard
  } catch {
    throw new InvalidCardError('card payload is not JSON')
  }
  if (typeof card !== 'object' || card === null || typeof card.peerId !== 'string' || !Number.isSafeInteger(card.seq) || card.seq < 0) {
    throw new InvalidCardError('card has the wrong shape')
  }
  checkCardContent(card)
  const keyText = decoder.decode(key)
  if (keyText !== `/${CARD_NAMESPACE}/${card.peerId}`) {
    throw new InvalidCardError('card is stored under another peer\'s key')
  }
  let peer: PeerId
  try {
    peer = peerIdFromString(card.peerId)
  } catch {
    throw new InvalidCardError('card peer ID is invalid')
  }
  let valid = false
  try {
    valid = verifySignature(peer, payload, signature, CARD_SIGNATURE_SCHEME)
  } catch {}
  if (!valid) {
    throw new InvalidCardError('card signature is not valid for its peer')
  }
  return card
}

/**
 * The kad-dht validator for `/agentnet-card/…` records. With the node's
 * datastore it also refuses a card older than the one already stored, so
 * an old (validly signed) card cannot be replayed over a newer one.
 */
export function createCardValidator (datastore?: Datastore): (key: Uint8Array, value: Uint8Array) => Promise<void> {
  return async (key, value) => {
    const card = decodeCard(key, value)
    if (datastore == null) {
      return
    }
    let stored: Uint8Array | undefined
    try {
      stored = await datastore.get(new Key(`${DHT_RECORD_PREFIX}/${uint8ArrayToString(key, 'base32')}`, false))
    } catch {
      return
    }
    let current: AgentCard
    try {
      current = decodeCard(key, Libp2pRecord.deserialize(stored).value)
    } catch {
      return
    }
    if (card.seq < current.seq) {
      throw new StaleCardError(`card seq ${card.seq} is older than the stored ${current.seq}`)
    }
  }
}

/** kad-dht selector: the card with the highest sequence number wins */
export function selectCard (key: Uint8Array, records: Uint8Array[]): number {
  let best = 0
  let bestSeq = -1
  records.forEach((value, i) => {
    try {
      const seq = decodeCard(key, value).seq
      if (seq > bestSeq) {
        best = i
        bestSeq = seq
      }
    } catch {}
  })
  return best
}
