/**
 * The records and the store: what this node holds about each peer and its
 * invites, in memory and on disk, and the events and audit records every
 * change produces. Decisions are written to `trust.json` (rewritten
 * atomically); pending requests, which strangers create, to the pending
 * journal (one appended line each), see `store.ts`.
 *
 * @module
 */

import { join } from 'node:path'
import { writeFileAtomic } from '../utils/fs.ts'
import { StateWriteError } from '../errors/index.ts'
import { TRUST_FILE } from './constants.ts'
import { PendingQueue, UNKNOWN_SOURCE } from './pending.ts'
import { journalLine, loadStore, PendingJournal, serializeDocument } from './store.ts'
import type { PendingRequest, TrustChange, TrustEntry, TrustEvents } from './index.ts'
import type { StoredInvite, StoredPeer, TrustDirection, TrustState, TrustVia } from './store.ts'
import type { EventEmitter } from 'node:events'
import type { Logger } from 'pino'

export interface RecordsOptions {
  home: string
  now: () => number
  staticPeers: ReadonlySet<string>
  maxPending: number
  maxPendingPerSource: number
  pendingTtlMs: number
  emitter: EventEmitter<TrustEvents>
  audit: (type: string, peer: string | undefined, data: Record<string, unknown>) => Promise<void>
  logger?: Logger
}

/** A record change on its way to disk. */
interface StagedChange {
  record: StoredPeer | undefined
  source: string
  written: boolean
}

/**
 * Owns the peer records, the invites and their persistence.
 *
 * Persist first, then apply: `peers` holds only what is on disk, so what
 * `trust.list`, the gates and the events show survives a crash at any
 * moment. A change being written is staged; the decisions that build on a
 * peer's record ({@link latest}) and the pending queue's admission see it
 * at once, so concurrent requests cannot all pass the same check.
 */
export class TrustRecords {
  /** The records on disk (a change shows here once written) */
  readonly peers = new Map<string, StoredPeer>()
  readonly invites = new Map<string, StoredInvite>()
  readonly queue: PendingQueue
  /** When the service started: the `since` of static peers */
  startedAt = 0
  private readonly options: RecordsOptions
  private readonly file: string
  private readonly journal: PendingJournal
  private journalLines = 0
  private writing: Promise<void> | undefined
  private queued: Promise<void> | undefined
  /** per peer, the changes being written, oldest first; each applies to `peers` once it and those before it are written */
  private readonly staged = new Map<string, StagedChange[]>()

  constructor (options: RecordsOptions) {
    this.options = options
    this.file = join(options.home, TRUST_FILE)
    this.journal = new PendingJournal(options.home)
    this.queue = new PendingQueue(options.maxPending, options.maxPendingPerSource)
  }

  /**
   * Load the store. Pending requests an older version kept in `trust.json`
   * move to the journal; expired ones are dropped.
   *
   * @throws {CorruptTrustStoreError}
   */
  async load (): Promise<void> {
    const { doc, sources, journalLines, journalTorn, migrate } = await loadStore(this.file)
    this.peers.clear()
    this.invites.clear()
    this.queue.clear()
    this.staged.clear()
    // pending ones oldest first, so eviction picks the oldest of a network after a restart too
    const entries = Object.entries(doc.peers).sort(([, a], [, b]) => a.since - b.since)
    for (const [id, record] of entries) {
      this.peers.set(id, record)
      this.syncQueue(id, record, sources.get(id) ?? UNKNOWN_SOURCE)
    }
    for (const [id, invite] of Object.entries(doc.invites)) this.invites.set(id, invite)
    this.journalLines = journalLines
    // a torn tail would glue itself to the next appended line: rewrite first
    if (migrate || journalTorn || journalLines > this.queue.size) await this.compactJournal()
    if (migrate) await this.persist()
    await this.expire()
  }

  /** The state on disk, static peers included: what the gates and the local API see. */
  effectiveState (id: string): TrustState | undefined {
    return this.stateOf(id, this.durable(id))
  }

