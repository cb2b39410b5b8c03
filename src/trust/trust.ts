/**
 * The {@link TrustService} façade: it builds the parts and answers for
 * them — the records and the store (`records.ts`), the handshake protocol
 * (`handshake.ts`), invites (`invites.ts`) and the checks other layers ask
 * (`gates.ts`) — and holds the local decisions (request, approve, reject,
 * revoke, forget).
 *
 * @module
 */

import { EventEmitter } from 'node:events'
import { createSigner, InvalidArgumentError, ReplayCache, toPeer, TRUST_SIGNATURE_SCHEME } from '../protocol/index.ts'
import { checkReason } from './codec.ts'
import { anySignal, resolveInit, toRemote } from './context.ts'
import { NotPendingError, NotStartedError, RefusedError, UntrustedPeerError } from './errors.ts'
import { admits, checkOutbound, inboundGate } from './gates.ts'
import { TrustProtocol } from './handshake.ts'
import { TrustInvites } from './invites.ts'
import { TrustRecords } from './records.ts'
import type { GuardedText } from '../outbox/index.ts'
import type { HandshakeMessage } from './codec.ts'
import type { ResolvedInit, TrustContext } from './context.ts'
import type { Initiator } from './handshake.ts'
import type {
  AcceptedInvite,
  CreatedInvite,
  CreateInviteOptions,
  DecisionResult,
  InviteInfo,
  PendingRequest,
  RequestResult,
  TrustAbortOptions,
  TrustComponents,
  TrustEntry,
  TrustEvents,
  TrustInit,
  TrustStats
} from './index.ts'
import type { TrustState } from './store.ts'
import type { VerifiedSuccession } from '../identity/rotation.ts'
import type { InboundGate } from '../messaging/index.ts'
import type { PeerId } from '@libp2p/interface'

/**
 * Trust: who may talk to this node's agents. See the package doc in
 * `index.ts` for the protocol and the file format.
 */
export class TrustService extends EventEmitter<TrustEvents> {
  /** Whether {@link admitsInbound} refuses unknown peers (strict mode). */
  readonly strict: boolean
  /**
   * The inbound gate for the messaging service (`messaging.addInboundGate(trust.gate)`):
   * requests and one-way messages pass only from trusted peers, or to a
   * service listed in `publicServices`; peers we revoked or that revoked us
   * never pass.
   *
   * @throws {UntrustedPeerError}
   */
  readonly gate: InboundGate
  private readonly ctx: TrustContext
  private readonly init: ResolvedInit
  private readonly records: TrustRecords
  private readonly protocol: TrustProtocol
  private readonly inviteService: TrustInvites
  private readonly allowPeers: (() => Iterable<string | PeerId>) | undefined
  private readonly staticPeers: ReadonlySet<string>
  private started = false
  private loaded = false

