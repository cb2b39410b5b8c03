/**
 * The {@link TrustService}: trust store, handshake protocol, invites,
 * revocation, the inbound gate and the strict-mode admission check.
 *
 * @module
 */

import { createHash, randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createSigner, InvalidArgumentError, ProtocolError, ReplayCache, TRUST_SIGNATURE_SCHEME } from '../protocol/index.ts'
import { writeFileAtomic } from '../utils/fs.ts'
import { errorCodeOf, StateWriteError } from '../errors/index.ts'
import type { GuardedText } from '../outbox/index.ts'
import {
  checkReason,
  decodeInvite,
  encodeHandshake,
  encodeInvite,
  INITIATOR_TYPES,
  INVITE_SIGNATURE_SCHEME,
  newNonce,
  openHandshake,
  sanitizeText
} from './codec.ts'
import {
  DEFAULT_INVITE_TTL_MS,
  DEFAULT_INVITE_USES,
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_MAX_CONCURRENT_HANDSHAKES,
  DEFAULT_MAX_CONCURRENT_PER_PEER,
  DEFAULT_MAX_INBOUND_STREAMS,
  DEFAULT_MAX_INVITES,
  DEFAULT_MAX_PENDING,
  DEFAULT_MAX_RATE_LIMITED_PEERS,
  DEFAULT_RATE_BURST,
  DEFAULT_RATE_PER_SECOND,
  DEFAULT_REPLAY_MAX_PER_PEER,
  DEFAULT_REPLAY_MAX_TOTAL,
  DEFAULT_REPLAY_WINDOW_MS,
  DEFAULT_REVOKE_NOTICE_TIMEOUT_MS,
  DEFAULT_STRICT,
  DEFAULT_STRICT_ADMITS_INVITEES,
  DEFAULT_TIMEOUT_MS,
  INVITE_SECRET_BYTES,
  MAX_FRAME_BYTES,
  MAX_INVITE_ADDRESSES,
  MAX_INVITE_TTL_MS,
  MAX_INVITE_USES,
  TRUST_FILE,
  TRUST_PROTOCOL
} from './constants.ts'
import {
  errorFromWire,
  HandshakeRefusedError,
  InviteExpiredError,
  InviteInvalidError,
  InviteLimitError,
  InviteUsedUpError,
  NotPendingError,
  NotRequestedError,
  NotStartedError,
  PeerUnreachableError,
  PendingFullError,
  RefusedError,
  RevokedByPeerError,
  TrustError,
  UntrustedPeerError
} from './errors.ts'
import { RateLimiter } from '../utils/rate-limit.ts'
import { applySuccession, SuccessionError, verifySuccession } from '../identity/rotation.ts'
import type { VerifiedSuccession } from '../identity/rotation.ts'
import { loadDocument, serializeDocument } from './store.ts'
import type { HandshakeFields, HandshakeMessage, HandshakeType, InitiatorType } from './codec.ts'
import type {
  AcceptedInvite,
  CreatedInvite,
  CreateInviteOptions,
  DecisionResult,
  InviteInfo,
  PendingRequest,
  RequestResult,
  TrustAbortOptions,
  TrustChange,
  TrustComponents,
  TrustEntry,
  TrustEvents,
  TrustInit,
  TrustStats
} from './index.ts'
import type { StoredInvite, StoredPeer, TrustDirection, TrustState, TrustVia } from './store.ts'
import type { InboundGate } from '../messaging/index.ts'
import type { Message, MessageSigner } from '../protocol/index.ts'
import type { PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

type ResolvedInit = Required<Omit<TrustInit, 'allowPeers' | 'staticPeers' | 'publicServices'>>

/** What a handler answers: a reply type, or an error reply. */
type Answer = { type: 'pending' | 'approve' | 'ok' } | { type: 'error', code: string, message: string }

const REPLIES_FOR: Readonly<Record<InitiatorType, ReadonlySet<HandshakeType>>> = {
  request: new Set(['pending', 'approve', 'error']),
  invite: new Set(['approve', 'error']),
  approve: new Set(['ok', 'error']),
  reject: new Set(['ok', 'error']),
  revoke: new Set(['ok', 'error']),
  succession: new Set(['ok', 'error'])
}

function positive (name: string, value: number | undefined, fallback: number, integer = true): number {
  if (value === undefined) return fallback
  if (!(value > 0) || (integer && !Number.isSafeInteger(value)) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(`${name} must be a positive ${integer ? 'integer' : 'number'}`)
  }
  return value
}

function inviteId (secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest('hex')
}

function anySignal (signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined))
}

/**
 * Trust: who may talk to this node's agents. See the package doc in
 * `index.ts` for the protocol and the file format.
 */
export class TrustService extends EventEmitter<TrustEvents> {
  /** Whether {@link admitsInbound} refuses unknown peers (strict mode). */
  readonly strict: boolean
  private readonly components: TrustComponents
  private readonly init: ResolvedInit
  private readonly allowPeers: (() => Iterable<string | PeerId>) | undefined
  private readonly staticPeers: ReadonlySet<string>
  private readonly publicServices: ReadonlySet<string>
  private readonly signer: MessageSigner
  private readonly inviteSigner: MessageSigner
  private readonly self: PeerId
  private readonly file: string
  private readonly limiter: RateLimiter
  private readonly replayCache: ReplayCache
  private readonly peers = new Map<string, StoredPeer>()
  private readonly inviteStore = new Map<string, StoredInvite>()
  private pendingCount = 0
  private started = false
  private loaded = false
  private startedAt = 0
  private inFlight = 0
  private readonly inFlightPerPeer = new Map<string, number>()
  private readonly counters = { handshakes: 0, rateLimited: 0, busy: 0, refused: 0 }
  private writing: Promise<void> | undefined
  private queued: Promise<void> | undefined

  private readonly now: () => number