  /**
   * The record on disk, but not a pending request past its TTL: a restart
   * drops it, so no reader sees it while its removal is being written.
   */
  private durable (id: string): StoredPeer | undefined {
    const record = this.peers.get(id)
    return record?.state === 'pending-inbound' && record.since <= this.options.now() - this.options.pendingTtlMs ? undefined : record
  }

  /** The state a new decision builds on: {@link effectiveState} with the changes being written. */
  latestState (id: string): TrustState | undefined {
    return this.stateOf(id, this.latest(id))
  }

  /** The newest record of `id`, written or being written. */
  latest (id: string): StoredPeer | undefined {
    const changes = this.staged.get(id)
    return changes === undefined ? this.peers.get(id) : changes[changes.length - 1]?.record
  }

  private stateOf (id: string, record: StoredPeer | undefined): TrustState | undefined {
    const state = record?.state
    if (state === 'revoked' || state === 'revoked-by-peer') return state
    if (this.options.staticPeers.has(id)) return 'trusted'
    return state
  }

  entryOf (id: string): TrustEntry | undefined {
    const record = this.durable(id)
    const isStatic = this.options.staticPeers.has(id)
    if (isStatic && record?.state !== 'revoked' && record?.state !== 'revoked-by-peer') {
      return { peerId: id, state: 'trusted', since: this.startedAt, updatedAt: this.startedAt, reason: 'static (config)', direction: 'none', via: 'static', static: true }
    }
    if (record === undefined) return undefined
    return { peerId: id, ...record, static: isStatic }
  }

  /** The record for a new state, keeping reason / direction / via. */
  next (id: string, state: TrustState, extra: { note?: string }): StoredPeer {
    const now = this.options.now()
    const old = this.latest(id)
    const out: StoredPeer = {
      state,
      since: now,
      updatedAt: now,
      reason: old?.reason ?? '',
      direction: old?.direction ?? ('none' satisfies TrustDirection),
      via: old?.via ?? ('request' satisfies TrustVia)
    }
    const note = extra.note ?? old?.note
    if (note !== undefined) out.note = note
    return out
  }

  /** A revocation (either way) keeps what is known of how the peer came to be trusted */
  revocationRecord (id: string, state: 'revoked' | 'revoked-by-peer', reason: string | undefined): StoredPeer {
    const now = this.options.now()
    const old = this.latest(id)
    const isStatic = this.options.staticPeers.has(id)
    const record: StoredPeer = {
      state,
      since: now,
      updatedAt: now,
      reason: old?.reason ?? (isStatic ? 'static (config)' : ''),
      direction: old?.direction ?? 'none',
      via: old?.via ?? (isStatic ? 'static' : 'request')
    }
    if (reason !== undefined) record.note = reason
    return record
  }

  /** Requests waiting for this node's decision, oldest first. */
  pendingList (): PendingRequest[] {
    const out: PendingRequest[] = []
    for (const peerId of this.queue.peers()) {
      const r = this.durable(peerId)
      // the queue admits at once; the list shows a request once it is on disk
      if (r?.state === 'pending-inbound' && !this.options.staticPeers.has(peerId)) out.push({ peerId, reason: r.reason, since: r.since, updatedAt: r.updatedAt })
    }
    return out.sort((a, b) => a.since - b.since)
  }

