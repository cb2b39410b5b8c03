/**
 * The handshake protocol on the network: serving inbound trust streams
 * (rate limit, concurrency caps, frame checks, dispatch to the handlers
 * that change the records) and the outbound exchange (one initiator frame,
 * one checked reply bound to it).
 *
 * @module
 */

import { randomUUID } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import { InvalidArgumentError, ProtocolError } from '../protocol/index.ts'
import { errorCodeOf } from '../errors/index.ts'
import { RateLimiter } from '../utils/rate-limit.ts'
import { applySuccession, SuccessionError, verifySuccession } from '../identity/rotation.ts'
import type { VerifiedSuccession } from '../identity/rotation.ts'
import { openTrustFrame, sanitizeText, sealTrustFrame } from './codec.ts'
import { anySignal } from './context.ts'
import { MAX_FRAME_BYTES, TRUST_PROTOCOL } from './constants.ts'
import {
  errorFromWire,
  HandshakeRefusedError,
  NotRequestedError,
  NotStartedError,
  PeerUnreachableError,
  PendingFullError,
  RefusedError,
  TrustError
} from './errors.ts'
import { sourceOf } from './pending.ts'
import type { HandshakeFields, HandshakeMessage, HandshakeType, InitiatorType } from './codec.ts'
import type { TrustContext } from './context.ts'
import type { TrustAbortOptions } from './index.ts'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What a handler answers: a reply type, or an error reply. */
export type Answer = { type: 'pending' | 'approve' | 'ok' } | { type: 'error', code: string, message: string }

/** An initiator message to send; `to` is filled in from the remote. */
export type Initiator = Omit<HandshakeFields, 'to' | 're' | 'id'> & { type: InitiatorType }

const REPLIES_FOR: Readonly<Record<InitiatorType, ReadonlySet<HandshakeType>>> = {
  request: new Set(['pending', 'approve', 'error']),
  invite: new Set(['approve', 'error']),
  approve: new Set(['ok', 'error']),
  reject: new Set(['ok', 'error']),
  revoke: new Set(['ok', 'error']),
  succession: new Set(['ok', 'error'])
}

/** Counters of {@link TrustStats}. */
export interface HandshakeCounters { handshakes: number, rateLimited: number, busy: number, refused: number }

export class TrustProtocol {
  readonly counters: HandshakeCounters = { handshakes: 0, rateLimited: 0, busy: 0, refused: 0 }
  readonly limiter: RateLimiter
  inFlight = 0
  private readonly ctx: TrustContext
  private readonly onInvite: (id: string, code: string) => Promise<Answer>
  private readonly inFlightPerPeer = new Map<string, number>()
  private started = false

  constructor (ctx: TrustContext, onInvite: (id: string, code: string) => Promise<Answer>) {
    this.ctx = ctx
    this.onInvite = onInvite
    this.limiter = new RateLimiter(ctx.init.ratePerSecond, ctx.init.rateBurst, ctx.init.maxRateLimitedPeers)
  }

  async start (): Promise<void> {
    await this.ctx.components.libp2p.handle(TRUST_PROTOCOL, (stream, connection) => this.serve(stream, connection), {
      maxInboundStreams: this.ctx.init.maxInboundStreams,
      runOnLimitedConnection: true
    })
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
    await this.ctx.components.libp2p.unhandle(TRUST_PROTOCOL).catch(() => {})
  }

  private frameContext (remote: PeerId): Parameters<typeof openTrustFrame>[1] {
    return { localPeer: this.ctx.self, remotePeer: remote, replayCache: this.ctx.replayCache, windowMs: this.ctx.init.replayWindowMs, maxSkewMs: this.ctx.init.maxClockSkewMs, now: this.ctx.now() }
  }

  // ------------------------------------------------------------ outbound

