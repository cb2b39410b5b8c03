/**
 * Constants of did:key and the A2A-style agent card.
 *
 * @module
 */

/** `did:key:` method prefix */
export const DID_KEY_PREFIX = 'did:key:'
/** base58btc multibase prefix */
export const BASE58BTC_PREFIX = 'z'
/** multicodec `ed25519-pub` (0xed) as its unsigned varint: 0xed 0x01 */
export const ED25519_PUB_MULTICODEC: readonly number[] = [0xed, 0x01]
/** Ed25519 public keys are 32 bytes */
export const ED25519_PUBLIC_KEY_BYTES = 32
/** A2A protocol version the card follows */
export const A2A_PROTOCOL_VERSION = '0.3.0'
/** JWS algorithm of card signatures (RFC 8037) */
export const CARD_JWS_ALG = 'EdDSA'
/** Largest card file `verifyAgentCard` reads, bytes */
export const MAX_AGENT_CARD_BYTES = 64 * 1024
/** Default `defaultInputModes` / `defaultOutputModes` */
export const DEFAULT_MODES: readonly string[] = ['text/plain', 'application/octet-stream']