  /**
   * Write a record change, then apply it: decisions to `trust.json`, pending
   * requests to the journal. The pending queue takes the change at once
   * (admission must not race); `peers`, and so every reader, once it is on
   * disk. The promise resolves once the change is applied.
   *
   * @param source - the network a new pending request came from
   * @throws {StateWriteError} when the change could not be written; it is not applied
   */
  async save (id: string, record: StoredPeer | undefined, source = UNKNOWN_SOURCE): Promise<void> {
    const old = this.latest(id)
    const oldSource = this.queue.sourceFor(id) ?? source
    const wasPending = old?.state === 'pending-inbound'
    const isPending = record?.state === 'pending-inbound'
    const change = this.stage(id, { record, source, written: false })
    const undo = (): void => { this.unstage(id, change, oldSource) }
    if (record !== undefined && isPending) {
      await this.writeOr(undo, async () => {
        await this.appendJournal(journalLine(id, { record, source: this.queue.sourceFor(id) ?? source }))
        // a decision it replaces leaves trust.json (after the journal holds the request: a crash in between keeps the decision)
        if (old !== undefined && !wasPending) await this.persist()
      })
      this.apply(id, change)
      return
    }
    // the decision first: a crash before the journal says so leaves both, and the decision wins at load
    if (record !== undefined || (old !== undefined && !wasPending)) await this.writeOr(undo, async () => { await this.persist() })
    if (wasPending) {
      // the decision is on disk and wins at load: a journal line that could not be written only leaves a stale request there
      await this.appendJournal(journalLine(id, undefined)).catch((err: unknown) => {
        this.options.logger?.warn({ err: (err as Error).message }, 'could not append to the pending-request journal; the decision in trust.json stands')
      })
    }
    this.apply(id, change)
  }

  /** Queue a change for `id` (the pending queue follows it now). */
  private stage (id: string, change: StagedChange): StagedChange {
    const changes = this.staged.get(id)
    if (changes === undefined) this.staged.set(id, [change])
    else changes.push(change)
    this.syncQueue(id, change.record, change.source)
    return change
  }

  /** A change that could not be written: drop it; the queue goes back to the newest remaining record. */
  private unstage (id: string, change: StagedChange, oldSource: string): void {
    const changes = this.staged.get(id) ?? []
    const at = changes.indexOf(change)
    if (at >= 0) changes.splice(at, 1)
    if (changes.length === 0) this.staged.delete(id)
    this.syncQueue(id, this.latest(id), changes[changes.length - 1]?.source ?? oldSource)
    this.applyWritten(id)
  }

  /** `change` is on disk: apply it, and the written ones behind it, in the order they were made. */
  private apply (id: string, change: StagedChange): void {
    change.written = true
    this.applyWritten(id)
  }

  private applyWritten (id: string): void {
    const changes = this.staged.get(id)
    if (changes === undefined) return
    while (changes[0]?.written === true) {
      const { record } = changes.shift() as StagedChange
      if (record === undefined) this.peers.delete(id)
      else this.peers.set(id, record)
    }
    if (changes.length === 0) this.staged.delete(id)
  }

  private syncQueue (id: string, record: StoredPeer | undefined, source: string): void {
    if (record?.state === 'pending-inbound') this.queue.add(id, source)
    else this.queue.remove(id)
  }

  /**
   * Run `write`; when it fails (a full disk), `undo` takes the in-memory
   * change back and the caller gets {@link StateWriteError}.
   */
  async writeOr (undo: () => void, write: () => Promise<void>): Promise<void> {
    try {
      await write()
    } catch (err) {
      undo()
      this.options.logger?.error({ err: (err as Error).message, file: this.file }, 'could not write the trust store; the change was not applied')
      throw new StateWriteError(`could not write ${this.file} (${(err as Error).message}); the change was not applied`, { cause: err })
    }
  }

  /** {@link save}, then the audit record, then the `changed` event. */
  async commit (id: string, record: StoredPeer, auditType: string, data: Record<string, unknown>, source?: string): Promise<void> {
    const previous = this.effectiveState(id)
    await this.save(id, record, source)
    await this.options.audit(auditType, id, { state: record.state, ...data })
    if (previous !== this.effectiveState(id) || auditType === 'trust.request-received') this.emitChange(id, previous)
  }

