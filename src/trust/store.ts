/**
 * The trust store: what this node decided about which peers, and its open
 * invites, as one JSON document in `<home>/trust.json` (mode 0600), replaced
 * atomically on every decision (write temp, fsync, rename, fsync dir).
 * Pending requests (`pending-inbound`) are not in it: strangers create them,
 * so they go to an append-only journal `<home>/trust-pending.jsonl` (one
 * fsync'd line per change, compacted when it holds more dead lines than
 * live ones), and a flood of requests never rewrites the decisions file.
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

import { open } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { readStateFile, writeFileAtomic } from '../utils/fs.ts'
import { MAX_INVITE_USES, PENDING_FILE, TRUST_FILE_VERSION } from './constants.ts'
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

function corrupt (file: string, err: unknown): CorruptTrustStoreError {
  return new CorruptTrustStoreError(file, `${file} is corrupt (${(err as Error).message}); it holds this node's trust decisions, so the node will not start without it and has not changed it: restore it from a backup, or move it away to start with no trusted peers`)
}

/** The store as loaded: the decisions, plus the pending requests and the network each came from. */
export interface LoadedStore {
  doc: TrustDocument
  /** Source network of each pending request (`unknown` for one written by an older version into trust.json) */
  sources: Map<string, string>
  /** Lines in the journal, live or not (to decide on compaction) */
  journalLines: number
  /** The journal does not end with a complete line: rewrite it before appending to it */
  journalTorn: boolean
  /** trust.json still holds pending requests (older version): move them to the journal */
  migrate: boolean
}

/**
 * Read the store: `trust.json` and the pending journal beside it; a missing
 * file is an empty store. A pending entry for a peer that also has a record
 * in `trust.json` is dropped (a decision was written, then the node stopped
 * before the journal said so). A torn last journal line (a crash during an
 * append, before the requester was answered) is ignored.
 *
 * @throws {CorruptTrustStoreError} when a file exists but is not a valid store (it is left as it is)
 */
export async function loadStore (file: string): Promise<LoadedStore> {
  const text = await readStateFile(file)
  let doc = emptyDocument()
  if (text !== undefined) {
    try {
      doc = checkDocument(JSON.parse(text))
    } catch (err) {
      throw corrupt(file, err)
    }
  }
  const sources = new Map<string, string>()
  let migrate = false
  for (const [id, record] of Object.entries(doc.peers)) {
    if (record.state === 'pending-inbound') {
      sources.set(id, 'unknown')
      migrate = true
    }
  }
  const journal = join(dirname(file), PENDING_FILE)
  const journalText = await readStateFile(journal) ?? ''
  const journalTorn = journalText.length > 0 && !journalText.endsWith('\n')
  const lines = journalText.split('\n')
  if (lines.at(-1) === '') lines.pop()
  const pending = new Map<string, { record: StoredPeer, source: string }>()
  lines.forEach((line, i) => {
    let entry: { put?: unknown, del?: unknown, source?: unknown, record?: unknown }
    try {
      entry = JSON.parse(line)
      if (typeof entry !== 'object' || entry === null) throw new Error('not an object')
      if (typeof entry.del === 'string') {
        pending.delete(entry.del)
        return
      }
      if (typeof entry.put !== 'string' || typeof entry.source !== 'string' || entry.source.length > 128) throw new Error('neither put nor del')
      const record = checkPeer(entry.put, entry.record)
      if (record.state !== 'pending-inbound') throw new Error('not a pending request')
      pending.set(entry.put, { record, source: entry.source })
    } catch (err) {
      // the last line may be torn by a crash in the middle of an append
      if (i === lines.length - 1) return
      throw corrupt(journal, new Error(`line ${i + 1}: ${(err as Error).message}`))
    }
  })
  for (const [id, { record, source }] of pending) {
    if (doc.peers[id] !== undefined) continue
    doc.peers[id] = record
    sources.set(id, source)
  }
  return { doc, sources, journalLines: lines.length, journalTorn, migrate }
}

/**
 * Read the store as one document (pending requests included).
 *
 * @throws {CorruptTrustStoreError} when the store exists but is not a valid store (it is left as it is)
 */
export async function loadDocument (file: string): Promise<TrustDocument> {
  return (await loadStore(file)).doc
}

/** `trust.json`: every record but the pending requests, and the invites */
export function serializeDocument (doc: TrustDocument): string {
  const peers: Record<string, StoredPeer> = {}
  for (const [id, record] of Object.entries(doc.peers)) {
    if (record.state !== 'pending-inbound') peers[id] = record
  }
  return JSON.stringify({ ...doc, peers }, null, 2) + '\n'
}

/** One line of the pending journal */
export function journalLine (id: string, entry: { record: StoredPeer, source: string } | undefined): string {
  return JSON.stringify(entry === undefined ? { del: id } : { put: id, source: entry.source, record: entry.record }) + '\n'
}

/**
 * The append-only pending journal: one line per change, each fsync'd before
 * the call resolves (so a requester is answered `pending` only once its
 * request is on disk); appends are serialized.
 */
export class PendingJournal {
  private readonly file: string
  private chain: Promise<void> = Promise.resolve()

  constructor (home: string) {
    this.file = join(home, PENDING_FILE)
  }

  append (line: string): Promise<void> {
    const next = this.chain.catch(() => {}).then(async () => {
      const handle = await open(this.file, 'a', 0o600)
      try {
        await handle.appendFile(line)
        await handle.datasync()
      } finally {
        await handle.close()
      }
    })
    this.chain = next
    return next
  }

  /** Replace the journal by exactly these lines (atomic), after any append in progress */
  rewrite (lines: string[]): Promise<void> {
    const next = this.chain.catch(() => {}).then(async () => { await writeFileAtomic(this.file, lines.join('')) })
    this.chain = next
    return next
  }

  async flush (): Promise<void> {
    await this.chain.catch(() => {})
  }
}