  constructor (components: TrustComponents, init: TrustInit) {
    super()
    this.now = components.clock ?? Date.now
    if (typeof init.home !== 'string' || init.home.length === 0) throw new InvalidArgumentError('home must be a directory path')
    this.components = components
    this.init = {
      home: init.home,
      strict: init.strict ?? DEFAULT_STRICT,
      strictAdmitsInvitees: init.strictAdmitsInvitees ?? DEFAULT_STRICT_ADMITS_INVITEES,
      maxPending: positive('maxPending', init.maxPending, DEFAULT_MAX_PENDING),
      maxInvites: positive('maxInvites', init.maxInvites, DEFAULT_MAX_INVITES),
      ratePerSecond: positive('ratePerSecond', init.ratePerSecond, DEFAULT_RATE_PER_SECOND, false),
      rateBurst: positive('rateBurst', init.rateBurst, DEFAULT_RATE_BURST),
      maxRateLimitedPeers: positive('maxRateLimitedPeers', init.maxRateLimitedPeers, DEFAULT_MAX_RATE_LIMITED_PEERS),
      maxConcurrentHandshakes: positive('maxConcurrentHandshakes', init.maxConcurrentHandshakes, DEFAULT_MAX_CONCURRENT_HANDSHAKES),
      maxConcurrentPerPeer: positive('maxConcurrentPerPeer', init.maxConcurrentPerPeer, DEFAULT_MAX_CONCURRENT_PER_PEER),
      maxInboundStreams: positive('maxInboundStreams', init.maxInboundStreams, DEFAULT_MAX_INBOUND_STREAMS),
      timeoutMs: positive('timeoutMs', init.timeoutMs, DEFAULT_TIMEOUT_MS),
      revokeNoticeTimeoutMs: positive('revokeNoticeTimeoutMs', init.revokeNoticeTimeoutMs, DEFAULT_REVOKE_NOTICE_TIMEOUT_MS),
      replayWindowMs: positive('replayWindowMs', init.replayWindowMs, DEFAULT_REPLAY_WINDOW_MS),
      maxClockSkewMs: positive('maxClockSkewMs', init.maxClockSkewMs, DEFAULT_MAX_CLOCK_SKEW_MS),
      replayMaxPerPeer: positive('replayMaxPerPeer', init.replayMaxPerPeer, DEFAULT_REPLAY_MAX_PER_PEER),
      replayMaxTotal: positive('replayMaxTotal', init.replayMaxTotal, DEFAULT_REPLAY_MAX_TOTAL),
      acceptOldKeyOnlySuccession: init.acceptOldKeyOnlySuccession === true
    }
    this.strict = this.init.strict
    this.allowPeers = init.allowPeers
    this.staticPeers = new Set((init.staticPeers ?? []).map(p => this.toPeer(p, 'staticPeers').toString()))
    this.publicServices = new Set(init.publicServices ?? [])
    this.signer = createSigner(components.privateKey, TRUST_SIGNATURE_SCHEME)
    this.inviteSigner = createSigner(components.privateKey, INVITE_SIGNATURE_SCHEME)
    this.self = components.libp2p.peerId
    if (!this.self.equals(this.signer.peerId)) throw new InvalidArgumentError('privateKey does not belong to libp2p.peerId')
    this.file = join(this.init.home, TRUST_FILE)
    this.limiter = new RateLimiter(this.init.ratePerSecond, this.init.rateBurst, this.init.maxRateLimitedPeers)
    this.replayCache = new ReplayCache({ windowMs: this.init.replayWindowMs, maxPerPeer: this.init.replayMaxPerPeer, maxTotal: this.init.replayMaxTotal })
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * Load `trust.json` and register the protocol handler.
   *
   * @throws {CorruptTrustStoreError} when the store exists but cannot be read as one (it is not touched)
   */
  async start (): Promise<void> {
    if (this.started) return
    const doc = await loadDocument(this.file)
    this.peers.clear()
    this.inviteStore.clear()
    this.pendingCount = 0
    for (const [id, record] of Object.entries(doc.peers)) this.setRecord(id, record)
    for (const [id, invite] of Object.entries(doc.invites)) this.inviteStore.set(id, invite)
    this.loaded = true
    this.startedAt = this.now()
    await this.components.libp2p.handle(TRUST_PROTOCOL, (stream, connection) => this.serve(stream, connection.remotePeer), {
      maxInboundStreams: this.init.maxInboundStreams,
      runOnLimitedConnection: true
    })
    this.started = true
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.components.libp2p.unhandle(TRUST_PROTOCOL).catch(() => {})
    await this.flush()
  }

  // ------------------------------------------------------------ checks

  /**
   * The inbound gate for the messaging service (`messaging.addInboundGate(trust.gate)`):
   * requests and one-way messages pass only from trusted peers, or to a
   * service listed in `publicServices`; peers we revoked or that revoked us
   * never pass.
   *
   * @throws {UntrustedPeerError}
   */
  readonly gate: InboundGate = (message: Message, remotePeer: PeerId): void => {
    const state = this.effectiveState(remotePeer.toString())
    if (state === 'trusted') return
    if (state === 'revoked') throw new UntrustedPeerError('this node revoked its trust in you')
    if (state === 'revoked-by-peer') throw new UntrustedPeerError('you revoked your trust in this node')
    if (this.publicServices.has(message.service)) return
    throw new UntrustedPeerError(`service ${JSON.stringify(message.service)} answers trusted peers only; ask for trust first`)
  }

  /**
   * Call before sending to `peer`: refuses at once, without a round trip,
   * when the peer revoked us ({@link RevokedByPeerError}) or we revoked it
   * ({@link UntrustedPeerError}). Other peers pass; whether they accept us
   * is theirs to say.
   */
  outboundCheck (peer: PeerId | string): void {
    const id = this.toPeer(peer).toString()
    const state = this.effectiveState(id)
    if (state === 'revoked-by-peer') throw new RevokedByPeerError(`${id} revoked its trust in this node`)
    if (state === 'revoked') throw new UntrustedPeerError(`this node revoked its trust in ${id}`)
  }

  /**
   * Strict-mode admission of an inbound connection (see {@link createTrustGater}).
   * Always true when not strict.
   */
  admitsInbound (peer: PeerId): boolean {
    if (!this.strict) return true
    const id = peer.toString()
    if (this.isAllowed(id)) return true
    if (!this.loaded) return false
    const state = this.effectiveState(id)
    // trusted, or we asked it and its answer will come by dialling us
    if (state === 'trusted' || state === 'pending-outbound') return true
    if (state === 'revoked' || state === 'rejected') return false
    return this.init.strictAdmitsInvitees && this.hasLiveInvite()
  }

  isTrusted (peer: PeerId | string): boolean {
    return this.effectiveState(this.toPeer(peer).toString()) === 'trusted'
  }

  /** The peer's state, `none` when this node has no record of it. */
  stateOf (peer: PeerId | string): TrustState | 'none' {
    return this.effectiveState(this.toPeer(peer).toString()) ?? 'none'
  }

  /** The peer's entry as {@link list} shows it. */
  get (peer: PeerId | string): TrustEntry | undefined {
    return this.entryOf(this.toPeer(peer).toString())
  }

  /** Every peer this node has a record of, plus the static peers, oldest state first. */
  list (): TrustEntry[] {
    const ids = new Set<string>([...this.peers.keys(), ...this.staticPeers])
    const out: TrustEntry[] = []
    for (const id of ids) {
      const entry = this.entryOf(id)
      if (entry !== undefined) out.push(entry)
    }
    return out.sort((a, b) => a.since - b.since || a.peerId.localeCompare(b.peerId))
  }

  /** Requests waiting for this node's `approve` / `reject`, oldest first. */
  pending (): PendingRequest[] {
    const out: PendingRequest[] = []
    for (const [peerId, r] of this.peers) {
      if (r.state === 'pending-inbound' && !this.staticPeers.has(peerId)) out.push({ peerId, reason: r.reason, since: r.since, updatedAt: r.updatedAt })
    }
    return out.sort((a, b) => a.since - b.since)
  }

  /** Live invites this node issued. */
  invites (): InviteInfo[] {
    const now = this.now()
    const out: InviteInfo[] = []
    for (const [id, i] of this.inviteStore) {
      if (i.expiresAt > now) out.push({ id, createdAt: i.createdAt, expiresAt: i.expiresAt, uses: i.uses, usesLeft: i.usesLeft, usedBy: [...i.usedBy] })
    }
    return out.sort((a, b) => a.createdAt - b.createdAt)
  }

  /** Counters and sizes, to watch the bounds (tests, metrics). */
  stats (): TrustStats {
    return {
      peers: this.peers.size,
      pending: this.pendingCount,
      invites: this.inviteStore.size,
      rateLimitedPeers: this.limiter.size,
      replayEntries: this.replayCache.size,
      inFlight: this.inFlight,
      handshakes: this.counters.handshakes,
      rateLimited: this.counters.rateLimited,
      busy: this.counters.busy,
      refused: this.counters.refused
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
    const remote = this.toRemote(peer)
    const id = remote.toString()
    checkReason(reason)
    if (reason.trim().length === 0) throw new InvalidArgumentError('a request needs a justification')
    const state = this.effectiveState(id)
    if (state === 'trusted') return { peerId: id, state: 'trusted' }
    const now = this.now()
    if (state === 'pending-inbound') {
      // it asked us first: our request completes the pair
      const theirs = this.peers.get(id)
      await this.commit(id, { state: 'trusted', since: now, updatedAt: now, reason: theirs?.reason ?? '', direction: 'mutual', via: 'request', note: reason }, 'trust.mutual', { reason })
    } else {
      await this.commit(id, { state: 'pending-outbound', since: now, updatedAt: now, reason, direction: 'outbound', via: 'request' }, 'trust.request-sent', { reason })
    }
    let reply: HandshakeMessage
    try {
      reply = await this.exchange(remote, { type: 'request', to: remote, reason }, options)
    } catch (err) {
      if (err instanceof RefusedError && this.peers.get(id)?.state === 'pending-outbound') {
        await this.commit(id, this.next(id, 'rejected-by-peer', { note: err.message.slice(0, 200) }), 'trust.rejected-by-peer', { code: err.code })
      }
      throw err
    }
    if (reply.type === 'approve' && this.peers.get(id)?.state === 'pending-outbound') {
      await this.commit(id, this.next(id, 'trusted', {}), 'trust.approved-by-peer', {})
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
    const remote = this.toRemote(peer)
    const id = remote.toString()
    if (this.peers.get(id)?.state !== 'pending-inbound') throw new NotPendingError(`${id} has no pending request`)
    await this.commit(id, this.next(id, 'trusted', {}), 'trust.approved', {})
    return { peerId: id, state: 'trusted', ...await this.tell(remote, { type: 'approve', to: remote }, options) }
  }

  /**
   * Reject a pending request: record `rejected` (its later requests are
   * refused with `Refused`) and send a signed rejection, best effort.
   *
   * @throws {NotPendingError} when the peer has no pending request
   */
  async reject (peer: PeerId | string, reason?: GuardedText, options: TrustAbortOptions = {}): Promise<DecisionResult> {
    this.assertStarted()
    const remote = this.toRemote(peer)
    const id = remote.toString()
    if (reason !== undefined) checkReason(reason)
    if (this.peers.get(id)?.state !== 'pending-inbound') throw new NotPendingError(`${id} has no pending request`)
    await this.commit(id, this.next(id, 'rejected', reason === undefined ? {} : { note: reason }), 'trust.rejected', reason === undefined ? {} : { reason })
    const fields: HandshakeFields & { type: InitiatorType } = { type: 'reject', to: remote }
    if (reason !== undefined) fields.reason = reason
    return { peerId: id, state: 'rejected', ...await this.tell(remote, fields, options) }
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
    const remote = this.toRemote(peer)
    const id = remote.toString()
    if (reason !== undefined) checkReason(reason)
    const previous = this.effectiveState(id)
    const record = this.revocationRecord(id, 'revoked', reason)
    const old = this.peers.get(id)
    // the gate refuses from here on, before any await
    this.setRecord(id, record)
    await this.persistOr(() => { if (this.peers.get(id) === record) this.setRecord(id, old) })
    let told: { delivered: boolean, error?: string } = { delivered: false }
    if (previous === 'trusted' || previous === 'pending-inbound' || previous === 'pending-outbound') {
      const fields: HandshakeFields & { type: InitiatorType } = { type: 'revoke', to: remote }
      if (reason !== undefined) fields.reason = reason
      told = await this.tell(remote, fields, { signal: anySignal([options.signal, AbortSignal.timeout(this.init.revokeNoticeTimeoutMs)]) })
    }
    const connections = this.components.libp2p.getConnections(remote)
    for (const connection of connections) {
      connection.abort(new UntrustedPeerError('trust revoked'))
    }
    await this.components.libp2p.hangUp(remote, { signal: AbortSignal.timeout(this.init.revokeNoticeTimeoutMs) }).catch(() => {})
    try {
      await this.components.onRevoke?.(remote)
    } catch (err) {
      this.components.logger?.error({ err, peer: id }, 'onRevoke hook failed')
    }
    await this.audit('trust.revoked', id, { previous: previous ?? 'none', notified: told.delivered, closedConnections: connections.length, ...(reason === undefined ? {} : { reason }) })
    this.emitChange(id, previous)
    return { peerId: id, state: 'revoked', ...told, closedConnections: connections.length }
  }

  /** A revocation (either way) keeps what is known of how the peer came to be trusted */
  private revocationRecord (id: string, state: 'revoked' | 'revoked-by-peer', reason: string | undefined): StoredPeer {
    const now = this.now()
    const old = this.peers.get(id)
    const record: StoredPeer = {
      state,
      since: now,
      updatedAt: now,
      reason: old?.reason ?? (this.staticPeers.has(id) ? 'static (config)' : ''),
      direction: old?.direction ?? 'none',
      via: old?.via ?? (this.staticPeers.has(id) ? 'static' : 'request')
    }
    if (reason !== undefined) record.note = reason
    return record
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
    const id = this.toPeer(peer).toString()
    const record = this.peers.get(id)
    if (record === undefined) return false
    if (record.state === 'trusted') throw new InvalidArgumentError(`${id} is trusted: revoke it instead`)
    const previous = this.effectiveState(id)
    this.setRecord(id, undefined)
    await this.persistOr(() => { if (!this.peers.has(id)) this.setRecord(id, record) })
    await this.audit('trust.forgotten', id, { previous: previous ?? 'none' })
    this.emitChange(id, previous)
    return true
  }

  // ------------------------------------------------------------ invites

  /**
   * Issue an invite code: signed by this node, naming its peer ID and
   * addresses, an expiry and a number of uses, with a random secret. The
   * invite (by the SHA-256 of its secret) and its uses left are persisted
   * before the code is returned.
   *
   * @throws {InvalidArgumentError} on an invalid ttl, uses or address
   * @throws {InviteLimitError} when `maxInvites` live invites exist
   */
  async createInvite (options: CreateInviteOptions = {}): Promise<CreatedInvite> {
    this.assertStarted()
    const ttlMs = options.ttlMs ?? DEFAULT_INVITE_TTL_MS
    const uses = options.uses ?? DEFAULT_INVITE_USES
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_INVITE_TTL_MS) throw new InvalidArgumentError(`ttlMs must be an integer in 1..${MAX_INVITE_TTL_MS}`)
    if (!Number.isSafeInteger(uses) || uses < 1 || uses > MAX_INVITE_USES) throw new InvalidArgumentError(`uses must be an integer in 1..${MAX_INVITE_USES}`)
    let addresses: Multiaddr[]
    try {
      addresses = (options.addresses ?? this.components.libp2p.getMultiaddrs()).map(a => typeof a === 'string' ? multiaddr(a) : a)
    } catch (err) {
      throw new InvalidArgumentError(`invalid invite address: ${(err as Error).message}`)
    }
    if (options.addresses !== undefined && addresses.length > MAX_INVITE_ADDRESSES) throw new InvalidArgumentError(`an invite holds at most ${MAX_INVITE_ADDRESSES} addresses`)
    addresses = addresses.slice(0, MAX_INVITE_ADDRESSES)
    const now = this.now()
    this.purgeInvites(now)
    if (this.inviteStore.size >= this.init.maxInvites) throw new InviteLimitError(`this node already holds ${this.inviteStore.size} live invites`)
    const secret = Uint8Array.from(randomBytes(INVITE_SECRET_BYTES))
    const expiresAt = now + ttlMs
    let code: string
    try {
      code = encodeInvite({ secret, expiresAt, uses, addresses }, this.inviteSigner)
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message)
    }
    const id = inviteId(secret)
    this.inviteStore.set(id, { createdAt: now, expiresAt, uses, usesLeft: uses, usedBy: [] })
    await this.persistOr(() => { this.inviteStore.delete(id) })
    const shown = decodeInvite(code).addresses.map(a => a.toString())
    await this.audit('trust.invite-created', undefined, { invite: id, expiresAt, uses, addresses: shown })
    return { code, id, expiresAt, uses, addresses: shown }
  }

  /** Withdraw an invite this node issued (by its id). @returns whether it existed */
  async cancelInvite (id: string): Promise<boolean> {
    this.assertStarted()
    const invite = this.inviteStore.get(id)
    if (invite === undefined || !this.inviteStore.delete(id)) return false
    await this.persistOr(() => { this.inviteStore.set(id, invite) })
    await this.audit('trust.invite-cancelled', undefined, { invite: id })
    return true
  }

  /**
   * Use an invite code: check it locally (signature under the peer ID it
   * names, expiry), dial the inviter at the addresses it holds, present it
   * (in a message signed by this node), and trust the inviter once it
   * answers with its approval.
   *
   * @throws {InviteInvalidError} | {InviteExpiredError} | {InviteUsedUpError} (locally or from the inviter)
   * @throws {PeerUnreachableError}
   */
  async acceptInvite (code: string, options: TrustAbortOptions = {}): Promise<AcceptedInvite> {
    this.assertStarted()
    const invite = decodeInvite(code)
    const id = invite.inviter.toString()
    if (invite.inviter.equals(this.self)) throw new InviteInvalidError('this is an invite of this node itself')
    if (invite.expiresAt <= this.now()) throw new InviteExpiredError(`the invite expired at ${new Date(invite.expiresAt).toISOString()}`)
    const addresses = invite.addresses.map(a => a.toString())
    let reply: HandshakeMessage
    try {
      reply = await this.exchange(invite.inviter, { type: 'invite', to: invite.inviter, invite: code.trim() }, { ...options, addresses: invite.addresses })
    } catch (err) {
      await this.audit('trust.invite-refused', id, { side: 'invitee', code: errorCodeOf(err) ?? 'InternalError', reason: (err as Error).message })
      throw err
    }
    if (reply.type !== 'approve') throw new HandshakeRefusedError('InvalidReply', `${id} answered an invite with ${reply.type}`)
    const now = this.now()
    const old = this.peers.get(id)
    await this.commit(id, {
      state: 'trusted',
      since: old?.state === 'trusted' ? old.since : now,
      updatedAt: now,
      reason: 'invite accepted',
      direction: 'outbound',
      via: 'invite'
    }, 'trust.invite-accepted', { addresses })
    return { peerId: id, state: 'trusted', addresses }
  }

  // ------------------------------------------------------------ inbound protocol

  private async serve (stream: Stream, remote: PeerId): Promise<void> {
    const id = remote.toString()
    const signal = AbortSignal.timeout(this.init.timeoutMs)
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    const answer = async (reply: Answer, re: string): Promise<void> => {
      const fields: HandshakeFields = { type: reply.type, to: remote, re, ts: this.now() }
      if (reply.type === 'error') {
        fields.code = reply.code
        fields.message = reply.message
      }
      await lp.write(encodeHandshake(fields, this.signer), { signal })
      await stream.close({ signal })
    }
    try {
      if (!this.started) {
        stream.abort(new NotStartedError('trust service is stopping'))
        return
      }
      this.counters.handshakes++
      const take = this.limiter.take(id)
      if (!take.allowed) {
        this.counters.rateLimited++
        if (take.firstRefusal) {
          this.components.logger?.warn({ peer: id }, 'trust handshakes rate-limited')
          void this.audit('trust.handshake-refused', id, { code: 'RateLimited' })
        }
        await answer({ type: 'error', code: 'RateLimited', message: `more than ${this.init.ratePerSecond} handshake messages per second` }, '')
        return
      }
      const mine = this.inFlightPerPeer.get(id) ?? 0
      if (this.inFlight >= this.init.maxConcurrentHandshakes || mine >= this.init.maxConcurrentPerPeer) {
        this.counters.busy++
        await answer({ type: 'error', code: 'Busy', message: 'too many handshakes in progress' }, '')
        return
      }
      this.inFlight++
      this.inFlightPerPeer.set(id, mine + 1)
      try {
        let message: HandshakeMessage
        try {
          const data = await lp.read({ signal })
          message = openHandshake(data.subarray(), {
            local: this.self,
            remote,
            replayCache: this.replayCache,
            windowMs: this.init.replayWindowMs,
            maxSkewMs: this.init.maxClockSkewMs,
            now: this.now()
          })
          if (!INITIATOR_TYPES.has(message.type)) throw new InvalidArgumentError(`a ${message.type} message cannot open an exchange`)
        } catch (err) {
          if (signal.aborted) throw err
          const code = err instanceof ProtocolError || err instanceof TrustError ? err.code : 'MalformedFrame'
          const text = err instanceof ProtocolError || err instanceof TrustError ? err.message : `unreadable frame: ${(err as Error).message}`
          this.counters.refused++
          this.components.logger?.debug({ peer: id, code, err }, 'trust handshake frame refused')
          await this.audit('trust.handshake-refused', id, { code, reason: text })
          await answer({ type: 'error', code: code === 'InvalidArgument' ? 'MalformedFrame' : code, message: text }, '')
          return
        }
        let reply: Answer
        try {
          reply = await this.dispatch(message, remote)
        } catch (err) {
          if (!(err instanceof TrustError) && !(err instanceof SuccessionError)) throw err
          this.counters.refused++
          reply = { type: 'error', code: err.code, message: err.message }
        }
        await answer(reply, message.nonce)
      } finally {
        this.inFlight--
        const left = (this.inFlightPerPeer.get(id) ?? 1) - 1
        if (left <= 0) this.inFlightPerPeer.delete(id)
        else this.inFlightPerPeer.set(id, left)
      }
    } catch (err) {
      this.components.logger?.debug({ err, peer: id }, 'trust handshake failed')
      stream.abort(err as Error)
    }
  }

  /** Act on an authenticated initiator message; throws a TrustError to refuse it. */
  private async dispatch (message: HandshakeMessage, remote: PeerId): Promise<Answer> {
    switch (message.type) {
      case 'request': return this.onRequest(remote.toString(), message.reason ?? '')
      case 'approve': return this.onApprove(remote.toString())
      case 'reject': return this.onReject(remote.toString(), message.reason)
      case 'revoke': return this.onRevoke(remote.toString(), message.reason)
      case 'invite': return this.onInvite(remote.toString(), message.invite ?? '')
      case 'succession': return this.onSuccession(remote.toString(), message.succession ?? '')
      default: throw new NotRequestedError(`unexpected ${message.type} message`)
    }
  }

  private async onRequest (id: string, reason: string): Promise<Answer> {
    const state = this.effectiveState(id)
    const now = this.now()
    switch (state) {
      case 'trusted':
        // it may have lost our approval: answer it again
        return { type: 'approve' }
      case 'rejected':
      case 'revoked':
        await this.audit('trust.request-refused', id, { code: 'Refused', state, reason })
        throw new RefusedError(state === 'revoked' ? 'this node revoked its trust in you' : 'this node rejected your request')
      case 'pending-outbound': {
        const ours = this.peers.get(id)
        await this.commit(id, { state: 'trusted', since: now, updatedAt: now, reason: ours?.reason ?? '', direction: 'mutual', via: 'request', note: reason }, 'trust.mutual', { reason })
        return { type: 'approve' }
      }
      case 'pending-inbound': {
        const old = this.peers.get(id)
        if (old === undefined || old.reason === reason) return { type: 'pending' }
        await this.commit(id, { ...old, reason, updatedAt: now }, 'trust.request-received', { reason, repeat: true })
        this.emitPending(id)
        return { type: 'pending' }
      }
      default: {
        if (this.pendingCount >= this.init.maxPending) {
          await this.audit('trust.request-refused', id, { code: 'PendingFull', reason })
          throw new PendingFullError(`this node holds ${this.pendingCount} pending requests, its maximum; try again later`)
        }
        await this.commit(id, { state: 'pending-inbound', since: now, updatedAt: now, reason, direction: 'inbound', via: 'request' }, 'trust.request-received', { reason })
        this.emitPending(id)
        return { type: 'pending' }
      }
    }
  }

  private async onApprove (id: string): Promise<Answer> {
    const state = this.effectiveState(id)
    if (state === 'trusted') return { type: 'ok' }
    if (state !== 'pending-outbound') {
      await this.audit('trust.handshake-refused', id, { code: 'NotRequested', type: 'approve' })
      throw new NotRequestedError('this node did not ask you for trust')
    }
    await this.commit(id, this.next(id, 'trusted', {}), 'trust.approved-by-peer', {})
    return { type: 'ok' }
  }

  private async onReject (id: string, reason: string | undefined): Promise<Answer> {
    const state = this.effectiveState(id)
    if (state === 'rejected-by-peer') return { type: 'ok' }
    if (state !== 'pending-outbound') {
      await this.audit('trust.handshake-refused', id, { code: 'NotRequested', type: 'reject' })
      throw new NotRequestedError('this node has no request pending with you')
    }
    await this.commit(id, this.next(id, 'rejected-by-peer', reason === undefined ? {} : { note: reason }), 'trust.rejected-by-peer', reason === undefined ? {} : { reason })
    return { type: 'ok' }
  }

  private async onRevoke (id: string, reason: string | undefined): Promise<Answer> {
    const state = this.effectiveState(id)
    // a peer we hold nothing about has nothing to revoke; one we revoked or
    // rejected stays so (else revoke-then-request would get around a rejection)
    if (state === undefined || state === 'revoked' || state === 'revoked-by-peer' || state === 'rejected') return { type: 'ok' }
    const record = this.revocationRecord(id, 'revoked-by-peer', reason)
    await this.commit(id, record, 'trust.revoked-by-peer', { previous: state, ...(reason === undefined ? {} : { reason }) })
    return { type: 'ok' }
  }

  private async onInvite (id: string, code: string): Promise<Answer> {
    const refuse = async (err: TrustError, invite?: string): Promise<never> => {
      await this.audit('trust.invite-refused', id, { side: 'inviter', code: err.code, reason: err.message, ...(invite === undefined ? {} : { invite }) })
      throw err
    }
    const state = this.effectiveState(id)
    if (state === 'revoked') return refuse(new RefusedError('this node revoked its trust in you'))
    let invite
    try {
      invite = decodeInvite(code)
    } catch (err) {
      return refuse(err instanceof TrustError ? err : new InviteInvalidError('invalid invite code'))
    }
    if (!invite.inviter.equals(this.self)) return refuse(new InviteInvalidError('this invite was not issued by this node'))
    const now = this.now()
    const key = inviteId(invite.secret)
    if (invite.expiresAt <= now) return refuse(new InviteExpiredError(`the invite expired at ${new Date(invite.expiresAt).toISOString()}`), key)
    const stored = this.inviteStore.get(key)
    if (stored === undefined || stored.expiresAt !== invite.expiresAt || stored.uses !== invite.uses) {
      return refuse(new InviteInvalidError('this node holds no such invite (unknown or withdrawn)'), key)
    }
    if (state === 'trusted') return { type: 'approve' }
    if (!stored.usedBy.includes(id)) {
      if (stored.usesLeft <= 0) return refuse(new InviteUsedUpError('the invite has no uses left'), key)
      // decided synchronously: two peers racing for the last use cannot both get it
      stored.usesLeft--
      stored.usedBy.push(id)
    }
    const old = this.peers.get(id)
    await this.commit(id, {
      state: 'trusted',
      since: now,
      updatedAt: now,
      reason: old?.state === 'pending-inbound' ? old.reason : `invite ${key.slice(0, 12)}`,
      direction: 'inbound',
      via: 'invite'
    }, 'trust.invite-used', { invite: key, usesLeft: stored.usesLeft })
    return { type: 'approve' }
  }

  // ------------------------------------------------------------ key rotation (issue 15)

  /**
   * A peer rotated its key: `record` (both keys' signatures, see
   * `src/identity/rotation.ts`) moves its trust from the old ID to the new
   * one, with its petnames (`onSuccession`). The sender must be one of the
   * two IDs. A record signed by the old key alone is refused unless
   * `acceptOldKeyOnlySuccession`. Idempotent: a repeat moves nothing.
   */
  private async onSuccession (id: string, record: string): Promise<Answer> {
    await this.follow(id, record)
    return { type: 'ok' }
  }

  /**
   * Act on a succession record `sender` presented (a notice, or a `Moved`
   * answer to a message): verify it per this node's policy and, if the old
   * ID is trusted, move its trust to the new ID. Throws `SuccessionError`
   * (audited) when the record is refused; `moved` says whether trust moved.
   */
  async follow (sender: PeerId | string, record: string): Promise<VerifiedSuccession & { moved: boolean }> {
    const id = sender.toString()
    let s
    try {
      s = verifySuccession(record, { acceptOldKeyOnly: this.init.acceptOldKeyOnlySuccession, now: this.now() })
      if (s.old !== id && s.new !== id) throw new SuccessionError('MalformedSuccession', 'the succession record is not about the peer that sent it')
    } catch (err) {
      if (err instanceof SuccessionError) await this.audit('trust.succession-refused', id, { code: err.code, reason: err.message })
      throw err
    }
    const now = this.now()
    const peers = Object.fromEntries(this.peers)
    const current = this.entryOf(s.old)
    // a static (config) peer has no stored record: its trust moves as if it had one
    if (peers[s.old] === undefined && current?.static === true && current.state === 'trusted') {
      peers[s.old] = { state: 'trusted', since: current.since, updatedAt: current.updatedAt, reason: current.reason, direction: 'none', via: 'static' }
    }
    const move = applySuccession(peers, {}, s, now)
    if (move.moved) {
      const previous = { old: this.effectiveState(s.old), new: this.effectiveState(s.new) }
      this.setRecord(s.new, move.peers[s.new])
      this.setRecord(s.old, move.peers[s.old])
      await this.persist()
      this.emitChange(s.new, previous.new)
      this.emitChange(s.old, previous.old)
      try {
        await this.components.onSuccession?.(s.old, s.new)
      } catch (err) {
        this.components.logger?.error({ err, old: s.old, new: s.new }, 'onSuccession hook failed')
      }
    }
    await this.audit(move.audit.type, s.old, move.audit.data)
    return { ...s, moved: move.moved }
  }

  // ------------------------------------------------------------ outbound protocol

  /**
   * Send one initiator message and return the peer's reply, checked like any
   * inbound frame and bound to our nonce. An `error` reply is thrown as its
   * typed error.
   */
  private async exchange (remote: PeerId, fields: HandshakeFields & { type: InitiatorType }, options: TrustAbortOptions & { addresses?: Multiaddr[] }): Promise<HandshakeMessage> {
    const signal = anySignal([options.signal, AbortSignal.timeout(this.init.timeoutMs)])
    const nonce = newNonce()
    const frame = encodeHandshake({ ...fields, nonce, ts: this.now() }, this.signer)
    const id = remote.toString()
    const target = options.addresses !== undefined && options.addresses.length > 0
      ? options.addresses.map(a => a.getComponents().at(-1)?.value === id ? a : a.encapsulate(`/p2p/${id}`))
      : remote
    let stream: Stream
    try {
      stream = await this.components.libp2p.dialProtocol(target, TRUST_PROTOCOL, { signal, runOnLimitedConnection: true })
    } catch (err) {
      throw new PeerUnreachableError(`cannot reach ${id}: ${(err as Error).message}`)
    }
    let reply: HandshakeMessage
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      await lp.write(frame, { signal })
      const data = await lp.read({ signal })
      await stream.close({ signal }).catch(() => {})
      try {
        reply = openHandshake(data.subarray(), {
          local: this.self,
          remote,
          replayCache: this.replayCache,
          windowMs: this.init.replayWindowMs,
          maxSkewMs: this.init.maxClockSkewMs,
          now: this.now()
        })
      } catch (err) {
        throw new HandshakeRefusedError('InvalidReply', `${id} sent an invalid reply: ${(err as Error).message}`)
      }
    } catch (err) {
      stream.abort(err as Error)
      if (err instanceof TrustError) throw err
      throw new PeerUnreachableError(`no answer from ${id}: ${(err as Error).message}`)
    }
    const allowed = REPLIES_FOR[fields.type]
    if (!allowed.has(reply.type) || (reply.re !== nonce && !(reply.type === 'error' && reply.re === ''))) {
      throw new HandshakeRefusedError('InvalidReply', `${id} answered a ${fields.type} with an unrelated ${reply.type}`)
    }
    if (reply.type === 'error') {
      // the peer rotated its key: follow the record it answered with (verified like a notice)
      if (reply.code === 'Moved' && reply.message !== undefined) await this.onSuccession(id, reply.message).catch(() => {})
      throw errorFromWire(reply.code ?? 'Error', sanitizeText(reply.message ?? ''), id)
    }
    return reply
  }