  /** Drop the pending requests older than the TTL (`trust.request-expired`). */
  async expire (): Promise<void> {
    const cutoff = this.options.now() - this.options.pendingTtlMs
    const expired: Array<[string, StoredPeer]> = []
    for (const id of this.queue.peers()) {
      const record = this.latest(id)
      if (record?.state === 'pending-inbound' && record.since <= cutoff) expired.push([id, record])
    }
    // every save() takes its peer out of the queue before its first await: a concurrent expire() does not see it again
    const writes = expired.map(async ([id, record]) => {
      const previous = this.effectiveState(id)
      await this.save(id, undefined)
      await this.options.audit('trust.request-expired', id, { since: record.since })
      this.emitChange(id, previous)
    })
    await Promise.all(writes)
  }

  emitChange (id: string, previous: TrustState | undefined): void {
    const change: TrustChange = { peerId: id, state: this.effectiveState(id) ?? 'none', previous: previous ?? 'none', entry: this.entryOf(id) }
    try {
      this.options.emitter.emit('changed', change)
    } catch (err) {
      this.options.logger?.error({ err }, 'a trust "changed" listener threw')
    }
  }

  emitPending (id: string): void {
    const r = this.peers.get(id)
    if (r?.state !== 'pending-inbound') return
    try {
      this.options.emitter.emit('pending', { peerId: id, reason: r.reason, since: r.since, updatedAt: r.updatedAt })
    } catch (err) {
      this.options.logger?.error({ err }, 'a trust "pending" listener threw')
    }
  }

  hasLiveInvite (): boolean {
    const now = this.options.now()
    for (const invite of this.invites.values()) {
      if (invite.expiresAt > now && invite.usesLeft > 0) return true
    }
    return false
  }

  /** Drop invites past their expiry (used-up ones stay until then, to answer `InviteUsedUp`). */
  purgeInvites (now: number): void {
    for (const [id, invite] of this.invites) {
      if (invite.expiresAt <= now) this.invites.delete(id)
    }
  }

  /**
   * Write `trust.json`. Writes are serialized and coalesced: the promise
   * resolves once a write that began after the call has finished, so every
   * change made before the call is durable.
   */
  persist (): Promise<void> {
    if (this.queued !== undefined) return this.queued
    if (this.writing === undefined) return this.write()
    const queued = this.writing.catch(() => {}).then(async () => {
      this.queued = undefined
      await this.write()
    })
    this.queued = queued
    return queued
  }

  async flush (): Promise<void> {
    await this.queued?.catch(() => {})
    await this.writing?.catch(() => {})
    await this.journal.flush()
  }

  private async appendJournal (line: string): Promise<void> {
    this.journalLines++
    const append = this.journal.append(line)
    // more dead lines than live ones: rewrite it with the live ones (queued after the append)
    if (this.journalLines > 2 * this.queue.size + 64) await this.compactJournal()
    await append
  }

  private compactJournal (): Promise<void> {
    const lines: string[] = []
    for (const id of this.queue.peers()) {
      // the queue follows the changes being written: their lines must survive the rewrite
      const record = this.latest(id)
      if (record?.state === 'pending-inbound') lines.push(journalLine(id, { record, source: this.queue.sourceFor(id) ?? UNKNOWN_SOURCE }))
    }
    this.journalLines = lines.length
    return this.journal.rewrite(lines)
  }

  /** Every peer's newest record, the changes being written included: what the next write holds. */
  snapshot (): Record<string, StoredPeer> {
    const peers = Object.fromEntries(this.peers)
    for (const id of this.staged.keys()) {
      const record = this.latest(id)
      if (record === undefined) delete peers[id]
      else peers[id] = record
    }
    return peers
  }

  private write (): Promise<void> {
    this.purgeInvites(this.options.now())
    const doc = { version: 1 as const, peers: this.snapshot(), invites: Object.fromEntries(this.invites) }
    const p: Promise<void> = writeFileAtomic(this.file, serializeDocument(doc)).finally(() => {
      if (this.writing === p) this.writing = undefined
    })
    this.writing = p
    return p
  }
}
