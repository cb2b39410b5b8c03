/**
 * Key rotation with succession: the codec and verification of a succession
 * record, and the pure trust-store move a peer applies when it accepts one.
 * Nothing here does I/O; wiring (the notice over the trust protocol, the
 * grace period of the old ID, following a `Moved` answer) is in `src/trust`
 * and `src/rotation` (README "Key rotation").
 *
 * A succession record says "peer `old` is now peer `new`, from `ts`; the old
 * ID answers for `graceMs` more", signed by both keys:
 *
 * ```
 * record    = base64url(JSON {"payload": base64url(payload), "old": base64url(sigOld), "new": base64url(sigNew)})
 * payload   = RFC 8785 canonical JSON {"v":1,"old","new","ts","graceMs"}
 * sigOld    = Ed25519 by old over uvarint(17) || "agentnet-identity" || uvarint(34) || "/agentnet/identity/succession/1.0.0" || uvarint(len(payload)) || payload
 * sigNew    = the same bytes signed by new
 * ```
 *
 * The old key's signature proves the rotation comes from the identity being
 * replaced; the new key's proves its holder agreed, so trust can never be
 * redirected to a peer ID whose key the rotator does not hold (e.g. someone
 * else's). A record signed by the old key alone is refused unless the
 * verifier's policy sets `acceptOldKeyOnly`. Note the limit: a thief holding
 * the old key can make a new key and sign with both; only a next key
 * committed in advance (pre-rotation, as in KERI) defends against that, and
 * is not part of version 1.
 *
 * @module
 */

import canonicalize from 'canonicalize'
import { AgentnetError } from '../errors/index.ts'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { createSigner, signatureScheme, verifySignature } from '../protocol/index.ts'
import type { PrivateKey } from '@libp2p/interface'

/** Signature scheme of succession records (both signatures) */
export const SUCCESSION_SIGNATURE_SCHEME = signatureScheme('agentnet-identity', '/agentnet/identity/succession/1.0.0')
export const SUCCESSION_VERSION = 1
/** Default grace period: the old ID keeps answering (with a pointer) for 7 days */
export const DEFAULT_GRACE_MS = 7 * 24 * 3600 * 1000
/** Longest grace period accepted: 90 days */
export const MAX_GRACE_MS = 90 * 24 * 3600 * 1000
/** Default: how old a record may be when first seen (a peer offline for a month still follows) */
export const DEFAULT_MAX_RECORD_AGE_MS = 30 * 24 * 3600 * 1000
/** Default: how far in the future `ts` may be */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 5 * 60_000
/** Largest record accepted, characters */
export const MAX_SUCCESSION_CHARS = 2048

export type SuccessionErrorCode = 'MalformedSuccession' | 'SameKey' | 'BadSignature' | 'NewKeySignatureMissing' | 'StaleSuccession' | 'FutureSuccession'

/** A succession record that cannot be acted on; `code` says why */
export class SuccessionError extends AgentnetError {
  override readonly code: SuccessionErrorCode
  constructor (code: SuccessionErrorCode, message: string) {
    super(message)
    this.code = code
  }
}

export interface Succession {
  old: string
  new: string
  /** ms since the epoch: when the rotation took effect */
  ts: number
  /** how long the old ID keeps answering with a pointer to the new one */
  graceMs: number
}

export interface VerifiedSuccession extends Succession {
  /** `both`, or `old-only` when the policy accepted a record without the new key's signature */
  signedBy: 'both' | 'old-only'
}

export interface VerifySuccessionOptions {
  /** @default Date.now() */
  now?: number
  /** accept a record signed by the old key alone @default false */
  acceptOldKeyOnly?: boolean
  /** @default 30 days */
  maxAgeMs?: number
  /** @default 5 minutes */
  maxFutureSkewMs?: number
}

const encoder = new TextEncoder()
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url')

function payloadOf (s: Succession): Uint8Array {
  return encoder.encode(canonicalize({ v: SUCCESSION_VERSION, old: s.old, new: s.new, ts: s.ts, graceMs: s.graceMs }) ?? '')
}