  constructor (components: TrustComponents, init: TrustInit) {
    super()
    this.init = resolveInit(init)
    const now = components.clock ?? Date.now
    this.strict = this.init.strict
    this.allowPeers = init.allowPeers
    this.staticPeers = new Set((init.staticPeers ?? []).map(p => toPeer(p, 'staticPeers').toString()))
    const signer = createSigner(components.privateKey, TRUST_SIGNATURE_SCHEME)
    const self = components.libp2p.peerId
    if (!self.equals(signer.peerId)) throw new InvalidArgumentError('privateKey does not belong to libp2p.peerId')
    // the node's replay cache when it passes one (persisted with it), else one of the same class
    const replayCache = components.replayCache ?? new ReplayCache({ windowMs: this.init.replayWindowMs, maxPerPeer: this.init.replayMaxPerPeer, maxTotal: this.init.replayMaxTotal })
    if (this.init.replayWindowMs > replayCache.windowMs) throw new InvalidArgumentError('replayWindowMs must not exceed the replay cache window')
    const audit = async (type: string, peer: string | undefined, data: Record<string, unknown>): Promise<void> => {
      if (components.audit === undefined) return
      try {
        await components.audit.append(type, peer === undefined ? data : { peer, ...data })
      } catch (err) {
        components.logger?.error({ err, type }, 'could not append to the audit log')
      }
    }
    this.records = new TrustRecords({
      home: this.init.home,
      now,
      staticPeers: this.staticPeers,
      maxPending: this.init.maxPending,
      maxPendingPerSource: this.init.maxPendingPerSource,
      pendingTtlMs: this.init.pendingTtlMs,
      emitter: this,
      audit,
      logger: components.logger
    })
    this.ctx = { components, init: this.init, records: this.records, self, signer, replayCache, now, audit }
    this.inviteService = new TrustInvites(this.ctx)
    this.protocol = new TrustProtocol(this.ctx, async (id, code) => this.inviteService.onInvite(id, code))
    this.inviteService.protocol = this.protocol
    this.gate = inboundGate(this.records, new Set(init.publicServices ?? []))
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * Load the store and register the protocol handler.
   *
   * @throws {CorruptTrustStoreError} when the store exists but cannot be read as one (it is not touched)
   */
  async start (): Promise<void> {
    if (this.started) return
    await this.records.load()
    this.loaded = true
    this.records.startedAt = this.ctx.now()
    await this.protocol.start()
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.protocol.stop()
    await this.records.flush()
  }

  // ------------------------------------------------------------ checks

  /**
   * Call before sending to `peer`: refuses at once, without a round trip,
   * when the peer revoked us ({@link RevokedByPeerError}) or we revoked it
   * ({@link UntrustedPeerError}). Other peers pass; whether they accept us
   * is theirs to say.
   */
  outboundCheck (peer: PeerId | string): void {
    checkOutbound(this.records, toPeer(peer).toString())
  }

  /**
   * Strict-mode admission of an inbound connection (see {@link createTrustGater}).
   * Always true when not strict.
   */
  admitsInbound (peer: PeerId): boolean {
    return admits(this.records, { strict: this.strict, strictAdmitsInvitees: this.init.strictAdmitsInvitees, loaded: this.loaded, isAllowed: id => this.isAllowed(id) }, peer)
  }

  isTrusted (peer: PeerId | string): boolean {
    return this.records.effectiveState(toPeer(peer).toString()) === 'trusted'
  }

  /** The peer's state, `none` when this node has no record of it. */
  stateOf (peer: PeerId | string): TrustState | 'none' {
    return this.records.effectiveState(toPeer(peer).toString()) ?? 'none'
  }

  /** The peer's entry as {@link list} shows it. */
  get (peer: PeerId | string): TrustEntry | undefined {
    return this.records.entryOf(toPeer(peer).toString())
  }

  /** Every peer this node has a record of, plus the static peers, oldest state first. */
  list (): TrustEntry[] {
    const ids = new Set<string>([...this.records.peers.keys(), ...this.staticPeers])
    const out: TrustEntry[] = []
    for (const id of ids) {
      const entry = this.records.entryOf(id)
      if (entry !== undefined) out.push(entry)
    }
    return out.sort((a, b) => a.since - b.since || a.peerId.localeCompare(b.peerId))
  }

  /** Requests waiting for this node's `approve` / `reject`, oldest first (expired ones are dropped first). */
  pending (): PendingRequest[] {
    void this.records.expire().catch(err => this.ctx.components.logger?.error({ err }, 'could not drop expired trust requests'))
    return this.records.pendingList()
  }

  /** Live invites this node issued. */
  invites (): InviteInfo[] {
    const now = this.ctx.now()
    const out: InviteInfo[] = []
    for (const [id, i] of this.records.invites) {
      if (i.expiresAt > now) out.push({ id, createdAt: i.createdAt, expiresAt: i.expiresAt, uses: i.uses, usesLeft: i.usesLeft, usedBy: [...i.usedBy] })
    }
    return out.sort((a, b) => a.createdAt - b.createdAt)
  }

  /** Counters and sizes, to watch the bounds (tests, metrics). */
  stats (): TrustStats {
    return {
      peers: this.records.peers.size,
      pending: this.records.queue.size,
      pendingSources: this.records.queue.counts().size,
      invites: this.records.invites.size,
      rateLimitedPeers: this.protocol.limiter.size,
      replayEntries: this.ctx.replayCache.size,
      inFlight: this.protocol.inFlight,
      ...this.protocol.counters
    }
  }

  // ------------------------------------------------------------ decisions

  /**
   * Ask `peer` to trust this node, with a justification (≤ 1 KiB). Records
   * `pending-outbound` (durably) before sending. If the peer had already
   * asked us, or asks us too, trust is mutual at once.
   *
   * @returns the state afterwards: `trusted` (the peer approved at once:
   * mutual, or it trusted us already) or `pending-outbound`
   * @throws {ReasonTooLongError} | {InvalidReasonError} | {InvalidArgumentError} before anything is sent
   * @throws {PeerUnreachableError} when the peer cannot be reached (the request stays `pending-outbound`)
   * @throws {RefusedError} | {PendingFullError} | {RateLimitedError} | … as the peer answered
   */
  async request (peer: PeerId | string, reason: GuardedText, options: TrustAbortOptions = {}): Promise<RequestResult> {
    this.assertStarted()
    const { records } = this
    const remote = toRemote(peer, this.ctx.self)
    const id = remote.toString()
    checkReason(reason)
    if (reason.trim().length === 0) throw new InvalidArgumentError('a request needs a justification')
    const state = records.latestState(id)
    if (state === 'trusted') return { peerId: id, state: 'trusted' }
    const now = this.ctx.now()
    if (state === 'pending-inbound') {
      // it asked us first: our request completes the pair
      const theirs = records.latest(id)
      await records.commit(id, { state: 'trusted', since: now, updatedAt: now, reason: theirs?.reason ?? '', direction: 'mutual', via: 'request', note: reason }, 'trust.mutual', { reason })
    } else {
      await records.commit(id, { state: 'pending-outbound', since: now, updatedAt: now, reason, direction: 'outbound', via: 'request' }, 'trust.request-sent', { reason })
    }
    let reply: HandshakeMessage
    try {
      reply = await this.protocol.exchange(remote, { type: 'request', reason }, options)
    } catch (err) {
      if (err instanceof RefusedError && records.latest(id)?.state === 'pending-outbound') {
        await records.commit(id, records.next(id, 'rejected-by-peer', { note: err.message.slice(0, 200) }), 'trust.rejected-by-peer', { code: err.code })
      }
      throw err
    }
    if (reply.type === 'approve' && records.latest(id)?.state === 'pending-outbound') {
      await records.commit(id, records.next(id, 'trusted', {}), 'trust.approved-by-peer', {})
    }
    return { peerId: id, state: this.stateOf(id) }
  }

  /**
   * Approve a pending request: trust the peer (durably) and send it a signed
   * approval. Delivery is best effort: when it fails the peer stays
   * `pending-outbound` on its side until it asks again, which this node then
   * answers with an approval at once.
   *
   * @throws {NotPendingError} when the peer has no pending request
   */
  async approve (peer: PeerId | string, options: TrustAbortOptions = {}): Promise<DecisionResult> {
    this.assertStarted()
    const remote = toRemote(peer, this.ctx.self)
    const id = remote.toString()
    if (this.records.latest(id)?.state !== 'pending-inbound') throw new NotPendingError(`${id} has no pending request`)
    await this.records.commit(id, this.records.next(id, 'trusted', {}), 'trust.approved', {})
    return { peerId: id, state: 'trusted', ...await this.protocol.tell(remote, { type: 'approve' }, options) }
  }

  /**
   * Reject a pending request: record `rejected` (its later requests are
   * refused with `Refused`) and send a signed rejection, best effort.
   *
   * @throws {NotPendingError} when the peer has no pending request
   */
  async reject (peer: PeerId | string, reason?: GuardedText, options: TrustAbortOptions = {}): Promise<DecisionResult> {
    this.assertStarted()
    const remote = toRemote(peer, this.ctx.self)
    const id = remote.toString()
    if (reason !== undefined) checkReason(reason)
    if (this.records.latest(id)?.state !== 'pending-inbound') throw new NotPendingError(`${id} has no pending request`)
    await this.records.commit(id, this.records.next(id, 'rejected', reason === undefined ? {} : { note: reason }), 'trust.rejected', reason === undefined ? {} : { reason })
    const fields: Initiator = { type: 'reject' }
    if (reason !== undefined) fields.reason = reason
    return { peerId: id, state: 'rejected', ...await this.protocol.tell(remote, fields, options) }
  }

  /**
   * Revoke trust in `peer`, whatever its state: the gate refuses its messages
   * from the moment this is called; the decision is written; the peer is told
   * (signed `revoke`, best effort, bounded by `revokeNoticeTimeoutMs`); every
   * connection to it is closed; then `onRevoke(peer)` runs (session tokens).
   * Its later requests are refused; `request()` or an invite restores trust.
   */
  async revoke (peer: PeerId | string, reason?: GuardedText, options: TrustAbortOptions = {}): Promise<DecisionResult & { closedConnections: number }> {
    this.assertStarted()
    const { components } = this.ctx
    const remote = toRemote(peer, this.ctx.self)
    const id = remote.toString()
    if (reason !== undefined) checkReason(reason)
    const previous = this.records.effectiveState(id)
    // the gate refuses from the moment the revocation is on disk, before the peer is told or anything else awaits
    await this.records.save(id, this.records.revocationRecord(id, 'revoked', reason))
    let told: { delivered: boolean, error?: string } = { delivered: false }
    if (previous === 'trusted' || previous === 'pending-inbound' || previous === 'pending-outbound') {
      const fields: Initiator = { type: 'revoke' }
      if (reason !== undefined) fields.reason = reason
      told = await this.protocol.tell(remote, fields, { signal: anySignal([options.signal, AbortSignal.timeout(this.init.revokeNoticeTimeoutMs)]) })
    }
    const connections = components.libp2p.getConnections(remote)
    for (const connection of connections) {
      connection.abort(new UntrustedPeerError('trust revoked'))
    }
    await components.libp2p.hangUp(remote, { signal: AbortSignal.timeout(this.init.revokeNoticeTimeoutMs) }).catch(() => {})
    try {
      await components.onRevoke?.(remote)
    } catch (err) {
      components.logger?.error({ err, peer: id }, 'onRevoke hook failed')
    }
    await this.ctx.audit('trust.revoked', id, { previous: previous ?? 'none', notified: told.delivered, closedConnections: connections.length, ...(reason === undefined ? {} : { reason }) })
    this.records.emitChange(id, previous)
    return { peerId: id, state: 'revoked', ...told, closedConnections: connections.length }
  }

  /**
   * Delete this node's record of a peer that is not trusted (e.g. to let a
   * rejected or revoked peer ask again). To drop trust, use {@link revoke}.
   *
   * @returns whether there was a record
   * @throws {InvalidArgumentError} when the peer is trusted
   */
  async forget (peer: PeerId | string): Promise<boolean> {
    this.assertStarted()
    const id = toPeer(peer).toString()
    const record = this.records.latest(id)
    if (record === undefined) return false
    if (record.state === 'trusted') throw new InvalidArgumentError(`${id} is trusted: revoke it instead`)
    const previous = this.records.effectiveState(id)
    await this.records.save(id, undefined)
    await this.ctx.audit('trust.forgotten', id, { previous: previous ?? 'none' })
    this.records.emitChange(id, previous)
    return true
  }

  /**
   * Act on a succession record `sender` presented (a notice, or a `Moved`
   * answer to a message): verify it per this node's policy and, if the old
   * ID is trusted, move its trust to the new ID. Throws `SuccessionError`
   * (audited) when the record is refused; `moved` says whether trust moved.
   */
  async follow (sender: PeerId | string, record: string): Promise<VerifiedSuccession & { moved: boolean }> {
    return this.protocol.follow(sender.toString(), record)
  }

  // ------------------------------------------------------------ invites (invites.ts)

  /** See {@link TrustInvites.create}. */
  async createInvite (options: CreateInviteOptions = {}): Promise<CreatedInvite> {
    this.assertStarted()
    return this.inviteService.create(options)
  }

  /** Withdraw an invite this node issued (by its id). @returns whether it existed */
  async cancelInvite (id: string): Promise<boolean> {
    this.assertStarted()
    return this.inviteService.cancel(id)
  }

  /** See {@link TrustInvites.accept}. */
  async acceptInvite (code: string, options: TrustAbortOptions = {}): Promise<AcceptedInvite> {
    this.assertStarted()
    return this.inviteService.accept(code, options)
  }

  // ------------------------------------------------------------ helpers

  private isAllowed (id: string): boolean {
    if (this.allowPeers === undefined) return false
    for (const p of this.allowPeers()) {
      if (p.toString() === id) return true
    }
    return false
  }

  private assertStarted (): void {
    if (!this.started) throw new NotStartedError('the trust service is not started')
  }
}