  /** Best-effort notice (approve / reject / revoke): never throws. */
  private async tell (remote: PeerId, fields: HandshakeFields & { type: InitiatorType }, options: TrustAbortOptions): Promise<{ delivered: boolean, error?: string }> {
    try {
      await this.exchange(remote, fields, options)
      return { delivered: true }
    } catch (err) {
      this.components.logger?.warn({ err, peer: remote.toString(), type: fields.type }, 'trust notice not delivered')
      const code = errorCodeOf(err)
      return { delivered: false, error: `${code != null ? code + ': ' : ''}${(err as Error).message}` }
    }
  }

  // ------------------------------------------------------------ state

  private effectiveState (id: string): TrustState | undefined {
    const state = this.peers.get(id)?.state
    if (state === 'revoked' || state === 'revoked-by-peer') return state
    if (this.staticPeers.has(id)) return 'trusted'
    return state
  }

  private entryOf (id: string): TrustEntry | undefined {
    const record = this.peers.get(id)
    if (this.staticPeers.has(id) && record?.state !== 'revoked' && record?.state !== 'revoked-by-peer') {
      return { peerId: id, state: 'trusted', since: this.startedAt, updatedAt: this.startedAt, reason: 'static (config)', direction: 'none', via: 'static', static: true }
    }
    if (record === undefined) return undefined
    return { peerId: id, ...record, static: this.staticPeers.has(id) }
  }