/**
 * Make a succession record from the old key to the new one, signed by both.
 * Pass `newKey: undefined` only to build an old-key-only record (tests, or a
 * policy that accepts them).
 */
export function encodeSuccession (oldKey: PrivateKey, newKey: PrivateKey | undefined, options: { ts: number, graceMs?: number, newPeerId?: string }): string {
  const old = peerIdFromPrivateKey(oldKey).toString()
  const next = newKey !== undefined ? peerIdFromPrivateKey(newKey).toString() : options.newPeerId
  if (next === undefined) throw new SuccessionError('MalformedSuccession', 'the new peer ID is needed')
  if (next === old) throw new SuccessionError('SameKey', 'the new key is the old key')
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) throw new SuccessionError('MalformedSuccession', `graceMs must be 0 to ${MAX_GRACE_MS}`)
  const payload = payloadOf({ old, new: next, ts: options.ts, graceMs })
  const record: Record<string, string> = { payload: b64(payload), old: b64(createSigner(oldKey, SUCCESSION_SIGNATURE_SCHEME).sign(payload)) }
  if (newKey !== undefined) record.new = b64(createSigner(newKey, SUCCESSION_SIGNATURE_SCHEME).sign(payload))
  return b64(encoder.encode(JSON.stringify(record)))
}

function malformed (why: string): SuccessionError {
  return new SuccessionError('MalformedSuccession', `malformed succession record: ${why}`)
}

/** Decode without verifying (to show a record); throws {@link SuccessionError} */
export function decodeSuccession (record: string): { succession: Succession, payload: Uint8Array, sigOld: Uint8Array, sigNew?: Uint8Array } {
  if (typeof record !== 'string' || record.length > MAX_SUCCESSION_CHARS || !/^[A-Za-z0-9_-]+$/.test(record)) throw malformed('not base64url of the right size')
  let outer: Record<string, unknown>
  try {
    outer = JSON.parse(Buffer.from(record, 'base64url').toString('utf8')) as Record<string, unknown>
  } catch {
    throw malformed('not JSON')
  }
  if (typeof outer !== 'object' || outer === null || typeof outer.payload !== 'string' || typeof outer.old !== 'string' || (outer.new !== undefined && typeof outer.new !== 'string')) {
    throw malformed('missing payload or signatures')
  }
  const payload = new Uint8Array(Buffer.from(outer.payload, 'base64url'))
  let fields: Record<string, unknown>
  try {
    fields = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) as Record<string, unknown>
  } catch {
    throw malformed('payload is not JSON')
  }
  const { v, old, new: next, ts, graceMs } = fields ?? {}
  if (v !== SUCCESSION_VERSION || typeof old !== 'string' || typeof next !== 'string' || !Number.isSafeInteger(ts) || !Number.isSafeInteger(graceMs) ||
      (graceMs as number) < 0 || (graceMs as number) > MAX_GRACE_MS || Object.keys(fields).length !== 5) {
    throw malformed('payload fields')
  }
  const succession: Succession = { old, new: next, ts: ts as number, graceMs: graceMs as number }
  // the payload must be exactly the canonical encoding: one record, one byte string
  if (Buffer.compare(Buffer.from(payloadOf(succession)), Buffer.from(payload)) !== 0) throw malformed('payload is not canonical')
  const sigOld = new Uint8Array(Buffer.from(outer.old, 'base64url'))
  const sigNew = typeof outer.new === 'string' ? new Uint8Array(Buffer.from(outer.new, 'base64url')) : undefined
  return { succession, payload, sigOld, ...(sigNew !== undefined ? { sigNew } : {}) }
}

/**
 * Verify a succession record: shape, distinct Ed25519 peer IDs, the old
 * key's signature, the new key's signature (or the policy's consent to do
 * without it), and time bounds. Throws {@link SuccessionError}.
 */
