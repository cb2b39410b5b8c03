/**
 * The trust store: what this node decided about which peers, and its open
 * invites, as one JSON document in `<home>/trust.json` (mode 0600), replaced
 * atomically on every change (write temp, fsync, rename, fsync dir).
 *
 * ```json
 * {
 *   "version": 1,
 *   "peers": {
 *     "12D3KooW…": {
 *       "state": "pending-inbound",      // see TrustState
 *       "since": 1730000000000,          // ms: when it entered this state
 *       "updatedAt": 1730000000000,      // ms: last change of any field
 *       "reason": "weather agent of Bob",// justification of the request (≤ 1 KiB)
 *       "direction": "inbound",          // who asked: inbound | outbound | mutual
 *       "via": "request",                // request | invite
 *       "note": "…"                      // optional: reason given with a reject / revoke
 *     }
 *   },
 *   "invites": {
 *     "<sha256(secret) hex>": { "createdAt": …, "expiresAt": …, "uses": 3, "usesLeft": 2, "usedBy": ["12D3KooW…"] }
 *   }
 * }
 * ```
 *
 * A file that does not parse or has an unexpected shape fails the load with
 * {@link CorruptTrustStoreError} and is never overwritten: the node refuses to
 * start rather than forget decisions.
 *
 * @module
 */

import { peerIdFromString } from '@libp2p/peer-id'
import { readStateFile } from '../utils/fs.ts'
import { TRUST_FILE_VERSION, MAX_INVITE_USES } from './constants.ts'
import { CorruptTrustStoreError } from './errors.ts'
import { checkReason } from './codec.ts'

/**
 * - `trusted`: both sides agreed (or config / invite says so); agent services answer it
 * - `pending-inbound`: it asked us; waiting for our `approve` / `reject`
 * - `pending-outbound`: we asked it; waiting for its answer
 * - `rejected`: we rejected its request; its new requests are refused
 * - `rejected-by-peer`: it rejected our request
 * - `revoked`: we revoked it; its messages and requests are refused
 * - `revoked-by-peer`: it revoked us; sending to it fails with `RevokedByPeer`
 */
export type TrustState = 'trusted' | 'pending-inbound' | 'pending-outbound' | 'rejected' | 'rejected-by-peer' | 'revoked' | 'revoked-by-peer'
/** Who asked for the relationship: the peer (`inbound`), we (`outbound`), both (`mutual`), nobody (`none`: config). */
export type TrustDirection = 'inbound' | 'outbound' | 'mutual' | 'none'
/** How the relationship was proposed. */
export type TrustVia = 'request' | 'invite' | 'static'

export const TRUST_STATES: ReadonlySet<string> = new Set<TrustState>(['trusted', 'pending-inbound', 'pending-outbound', 'rejected', 'rejected-by-peer', 'revoked', 'revoked-by-peer'])
const DIRECTIONS: ReadonlySet<string> = new Set<TrustDirection>(['inbound', 'outbound', 'mutual', 'none'])
const VIAS: ReadonlySet<string> = new Set<TrustVia>(['request', 'invite', 'static'])

/** One peer's record as stored (the key is its peer ID). */
export interface StoredPeer {
  state: TrustState
  since: number
  updatedAt: number
  reason: string
  direction: TrustDirection
  via: TrustVia
  note?: string
}

/** One invite this node issued, keyed by the hex SHA-256 of its secret. */
export interface StoredInvite {
  createdAt: number
  expiresAt: number
  uses: number
  usesLeft: number
  /** Peers that used it, so a repeat by the same peer is answered without using it up again */
  usedBy: string[]
}

export interface TrustDocument {
  version: typeof TRUST_FILE_VERSION
  peers: Record<string, StoredPeer>
  invites: Record<string, StoredInvite>
}

export function emptyDocument (): TrustDocument {
  return { version: TRUST_FILE_VERSION, peers: {}, invites: {} }
}

