/**
 * The session token: a short-lived capability a node issues to one peer (the
 * audience) for a set of its services. The issuer signs it; only the issuer
 * ever verifies it, when the audience presents it in a message's `token`
 * field (which the message signature covers, so it cannot be lifted onto
 * another peer's message).
 *
 * ```
 * token   = 0x01 || uvarint(len(payload)) || payload || signature (64 bytes)
 * payload = UTF-8 JSON {"iss": peerId, "aud": peerId, "svc": [service…], "iat": ms, "exp": ms, "jti": hex}
 * signature = Ed25519 by the issuer over
 *   uvarint(14) || "agentnet-token" || uvarint(21) || "/agentnet/token/1.0.0" || uvarint(len(payload)) || payload
 * ```
 */

import { AgentnetError } from '../errors/index.ts'
import { createSigner, decodeSignedBlob, encodeSignedBlob, verifySignature, TOKEN_SIGNATURE_SCHEME } from '../protocol/index.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

/** Tokens are small; anything larger is refused before parsing */
export const MAX_TOKEN_BYTES = 4096

export interface TokenClaims {
  /** issuer peer ID */
  iss: string
  /** audience peer ID: the only peer that may present the token */
  aud: string
  /** services the token opens */
  svc: string[]
  /** issued at, ms since the epoch */
  iat: number
  /** expires at, ms since the epoch */
  exp: number
  /** random token ID (hex) */
  jti: string
}

/** Codes a token check fails with; they travel in `error` envelopes */
export type TokenErrorCode = 'TokenRequired' | 'TokenInvalid' | 'TokenExpired' | 'TokenAudience' | 'TokenScope' | 'TokenRevoked'

export const TOKEN_ERROR_CODES: ReadonlySet<string> = new Set<TokenErrorCode>(['TokenRequired', 'TokenInvalid', 'TokenExpired', 'TokenAudience', 'TokenScope', 'TokenRevoked'])

export class TokenError extends AgentnetError {
  override readonly code: TokenErrorCode
  constructor (code: TokenErrorCode, message: string) {
    super(message)
    this.name = 'TokenError'
    this.code = code
  }
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeToken (claims: TokenClaims, privateKey: PrivateKey): Uint8Array {
  return encodeSignedBlob(encoder.encode(JSON.stringify(claims)), createSigner(privateKey, TOKEN_SIGNATURE_SCHEME))
}

/** Parse a token and check the issuer's signature; throws `TokenInvalid` */
export function decodeToken (token: Uint8Array, issuer: PeerId): TokenClaims {
  let payload: Uint8Array
  let signature: Uint8Array
  try {
    ({ payload, signature } = decodeSignedBlob(token, MAX_TOKEN_BYTES))
  } catch {
    throw new TokenError('TokenInvalid', 'malformed session token')
  }
  let valid = false
  try {
    valid = verifySignature(issuer, payload, signature, TOKEN_SIGNATURE_SCHEME)
  } catch {}
  if (!valid) {
    throw new TokenError('TokenInvalid', 'session token signature is not valid')
  }
  let claims: unknown
  try {
    claims = JSON.parse(decoder.decode(payload))
  } catch {
    throw new TokenError('TokenInvalid', 'session token payload is not JSON')
  }
  if (!isClaims(claims)) {
    throw new TokenError('TokenInvalid', 'session token payload has the wrong shape')
  }
  if (claims.iss !== issuer.toString()) {
    throw new TokenError('TokenInvalid', 'session token was issued by another node')
  }
  return claims
}

function isClaims (value: unknown): value is TokenClaims {
  if (typeof value !== 'object' || value === null) return false
  const c = value as Record<string, unknown>
  return typeof c.iss === 'string' && typeof c.aud === 'string' && Array.isArray(c.svc) &&
    c.svc.every(s => typeof s === 'string') && Number.isSafeInteger(c.iat) && Number.isSafeInteger(c.exp) &&
    typeof c.jti === 'string'
}