  /**
   * Send one initiator message and return the peer's reply, checked like any
   * inbound frame and bound to our message's id. An `error` reply is thrown
   * as its typed error.
   */
  async exchange (remote: PeerId, fields: Initiator, options: TrustAbortOptions & { addresses?: Multiaddr[] }): Promise<HandshakeMessage> {
    const signal = anySignal([options.signal, AbortSignal.timeout(this.ctx.init.timeoutMs)])
    const requestId = randomUUID()
    const frame = sealTrustFrame({ ...fields, to: remote, id: requestId, ts: this.ctx.now() }, this.ctx.signer)
    const id = remote.toString()
    const target = options.addresses !== undefined && options.addresses.length > 0
      ? options.addresses.map(a => a.getComponents().at(-1)?.value === id ? a : a.encapsulate(`/p2p/${id}`))
      : remote
    let stream: Stream
    try {
      stream = await this.ctx.components.libp2p.dialProtocol(target, TRUST_PROTOCOL, { signal, runOnLimitedConnection: true })
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
        reply = openTrustFrame(data.subarray(), this.frameContext(remote))
      } catch (err) {
        throw new HandshakeRefusedError('InvalidReply', `${id} sent an invalid reply: ${(err as Error).message}`)
      }
    } catch (err) {
      stream.abort(err as Error)
      if (err instanceof TrustError) throw err
      throw new PeerUnreachableError(`no answer from ${id}: ${(err as Error).message}`)
    }
    if (reply.initiator || !REPLIES_FOR[fields.type].has(reply.type) || (reply.re !== requestId && !(reply.type === 'error' && reply.re === ''))) {
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
  async tell (remote: PeerId, fields: Initiator, options: TrustAbortOptions): Promise<{ delivered: boolean, error?: string }> {
    try {
      await this.exchange(remote, fields, options)
      return { delivered: true }
    } catch (err) {
      this.ctx.components.logger?.warn({ err, peer: remote.toString(), type: fields.type }, 'trust notice not delivered')
      const code = errorCodeOf(err)
      return { delivered: false, error: `${code != null ? code + ': ' : ''}${(err as Error).message}` }
    }
  }

  // ------------------------------------------------------------ inbound

  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const remote = connection.remotePeer
    const id = remote.toString()
    const { init, components } = this.ctx
    const signal = AbortSignal.timeout(init.timeoutMs)
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    const answer = async (reply: Answer, re: string): Promise<void> => {
      const fields: HandshakeFields = { type: reply.type, to: remote, re, ts: this.ctx.now() }
      if (reply.type === 'error') {
        fields.code = reply.code
        fields.message = reply.message
      }
      await lp.write(sealTrustFrame(fields, this.ctx.signer), { signal })
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
          components.logger?.warn({ peer: id }, 'trust handshakes rate-limited')
          void this.ctx.audit('trust.handshake-refused', id, { code: 'RateLimited' })
        }
        await answer({ type: 'error', code: 'RateLimited', message: `more than ${init.ratePerSecond} handshake messages per second` }, '')
        return
      }
      const mine = this.inFlightPerPeer.get(id) ?? 0
      if (this.inFlight >= init.maxConcurrentHandshakes || mine >= init.maxConcurrentPerPeer) {
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
          message = openTrustFrame(data.subarray(), this.frameContext(remote))
          if (!message.initiator) throw new InvalidArgumentError(`a ${message.type} reply cannot open an exchange`)
        } catch (err) {
          if (signal.aborted) throw err
          const known = err instanceof ProtocolError || err instanceof TrustError
          const code = known ? err.code : 'MalformedFrame'
          const text = known ? err.message : `unreadable frame: ${(err as Error).message}`
          this.counters.refused++
          components.logger?.debug({ peer: id, code, err }, 'trust handshake frame refused')
          await this.ctx.audit('trust.handshake-refused', id, { code, reason: text })
          await answer({ type: 'error', code: code === 'InvalidArgument' ? 'MalformedFrame' : code, message: text }, '')
          return
        }
        let reply: Answer
        try {
          reply = await this.dispatch(message, id, sourceOf(connection.remoteAddr))
        } catch (err) {
          if (!(err instanceof TrustError) && !(err instanceof SuccessionError)) throw err
          this.counters.refused++
          reply = { type: 'error', code: err.code, message: err.message }
        }
        await answer(reply, message.id)
      } finally {
        this.inFlight--
        const left = (this.inFlightPerPeer.get(id) ?? 1) - 1
        if (left <= 0) this.inFlightPerPeer.delete(id)
        else this.inFlightPerPeer.set(id, left)
      }
    } catch (err) {
      components.logger?.debug({ err, peer: id }, 'trust handshake failed')
      stream.abort(err as Error)
    }
  }

  /** Act on an authenticated initiator message; throws a TrustError to refuse it. */
  private async dispatch (message: HandshakeMessage, id: string, source: string): Promise<Answer> {
    switch (message.type) {
      case 'request': return this.onRequest(id, message.reason ?? '', source)
      case 'approve': return this.onApprove(id)
      case 'reject': return this.onReject(id, message.reason)
      case 'revoke': return this.onRevoke(id, message.reason)
      case 'invite': return this.onInvite(id, message.invite ?? '')
      case 'succession': return this.onSuccession(id, message.succession ?? '')
      default: throw new NotRequestedError(`unexpected ${message.type} message`)
    }
  }

  private async onRequest (id: string, reason: string, source: string): Promise<Answer> {
    const { records } = this.ctx
    await records.expire()
    const state = records.latestState(id)
    const now = this.ctx.now()
    switch (state) {
      case 'trusted':
        // it may have lost our approval: answer it again
        return { type: 'approve' }
      case 'rejected':
      case 'revoked':
        await this.ctx.audit('trust.request-refused', id, { code: 'Refused', state, reason })
        throw new RefusedError(state === 'revoked' ? 'this node revoked its trust in you' : 'this node rejected your request')
      case 'pending-outbound': {
        const ours = records.latest(id)
        await records.commit(id, { state: 'trusted', since: now, updatedAt: now, reason: ours?.reason ?? '', direction: 'mutual', via: 'request', note: reason }, 'trust.mutual', { reason })
        return { type: 'approve' }
      }
      case 'pending-inbound': {
        const old = records.latest(id)
        if (old === undefined || old.reason === reason) return { type: 'pending' }
        await records.commit(id, { ...old, reason, updatedAt: now }, 'trust.request-received', { reason, repeat: true })
        records.emitPending(id)
        return { type: 'pending' }
      }
      default: {
        const admission = records.queue.admit(source)
        if (!admission.admitted) {
          await this.ctx.audit('trust.request-refused', id, { code: 'PendingFull', source, reason })
          throw new PendingFullError(`${admission.reason}; try again later`)
        }
        // admission and both queue changes happen before the first await
        // (save() stages synchronously), so concurrent requests
        // cannot all pass the same check
        let evicting: Promise<void> | undefined
        if (admission.evict !== undefined) {
          // the oldest request of the most-represented network makes room
          const evicted = admission.evict
          const previous = records.effectiveState(evicted)
          const since = records.latest(evicted)?.since
          const from = records.queue.sourceFor(evicted)
          evicting = records.save(evicted, undefined).then(async () => {
            await this.ctx.audit('trust.request-evicted', evicted, { since, source: from, for: id })
            records.emitChange(evicted, previous)
          })
        }
        const adding = records.commit(id, { state: 'pending-inbound', since: now, updatedAt: now, reason, direction: 'inbound', via: 'request' }, 'trust.request-received', { reason, source }, source)
        await Promise.all([evicting, adding])
        records.emitPending(id)
        return { type: 'pending' }
      }
    }
  }

  private async onApprove (id: string): Promise<Answer> {
    const { records } = this.ctx
    const state = records.latestState(id)
    if (state === 'trusted') return { type: 'ok' }
    if (state !== 'pending-outbound') {
      await this.ctx.audit('trust.handshake-refused', id, { code: 'NotRequested', type: 'approve' })
      throw new NotRequestedError('this node did not ask you for trust')
    }
    await records.commit(id, records.next(id, 'trusted', {}), 'trust.approved-by-peer', {})
    return { type: 'ok' }
  }

  private async onReject (id: string, reason: string | undefined): Promise<Answer> {
    const { records } = this.ctx
    const state = records.latestState(id)
    if (state === 'rejected-by-peer') return { type: 'ok' }
    if (state !== 'pending-outbound') {
      await this.ctx.audit('trust.handshake-refused', id, { code: 'NotRequested', type: 'reject' })
      throw new NotRequestedError('this node has no request pending with you')
    }
    await records.commit(id, records.next(id, 'rejected-by-peer', reason === undefined ? {} : { note: reason }), 'trust.rejected-by-peer', reason === undefined ? {} : { reason })
    return { type: 'ok' }
  }

  private async onRevoke (id: string, reason: string | undefined): Promise<Answer> {
    const { records } = this.ctx
    const state = records.latestState(id)
    // a peer we hold nothing about has nothing to revoke; one we revoked or
    // rejected stays so (else revoke-then-request would get around a rejection)
    if (state === undefined || state === 'revoked' || state === 'revoked-by-peer' || state === 'rejected') return { type: 'ok' }
    const record = records.revocationRecord(id, 'revoked-by-peer', reason)
    await records.commit(id, record, 'trust.revoked-by-peer', { previous: state, ...(reason === undefined ? {} : { reason }) })
    return { type: 'ok' }
  }

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
   * Act on a succession record `id` presented (a notice, or a `Moved`
   * answer): verify it per this node's policy and, if the old ID is
   * trusted, move its trust to the new ID. Throws `SuccessionError`
   * (audited) when the record is refused; `moved` says whether trust moved.
   */
  async follow (id: string, record: string): Promise<VerifiedSuccession & { moved: boolean }> {
    const { records, components } = this.ctx
    let s
    try {
      s = verifySuccession(record, { acceptOldKeyOnly: this.ctx.init.acceptOldKeyOnlySuccession, now: this.ctx.now() })
      if (s.old !== id && s.new !== id) throw new SuccessionError('MalformedSuccession', 'the succession record is not about the peer that sent it')
    } catch (err) {
      if (err instanceof SuccessionError) await this.ctx.audit('trust.succession-refused', id, { code: err.code, reason: err.message })
      throw err
    }
    const now = this.ctx.now()
    const peers = records.snapshot()
    const current = records.entryOf(s.old)
    // a static (config) peer has no stored record: its trust moves as if it had one
    if (peers[s.old] === undefined && current?.static === true && current.state === 'trusted') {
      peers[s.old] = { state: 'trusted', since: current.since, updatedAt: current.updatedAt, reason: current.reason, direction: 'none', via: 'static' }
    }
    const move = applySuccession(peers, {}, s, now)
    if (move.moved) {
      const previous = { old: records.effectiveState(s.old), new: records.effectiveState(s.new) }
      await records.save(s.new, move.peers[s.new])
      await records.save(s.old, move.peers[s.old])
      records.emitChange(s.new, previous.new)
      records.emitChange(s.old, previous.old)
      try {
        await components.onSuccession?.(s.old, s.new)
      } catch (err) {
        components.logger?.error({ err, old: s.old, new: s.new }, 'onSuccession hook failed')
      }
    }
    await this.ctx.audit(move.audit.type, s.old, move.audit.data)
    return { ...s, moved: move.moved }
  }
}