export function verifySuccession (record: string, options: VerifySuccessionOptions = {}): VerifiedSuccession {
  const { succession, payload, sigOld, sigNew } = decodeSuccession(record)
  if (succession.old === succession.new) throw new SuccessionError('SameKey', 'the record names the same peer twice')
  const check = (id: string, sig: Uint8Array): boolean => {
    try {
      return sig.length === 64 && verifySignature(peerIdFromString(id), payload, sig, SUCCESSION_SIGNATURE_SCHEME)
    } catch {
      return false
    }
  }
  if (!check(succession.old, sigOld)) throw new SuccessionError('BadSignature', `the old key (${succession.old}) did not sign this record`)
  let signedBy: VerifiedSuccession['signedBy'] = 'both'
  if (sigNew === undefined) {
    if (options.acceptOldKeyOnly !== true) throw new SuccessionError('NewKeySignatureMissing', 'the record is signed by the old key only; a stolen old key could have made it')
    signedBy = 'old-only'
  } else if (!check(succession.new, sigNew)) {
    throw new SuccessionError('BadSignature', `the new key (${succession.new}) did not sign this record`)
  }
  const now = options.now ?? Date.now()
  if (succession.ts > now + (options.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS)) throw new SuccessionError('FutureSuccession', 'the record is dated in the future')
  if (succession.ts < now - (options.maxAgeMs ?? DEFAULT_MAX_RECORD_AGE_MS)) throw new SuccessionError('StaleSuccession', 'the record is too old to act on')
  return { ...succession, signedBy }
}

/** A trust-store peer entry, as far as the move needs it */
export interface MovablePeer {
  state: string
  since: number
  updatedAt: number
  reason: string
  direction: string
  via: string
  note?: string
}

export interface TrustMove<P extends MovablePeer> {
  /** the new peers map */
  peers: Record<string, P>
  /** whether anything moved (the old ID was trusted) */
  moved: boolean
  /** petnames that pointed to the old ID, now pointing to the new one */
  aliases: Record<string, string>
  /** audit record to append */
  audit: { type: 'trust.succession', data: { old: string, new: string, ts: number, signedBy: string, moved: boolean } }
}

/**
 * What a peer does on a verified succession: the old ID's trust moves to the
 * new ID (same direction and reason, `via` kept, `since` = now, a note), the
 * old ID is marked `revoked` with a note pointing to the new one; an entry
 * for the new ID is replaced only if it is not `revoked`/`rejected` (a peer
 * we refused stays refused). Petnames follow. Only `trusted` entries move.
 */
export function applySuccession<P extends MovablePeer> (peers: Record<string, P>, aliases: Record<string, string>, s: VerifiedSuccession, now: number): TrustMove<P> {
  const out: Record<string, P> = { ...peers }
  const from = peers[s.old]
  const existing = peers[s.new]
  const blocked = existing !== undefined && (existing.state === 'revoked' || existing.state === 'rejected')
  const moved = from?.state === 'trusted' && !blocked
  if (moved && from !== undefined) {
    out[s.new] = { ...from, since: now, updatedAt: now, note: `succeeds ${s.old}` }
    out[s.old] = { ...from, state: 'revoked', updatedAt: now, note: `${ROTATED_NOTE}${s.new}` }
  }
  const movedAliases: Record<string, string> = {}
  for (const [name, id] of Object.entries(aliases)) movedAliases[name] = moved && id === s.old ? s.new : id
  return { peers: out, moved, aliases: movedAliases, audit: { type: 'trust.succession', data: { old: s.old, new: s.new, ts: s.ts, signedBy: s.signedBy, moved } } }
}

/** The note a rotated peer's old trust entry carries, followed by the new peer ID */
const ROTATED_NOTE = 'rotated to '

/** The new peer ID a trust note written by {@link applySuccession} names, if any */
export function successorFromNote (note: string | undefined): string | undefined {
  if (note === undefined || !note.startsWith(ROTATED_NOTE)) return undefined
  const id = note.slice(ROTATED_NOTE.length)
  return /^[1-9A-HJ-NP-Za-km-z]{40,60}$/.test(id) ? id : undefined
}

/** Whether the old ID should still answer (with a pointer to the new one) at `now` */
export function inGracePeriod (s: Succession, now: number): boolean {
  return now < s.ts + s.graceMs
}