  /** The record for a new state, keeping reason / direction / via. */
  private next (id: string, state: TrustState, extra: { note?: string }): StoredPeer {
    const now = this.now()
    const old = this.peers.get(id)
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

  private setRecord (id: string, record: StoredPeer | undefined): void {
    const old = this.peers.get(id)
    if (old?.state === 'pending-inbound') this.pendingCount--
    if (record === undefined) {
      this.peers.delete(id)
    } else {
      this.peers.set(id, record)
      if (record.state === 'pending-inbound') this.pendingCount++
    }
  }

  /** Change a record, write the store, append to the audit log, emit `changed`. */
  private async commit (id: string, record: StoredPeer, auditType: string, data: Record<string, unknown>): Promise<void> {
    const previous = this.effectiveState(id)
    const old = this.peers.get(id)
    this.setRecord(id, record)
    await this.persistOr(() => { if (this.peers.get(id) === record) this.setRecord(id, old) })
    await this.audit(auditType, id, { state: record.state, ...data })
    if (previous !== this.effectiveState(id) || auditType === 'trust.request-received') this.emitChange(id, previous)
  }

  private emitChange (id: string, previous: TrustState | undefined): void {
    const change: TrustChange = { peerId: id, state: this.effectiveState(id) ?? 'none', previous: previous ?? 'none', entry: this.entryOf(id) }
    try {
      this.emit('changed', change)
    } catch (err) {
      this.components.logger?.error({ err }, 'a trust "changed" listener threw')
    }
  }

  private emitPending (id: string): void {
    const r = this.peers.get(id)
    if (r?.state !== 'pending-inbound') return
    try {
      this.emit('pending', { peerId: id, reason: r.reason, since: r.since, updatedAt: r.updatedAt })
    } catch (err) {
      this.components.logger?.error({ err }, 'a trust "pending" listener threw')
    }
  }


  private async audit (type: string, peer: string | undefined, data: Record<string, unknown>): Promise<void> {
    const log = this.components.audit
    if (log === undefined) return
    try {
      await log.append(type, peer === undefined ? data : { peer, ...data })
    } catch (err) {
      this.components.logger?.error({ err, type }, 'could not append to the audit log')
    }
  }

  private hasLiveInvite (): boolean {
    const now = this.now()
    for (const invite of this.inviteStore.values()) {
      if (invite.expiresAt > now && invite.usesLeft > 0) return true
    }
    return false
  }

  /** Drop invites past their expiry (used-up ones stay until then, to answer `InviteUsedUp`). */
  private purgeInvites (now: number): void {
    for (const [id, invite] of this.inviteStore) {
      if (invite.expiresAt <= now) this.inviteStore.delete(id)
    }
  }

  private isAllowed (id: string): boolean {
    if (this.allowPeers === undefined) return false
    for (const p of this.allowPeers()) {
      if (p.toString() === id) return true
    }
    return false
  }

  /**
   * Write the store. Writes are serialized and coalesced: the promise
   * resolves once a write that began after the call has finished, so every
   * change made before the call is durable.
   */
  private persist (): Promise<void> {
    if (this.queued !== undefined) return this.queued
    if (this.writing === undefined) return this.write()
    const queued = this.writing.catch(() => {}).then(async () => {
      this.queued = undefined
      await this.write()
    })
    this.queued = queued
    return queued
  }

  /**
   * Persist first, then apply: when the store cannot be written (a full
   * disk), `undo` takes the in-memory change back, so nothing the file does
   * not hold stays in effect (a restart would silently revert it), and the
   * caller gets {@link StateWriteError}.
   */
  private async persistOr (undo: () => void): Promise<void> {
    try {
      await this.persist()
    } catch (err) {
      undo()
      this.components.logger?.error({ err: (err as Error).message, file: this.file }, 'could not write the trust store; the change was not applied')
      throw new StateWriteError(`could not write ${this.file} (${(err as Error).message}); the change was not applied`, { cause: err })
    }
  }

  private write (): Promise<void> {
    this.purgeInvites(this.now())
    const doc = {
      version: 1 as const,
      peers: Object.fromEntries(this.peers),
      invites: Object.fromEntries(this.inviteStore)
    }
    const p: Promise<void> = writeFileAtomic(this.file, serializeDocument(doc)).finally(() => {
      if (this.writing === p) this.writing = undefined
    })
    this.writing = p
    return p
  }

  private async flush (): Promise<void> {
    await this.queued?.catch(() => {})
    await this.writing?.catch(() => {})
  }

  private assertStarted (): void {
    if (!this.started) throw new NotStartedError('the trust service is not started')
  }

  private toPeer (peer: PeerId | string, what = 'peer'): PeerId {
    if (typeof peer !== 'string') return peer
    try {
      return peerIdFromString(peer)
    } catch {
      throw new InvalidArgumentError(`${what}: ${JSON.stringify(peer.slice(0, 80))} is not a peer ID`)
    }
  }

  /** A peer we can hold a handshake with: Ed25519, not ourselves. */
  private toRemote (peer: PeerId | string): PeerId {
    const remote = this.toPeer(peer)
    if (remote.type !== 'Ed25519') throw new InvalidArgumentError('agentnet peers have Ed25519 peer IDs')
    if (remote.equals(this.self)) throw new InvalidArgumentError('a node cannot hold a trust relationship with itself')
    return remote
  }
}
