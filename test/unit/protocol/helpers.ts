/**
 * Shared fixtures for the protocol unit tests: identities, a deterministic
 * PRNG for the fuzz tests, and a way to build frames field by field.
 */

import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createSigner, decodeMessage, encodeMessage, encodeSignedMessage, PROTOCOL_VERSION, signingPayload } from '../../../src/protocol/index.ts'
import type { Message, MessageSigner } from '../../../src/protocol/index.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

export interface Identity {
  key: PrivateKey
  peerId: PeerId
  signer: MessageSigner
  bytes: Uint8Array
}

export async function identity (): Promise<Identity> {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key)
  return { key, peerId, signer: createSigner(key), bytes: peerId.toMultihash().bytes }
}

/** mulberry32: small, seeded, good enough to drive fuzzing reproducibly */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randomInt (rand: () => number, max: number): number {
  return Math.floor(rand() * max)
}

export function randomBytes (rand: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = randomInt(rand, 256)
  return out
}

export const NOW = 1_750_000_000_000

let counter = 0

/** A valid message from `from` to `to`, with every field set unless overridden */
export function message (from: Identity, to: Identity, overrides: Partial<Message> = {}): Message {
  counter++
  const nonce = new Uint8Array(16)
  new DataView(nonce.buffer).setUint32(0, counter)
  nonce[15] = 0xa5
  return {
    version: PROTOCOL_VERSION,
    from: from.bytes,
    to: to.bytes,
    service: 'echo',
    kind: 'request',
    id: `req-${counter}`,
    inReplyTo: '',
    nonce,
    timestamp: NOW,
    ttl: 5000,
    contentType: 'text/plain; charset=utf-8',
    token: new Uint8Array(0),
    body: new TextEncoder().encode('hello'),
    ...overrides
  }
}

/** Encode and sign `msg` with `signer` (who need not be `msg.from`) */
export function frameOf (msg: Message, signer: MessageSigner): Uint8Array {
  const payload = encodeMessage(msg)
  return encodeSignedMessage({ payload, signature: signer.sign(signedBytesOf(payload)) })
}

/**
 * What an envelope signature covers for `payload` (the body-digest form of
 * `/agentnet/msg/2.0.0`); the payload itself when it does not decode, since
 * such a frame is refused before its signature is looked at.
 */
export function signedBytesOf (payload: Uint8Array): Uint8Array {
  try {
    return signingPayload(payload, decodeMessage(payload).body)
  } catch {
    return payload
  }
}