function isTime (value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function checkPeer (id: string, value: unknown): StoredPeer {
  try {
    peerIdFromString(id)
  } catch {
    throw new Error(`${JSON.stringify(id.slice(0, 80))} is not a peer ID`)
  }
  if (!isPlainObject(value)) throw new Error(`peer ${id} is not an object`)
  const { state, since, updatedAt, reason, direction, via, note } = value
  if (typeof state !== 'string' || !TRUST_STATES.has(state)) throw new Error(`peer ${id} has an unknown state`)
  if (!isTime(since) || !isTime(updatedAt)) throw new Error(`peer ${id} has invalid times`)
  if (typeof reason !== 'string') throw new Error(`peer ${id} has no reason`)
  checkReason(reason)
  if (typeof direction !== 'string' || !DIRECTIONS.has(direction)) throw new Error(`peer ${id} has an unknown direction`)
  if (typeof via !== 'string' || !VIAS.has(via)) throw new Error(`peer ${id} has an unknown via`)
  if (note !== undefined) checkReason(note)
  for (const key of Object.keys(value)) {
    if (!['state', 'since', 'updatedAt', 'reason', 'direction', 'via', 'note'].includes(key)) throw new Error(`peer ${id} has an unknown field ${key}`)
  }
  const out: StoredPeer = { state: state as TrustState, since, updatedAt, reason, direction: direction as TrustDirection, via: via as TrustVia }
  if (note !== undefined) out.note = note as string
  return out
}

function checkInvite (id: string, value: unknown): StoredInvite {
  if (!/^[0-9a-f]{64}$/.test(id)) throw new Error('invite key is not a SHA-256 hex digest')
  if (!isPlainObject(value)) throw new Error(`invite ${id} is not an object`)
  const { createdAt, expiresAt, uses, usesLeft, usedBy } = value
  if (!isTime(createdAt) || !isTime(expiresAt)) throw new Error(`invite ${id} has invalid times`)
  if (!isTime(uses) || uses < 1 || uses > MAX_INVITE_USES || !isTime(usesLeft) || usesLeft > uses) throw new Error(`invite ${id} has invalid uses`)
  if (!Array.isArray(usedBy) || usedBy.length > uses || !usedBy.every(p => typeof p === 'string')) throw new Error(`invite ${id} has an invalid usedBy`)
  for (const key of Object.keys(value)) {
    if (!['createdAt', 'expiresAt', 'uses', 'usesLeft', 'usedBy'].includes(key)) throw new Error(`invite ${id} has an unknown field ${key}`)
  }
  return { createdAt, expiresAt, uses, usesLeft, usedBy: [...usedBy as string[]] }
}

/** Validate a parsed document; throws a plain Error naming the first problem. */
export function checkDocument (parsed: unknown): TrustDocument {
  if (!isPlainObject(parsed)) throw new Error('not a JSON object')
  if (parsed.version !== TRUST_FILE_VERSION) throw new Error(`unsupported version ${JSON.stringify(parsed.version)}`)
  if (!isPlainObject(parsed.peers) || !isPlainObject(parsed.invites)) throw new Error('peers and invites must be objects')
  for (const key of Object.keys(parsed)) {
    if (!['version', 'peers', 'invites'].includes(key)) throw new Error(`unknown field ${key}`)
  }
  const doc = emptyDocument()
  for (const [id, value] of Object.entries(parsed.peers)) doc.peers[id] = checkPeer(id, value)
  for (const [id, value] of Object.entries(parsed.invites)) doc.invites[id] = checkInvite(id, value)
  return doc
}

/**
 * Read the store; a missing file is an empty store.
 *
 * @throws {CorruptTrustStoreError} when the file exists but is not a valid store (it is left as it is)
 */
export async function loadDocument (file: string): Promise<TrustDocument> {
  const text = await readStateFile(file)
  if (text === undefined) return emptyDocument()
  try {
    return checkDocument(JSON.parse(text))
  } catch (err) {
    throw new CorruptTrustStoreError(file, `${file} is corrupt (${(err as Error).message}); it holds this node's trust decisions, so the node will not start without it and has not changed it: restore it from a backup, or move it away to start with no trusted peers`)
  }
}

export function serializeDocument (doc: TrustDocument): string {
  return JSON.stringify(doc, null, 2) + '\n'
}
