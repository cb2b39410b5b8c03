/**
 * A2A-style Agent Cards signed with JWS.
 *
 * The card is the A2A `AgentCard` JSON (name, description, url, version,
 * capabilities, default modes, skills) with one agentnet extension object,
 * `agentnet: {peerId, did}`, and a `signatures` array as in A2A 0.3:
 * each entry `{protected, signature}` is a JWS with a detached payload
 * (RFC 7515 appendix F), where
 *
 * ```
 * protected = base64url(JSON {"alg":"EdDSA","typ":"JOSE","kid":"did:key:z…#z…"})
 * payload   = RFC 8785 canonical JSON of the card without "signatures"
 * signature = Ed25519 over ASCII(protected || "." || base64url(payload))
 * ```
 *
 * A verifier needs nothing but the card: the `kid` is a did:key that holds
 * the public key, and it must be the did:key of the peer ID the card claims.
 *
 * @module
 */

import canonicalize from 'canonicalize'
import { FlattenedSign, flattenedVerify, importJWK } from 'jose'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { A2A_PROTOCOL_VERSION, CARD_JWS_ALG, DEFAULT_MODES, MAX_AGENT_CARD_BYTES } from './constants.ts'
import { didKeyFromPeerId, didKeyVerificationMethod, ed25519PublicKeyOf } from './did-key.ts'
import { InvalidAgentCardError } from './errors.ts'
import type { PrivateKey } from '@libp2p/interface'

export interface AgentSkill {
  id: string
  name: string
  description: string
  tags: string[]
}

export interface AgentCardSignature {
  protected: string
  signature: string
}

export interface A2AAgentCard {
  protocolVersion: string
  name: string
  description: string
  /** `agentnet://<peerId>` */
  url: string
  preferredTransport: string
  version: string
  capabilities: { streaming: boolean, pushNotifications: boolean }
  defaultInputModes: string[]
  defaultOutputModes: string[]
  skills: AgentSkill[]
  agentnet: { peerId: string, did: string, services: string[] }
  signatures?: AgentCardSignature[]
}

export interface AgentCardInit {
  name: string
  description?: string
  services: string[]
  /** agentnet version */
  version: string
  metadata?: Record<string, unknown>
}

export interface VerifiedAgentCard {
  peerId: string
  did: string
  kid: string
  name: string
  services: string[]
}

const encoder = new TextEncoder()

function payloadOf (card: A2AAgentCard): Uint8Array {
  const { signatures: _ignored, ...unsigned } = card
  const text = canonicalize(unsigned)
  if (text === undefined) throw new InvalidAgentCardError('card cannot be canonicalized')
  return encoder.encode(text)
}

/** Build and sign an A2A-style card for the node whose key this is */
export async function createAgentCard (init: AgentCardInit, privateKey: PrivateKey): Promise<A2AAgentCard> {
  const peerId = peerIdFromPrivateKey(privateKey).toString()
  const did = didKeyFromPeerId(peerId)
  const description = init.description ?? (typeof init.metadata?.description === 'string' ? init.metadata.description : `agentnet agent ${peerId}`)
  const card: A2AAgentCard = {
    protocolVersion: A2A_PROTOCOL_VERSION,
    name: init.name !== '' ? init.name : peerId,
    description,
    url: `agentnet://${peerId}`,
    preferredTransport: 'agentnet',
    version: init.version,
    capabilities: { streaming: false, pushNotifications: false },
    defaultInputModes: [...DEFAULT_MODES],
    defaultOutputModes: [...DEFAULT_MODES],
    skills: init.services.map(s => ({ id: s, name: s, description: `agentnet service "${s}": agentnet://${peerId}/${s}`, tags: ['agentnet'] })),
    agentnet: { peerId, did, services: [...init.services] }
  }
  const raw = privateKey.raw
  const key = await importJWK({
    kty: 'OKP',
    crv: 'Ed25519',
    d: Buffer.from(raw.subarray(0, 32)).toString('base64url'),
    x: Buffer.from(raw.subarray(32)).toString('base64url')
  }, CARD_JWS_ALG)
  const jws = await new FlattenedSign(payloadOf(card))
    .setProtectedHeader({ alg: CARD_JWS_ALG, typ: 'JOSE', kid: didKeyVerificationMethod(did) })
    .sign(key)
  if (jws.protected === undefined) throw new InvalidAgentCardError('JWS has no protected header')
  return { ...card, signatures: [{ protected: jws.protected, signature: jws.signature }] }
}

/**
 * Verify a card: its shape, that `agentnet.did` is the did:key of the peer
 * ID it claims (`agentnet.peerId`, also in `url`), and that one signature is
 * a valid EdDSA JWS by that key over the canonical card. Throws
 * {@link InvalidAgentCardError} naming what failed.
 */
export async function verifyAgentCard (input: string | unknown): Promise<VerifiedAgentCard> {
  let card: A2AAgentCard
  if (typeof input === 'string') {
    if (Buffer.byteLength(input) > MAX_AGENT_CARD_BYTES) throw new InvalidAgentCardError(`card is larger than ${MAX_AGENT_CARD_BYTES} bytes`)
    try {
      card = JSON.parse(input) as A2AAgentCard
    } catch {
      throw new InvalidAgentCardError('card is not JSON')
    }
  } else {
    card = input as A2AAgentCard
  }
  if (typeof card !== 'object' || card === null || typeof card.name !== 'string' || typeof card.agentnet !== 'object' ||
      card.agentnet === null || typeof card.agentnet.peerId !== 'string' || !Array.isArray(card.signatures)) {
    throw new InvalidAgentCardError('card lacks name, agentnet.peerId or signatures')
  }
  const claimed = card.agentnet.peerId
  let publicKey: Uint8Array
  let did: string
  try {
    publicKey = ed25519PublicKeyOf(claimed)
    did = didKeyFromPeerId(claimed)
  } catch {
    throw new InvalidAgentCardError(`claimed peer ID ${JSON.stringify(claimed).slice(0, 80)} is not an Ed25519 peer ID`)
  }
  if (card.agentnet.did !== did) throw new InvalidAgentCardError('agentnet.did is not the did:key of the claimed peer ID')
  if (card.url !== `agentnet://${claimed}`) throw new InvalidAgentCardError('url does not name the claimed peer ID')
  const kid = didKeyVerificationMethod(did)
  const key = await importJWK({ kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, CARD_JWS_ALG)
  const payload = Buffer.from(payloadOf(card)).toString('base64url')
  for (const sig of card.signatures) {
    if (typeof sig?.protected !== 'string' || typeof sig.signature !== 'string') continue
    let header: Record<string, unknown>
    try {
      header = JSON.parse(Buffer.from(sig.protected, 'base64url').toString('utf8')) as Record<string, unknown>
    } catch {
      continue
    }
    if (header.alg !== CARD_JWS_ALG || header.kid !== kid) continue
    try {
      await flattenedVerify({ protected: sig.protected, signature: sig.signature, payload }, key, { algorithms: [CARD_JWS_ALG] })
      return { peerId: claimed, did, kid, name: card.name, services: Array.isArray(card.agentnet.services) ? card.agentnet.services : [] }
    } catch {}
  }
  throw new InvalidAgentCardError(`no valid EdDSA signature by ${kid}`)
}
