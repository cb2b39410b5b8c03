/**
 * The messaging service: sending (attempts, retries, token renewal) and
 * receiving (verify, gates, idempotence, dispatch to a local service) over
 * {@link Channel}s. Frames are verified in one place, `openEnvelopeAsync`
 * (the checks of `openEnvelope`, the signature maybe on a worker thread), and
 * rejected in one place, `MessagingService.reject`; verified requests are run by
 * the {@link Dispatcher} (`dispatch.ts`).
 *
 * Longer than 450 lines on purpose: the send loop and the verify/reject path
 * share the pending-request map, the channels and the peers' replay floors;
 * the parts that own no such state (framing, idempotence, dispatch, stranger
 * pressure, clock watch, rejection log) are their own files.
 */
import { randomUUID } from 'node:crypto'
import { anySignal } from 'any-signal'
import type { ClearableSignal } from 'any-signal'
import { errorCodeOf, PeerUnreachableError } from '../errors/index.ts'
import { createCryptoPool, createSigner, decodeMessage, decodeSignedMessage, FutureMessageError, openEnvelopeAsync, ProtocolError, ReplayCache, RestartedAtError, sealEnvelopeAsync, StaleMessageError } from '../protocol/index.ts'
import { decodeErrorBody, encodeErrorBody, JSON_TYPE } from './body.ts'
import { ANSWER_WRITE_WAIT_MS, Channel, decodeAck, FRAME_OVERHEAD_BYTES, raceDeadline } from './channel.ts'
import { ClockSkewError, MessagingError, RemoteMessageError, RequestTimeoutError } from './errors.ts'
import { ClockWatch } from './clock-watch.ts'
import { PeerFloors } from './peer-floors.ts'
import { RejectLog } from './reject-log.ts'
import { InboundPressure } from './pressure.ts'
import { MESSAGING_DEFAULTS } from './constants.ts'
import type { MessagingSettings } from './constants.ts'
import { FrameDecoder, FrameTooLargeError } from './frames.ts'
import { Dispatcher } from './dispatch.ts'
import type { CachedReply } from './idempotence.ts'
import type { MessagingComponents, MessagingInit, ServiceHandler, SendOptions, Reply, MessagingMetrics } from './index.ts'
import type { GuardedBody } from '../outbox/index.ts'
import type { CryptoPool, Message, MessageKind, MessageSigner } from '../protocol/index.ts'
import type { Connection, PeerId, Stream } from '@libp2p/interface'

export const MSG_PROTOCOL = '/agentnet/msg/2.0.0'

interface PendingRequest {
  to: string
  resolve: (message: Message | 'ack') => void
  reject: (err: Error) => void
}

/** Second chances one `send` already used (each is taken at most once) */
interface Retried {
  token?: boolean
  restart?: boolean
}

/** Longest timer Node keeps (2^31 - 1 ms) */
const MAX_TIMER_MS = 2 ** 31 - 1
/** A `StaleMessage`/`FutureMessage` answer whose clock differs from ours by less than this is plain delay, not skew */
const MIN_SKEW_MS = 1000
const attemptTimedOut = (): Error => new RequestTimeoutError('attempt timed out')

export class MessagingService {
  readonly metrics: MessagingMetrics = { sent: 0, received: 0, rejected: {}, retries: 0, duplicates: 0 }
  readonly replayCache: ReplayCache
  private readonly components: MessagingComponents
  private readonly init: MessagingSettings
  private readonly signer: MessageSigner
  /** Ed25519 verify and sign, on worker threads when that pays (see `src/protocol/crypto-pool.ts`) */
  readonly cryptoPool: CryptoPool
  private readonly localBytes: Uint8Array
  private readonly pending = new Map<string, PendingRequest>()
  private readonly outbound = new Map<string, Promise<Channel>>()
  /** the settled entries of `outbound`, so a message on an open stream needs no await and no dial signal */
  private readonly ready = new Map<string, Channel>()
  private readonly channels = new Set<Channel>()
  private readonly dispatcher: Dispatcher
  /** After-restart floors peers told us (`RestartedAt`): our envelopes to them are stamped past it */
  private readonly peerFloors: PeerFloors
  readonly clockWatch: ClockWatch
  private readonly rejectLog: RejectLog
  private readonly pressure: InboundPressure
  private started = false
  private readonly now: () => number

  constructor (components: MessagingComponents, init: MessagingInit = {}) {
    this.now = components.clock ?? Date.now
    this.components = components
    // explicitly undefined options take the default too
    const given = Object.fromEntries(Object.entries(init).filter(([key, value]) => value !== undefined && key !== 'replayCache')) as Partial<MessagingSettings>
    this.init = { ...MESSAGING_DEFAULTS, ...given }
    this.cryptoPool = createCryptoPool({ workers: this.init.cryptoWorkers, offloadUtilization: this.init.cryptoOffloadUtilization })
    this.signer = createSigner(components.privateKey)
    this.localBytes = this.signer.from
    this.replayCache = init.replayCache ?? new ReplayCache({ windowMs: this.init.replayWindowMs })
    this.peerFloors = new PeerFloors(this.now)
    this.rejectLog = new RejectLog(components.logger, this.now)
    this.pressure = new InboundPressure({ untrustedInFlightBytes: this.init.untrustedInFlightBytes, untrustedInFlightRequests: this.init.untrustedInFlightRequests }, (channel, frame) => { this.onFrame(channel, frame) })
    this.clockWatch = new ClockWatch({ warnAboveMs: Math.max(5000, this.init.maxClockSkewMs / 2), now: this.now, logger: components.logger })
    this.dispatcher = new Dispatcher(components, this.init, this.metrics, {
      reply: (channel, request, reply) => { this.replyTo(channel, request, reply) },
      reject: (channel, code, reason, message) => { this.reject(channel, undefined, code, reason, message) }
    })
  }

  /** A direct connection to a peer we reach through a relay: move our stream onto it */
  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    if (connection.limits != null) {
      return
    }
    const key = connection.remotePeer.toString()
    void this.outbound.get(key)?.then(channel => {
      if (channel.limited && !channel.closed) {
        this.components.logger?.debug({ peer: key }, 'direct connection appeared; leaving the relayed stream')
        this.outbound.delete(key)
        this.ready.delete(key)
        channel.closed = true
        // in-flight requests on the old stream still get their answers on it
        void channel.stream.close().catch(() => {})
      }
    }, () => {})
  }

  async start (): Promise<void> {
    if (this.started) {
      return
    }
    this.components.libp2p.addEventListener('connection:open', this.onConnectionOpen)
    await this.components.libp2p.handle(MSG_PROTOCOL, (stream, connection) => {
      this.attach(stream, connection.remotePeer, true)
    }, { maxInboundStreams: this.init.maxInboundStreams, runOnLimitedConnection: true })
    this.cryptoPool.start()
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
    this.rejectLog.summarise()
    this.components.libp2p.removeEventListener('connection:open', this.onConnectionOpen)
    await this.components.libp2p.unhandle(MSG_PROTOCOL).catch(() => {})
    for (const channel of this.channels) {
      channel.closed = true
      channel.stream.abort(new Error('messaging stopped'))
    }
    this.channels.clear()
    this.outbound.clear()
    this.ready.clear()
    this.pressure.clear()
    for (const pending of this.pending.values()) {
      pending.reject(new MessagingError('Stopped', 'node is stopping'))
    }
    this.pending.clear()
    await this.cryptoPool.stop()
  }

  /** Register a local service; returns the function that unregisters it */
  registerService (name: string, handler: ServiceHandler): () => void {
    return this.dispatcher.register(name, handler)
  }

  hasService (name: string): boolean {
    return this.dispatcher.has(name)
  }

  /**
   * Send a request (resolves with the reply) or a one-way message (resolves
   * once the receiving node accepted it). A timed-out attempt is re-sent with
   * the same request ID and a fresh nonce and timestamp, so the receiver can
   * answer it from its idempotence cache instead of running the service twice.
   */
  async send (to: PeerId, service: string, body: GuardedBody, contentType: string, options: SendOptions = {}): Promise<Reply> {
    const observer = this.components.observer
    if (observer == null) return this.attempts(to, service, body, contentType, options)
    const kind = options.oneway === true ? 'oneway' : 'request'
    const started = performance.now()
    try {
      const reply = await this.attempts(to, service, body, contentType, options)
      observer.sent(service, kind, 'ok', reply.kind === 'response' ? (performance.now() - started) / 1000 : undefined)
      return reply
    } catch (err) {
      observer.sent(service, kind, errorCodeOf(err) ?? 'Error', err instanceof RemoteMessageError ? (performance.now() - started) / 1000 : undefined)
      throw err
    }
  }

  private async attempts (to: PeerId, service: string, body: GuardedBody, contentType: string, options: SendOptions, retried: Retried = {}): Promise<Reply> {
    if (body.byteLength > this.init.maxBodyBytes) {
      throw new MessagingError('BodyTooLarge', `body of ${body.byteLength} bytes exceeds the ${this.init.maxBodyBytes}-byte limit`)
    }
    const kind: MessageKind = options.oneway === true ? 'oneway' : 'request'
    const id = randomUUID()
    const timeoutMs = options.timeoutMs ?? this.init.requestTimeoutMs
    if (!(timeoutMs >= 1 && timeoutMs <= MAX_TIMER_MS)) {
      // setTimeout turns anything above 2^31 - 1 ms into 1 ms
      throw new MessagingError('InvalidArgument', `timeoutMs must be from 1 to ${MAX_TIMER_MS} ms`)
    }
    const attempts = (options.retries ?? this.init.retries) + 1
    const deadline = this.now() + timeoutMs
    const remote = to.toString()
    const { promise, resolve, reject } = Promise.withResolvers<Message | 'ack'>()
    this.pending.set(id, { to: remote, resolve, reject })
    // the reply may settle while no attempt is awaiting it
    promise.catch(() => {})
    let lastError: Error | undefined
    // finding and dialling the peer may use the whole deadline, not one attempt's share; made only when a
    // stream must be opened, not for every message on an open one
    let dial: { signal: ClearableSignal, timer: ReturnType<typeof setTimeout> } | undefined
    const dialSignal = (): AbortSignal => {
      if (dial === undefined) {
        const overall = new AbortController()
        const timer = setTimeout(() => { overall.abort(new RequestTimeoutError('request timed out')) }, Math.max(1, deadline - this.now()))
        // any-signal, not AbortSignal.any: the latter keeps ~176 B on the agent's long-lived signal per call (nodejs/node#54614)
        dial = { signal: anySignal([options.signal, overall.signal]), timer }
      }
      return dial.signal
    }
    try {
      for (let attempt = 0; attempt < attempts; attempt++) {
        const left = deadline - this.now()
        if (left <= 0) {
          break
        }
        if (attempt > 0) {
          this.metrics.retries++
        }
        try {
          const channel = this.openChannel(remote) ?? await this.channelTo(to, dialSignal())
          const token = await this.components.tokenProvider?.tokenFor(to, service, options.signal)
          const frame = await sealEnvelopeAsync({
            to: to.toMultihash().bytes,
            service,
            kind,
            id,
            ttl: timeoutMs,
            contentType,
            token,
            timestamp: this.peerFloors.stampFor(remote),
            body
          }, this.signer, this.cryptoPool)
          // a full queue to this peer holds the request back (up to the deadline), rather than fail the attempt at once
          await channel.write(frame, deadline - this.now())
          // the attempt's share of the deadline runs from the moment the frame left
          const attemptMs = Math.max(1, Math.ceil((deadline - this.now()) / (attempts - attempt)))
          this.metrics.sent++
          const answer = await raceDeadline(promise, attemptMs, attemptTimedOut, options.signal)
          if (answer === 'ack') {
            return { from: remote, id, kind: 'ack', body: new Uint8Array(0), contentType: '' }
          }
          if (answer.kind === 'error') {
            const { code, message, details, floor } = decodeErrorBody(answer.body)
            const rest = { ...options, timeoutMs: Math.max(1, deadline - this.now()) }
            if (retried.token !== true && this.components.tokenProvider?.isTokenError(code) === true) {
              // the token was refused (expired, revoked, scope): fetch a new one, once
              await this.components.tokenProvider.renew(to, service, options.signal)
              this.pending.delete(id)
              return await this.attempts(to, service, body, contentType, rest, { ...retried, token: true })
            }
            if (retried.restart !== true && code === 'RestartedAt' && floor !== undefined && this.peerFloors.learn(remote, floor)) {
              // the peer restarted after a crash: nothing ran; re-seal once, stamped past its floor
              this.components.logger?.debug({ peer: remote, floor }, 'peer restarted; re-sending past its replay floor')
              this.pending.delete(id)
              return await this.attempts(to, service, body, contentType, rest, { ...retried, restart: true })
            }
            if (code === 'StaleMessage' || code === 'FutureMessage' || code === 'DeadlineExceeded') {
              // the refusal is signed and stamped with the peer's clock: that is the offset
              // (a deadline passed on arrival is skew too, unless the clocks agree)
              const offset = answer.timestamp - this.now()
              if (Math.abs(offset) >= MIN_SKEW_MS) throw new ClockSkewError(offset, remote, message)
            }
            throw new RemoteMessageError(code, message, remote, details)
          }
          return { from: remote, id, kind: 'response', body: answer.body, contentType: answer.contentType }
        } catch (err) {
          if (err instanceof RemoteMessageError || options.signal?.aborted === true) {
            throw err
          }
          lastError = err as Error
          this.components.logger?.debug({ id, attempt, err: lastError.message }, 'message attempt failed')
        }
      }
      if (lastError instanceof PeerUnreachableError) {
        // no attempt got as far as a connection: say so, not "timed out"
        throw lastError
      }
      throw new RequestTimeoutError(`no answer from ${remote} for ${service} within ${timeoutMs} ms${lastError != null ? ` (${lastError.message})` : ''}`)
    } finally {
      if (dial !== undefined) {
        clearTimeout(dial.timer)
        dial.signal.clear()
      }
      this.pending.delete(id)
    }
  }

  /** The open outbound stream to `peer`, when there is one ready: the path of every message but a peer's first */
  private openChannel (peer: string): Channel | undefined {
    const channel = this.ready.get(peer)
    if (channel === undefined || !channel.closed) return channel
    this.ready.delete(peer)
    return undefined
  }

  private async channelTo (peer: PeerId, signal: AbortSignal): Promise<Channel> {
    const key = peer.toString()
    let channel = this.outbound.get(key)
    if (channel == null) {
      channel = (async () => {
        const connection = this.components.connect != null
          ? await this.components.connect(peer, signal)
          : await this.components.libp2p.dial(peer, { signal })
        const stream = await connection.newStream(MSG_PROTOCOL, { signal, runOnLimitedConnection: true })
        const channel = this.attach(stream, peer)
        channel.limited = connection.limits != null
        return channel
      })()
      this.outbound.set(key, channel)
      channel.catch(() => { this.outbound.delete(key) })
    }
    const ready = await channel
    if (ready.closed) {
      this.outbound.delete(key)
      this.ready.delete(key)
      return this.channelTo(peer, signal)
    }
    this.ready.set(key, ready)
    return ready
  }

  /** Read frames from a stream (either direction) and dispatch them */
  private attach (stream: Stream, remotePeer: PeerId, inbound = false): Channel {
    const channel = new Channel(stream, remotePeer)
    this.channels.add(channel)
    const preferred = this.components.isPreferred
    // a stranger's idle inbound stream is closed (10,000 idle streams doubled memory); the peer opens a new one when it needs one
    const idle = inbound && preferred != null && !preferred(remotePeer)
      ? { timeoutMs: this.init.untrustedIdleStreamMs, onIdle: () => { if (channel.inFlight === 0) { channel.closed = true; stream.abort(new MessagingError('StreamClosed', 'idle stream of an untrusted peer')) } } }
      : undefined
    const frames = new FrameDecoder(this.init.maxBodyBytes + FRAME_OVERHEAD_BYTES, {
      timeoutMs: this.init.frameTimeoutMs,
      onTimeout: () => {
        this.reject(channel, undefined, 'MalformedFrame', `a frame was not completed within ${this.init.frameTimeoutMs} ms`)
        channel.closed = true
        stream.abort(new MessagingError('MalformedFrame', 'frame not completed in time'))
      }
    }, idle)
    const onMessage = (evt: { data: Parameters<FrameDecoder['push']>[0] }): void => {
      let list: Uint8Array[]
      try {
        list = frames.push(evt.data)
      } catch (err) {
        this.reject(channel, undefined, err instanceof FrameTooLargeError ? 'BodyTooLarge' : 'MalformedFrame', (err as Error).message)
        channel.closed = true
        stream.abort(err as Error)
        return
      }
      // strangers' frames wait their turn (pressure.ts); trusted peers' are handled at once
      const deferred = preferred != null && !preferred(remotePeer)
      for (const frame of list) {
        if (!deferred) {
          this.onFrame(channel, frame)
        } else if (!this.pressure.defer(channel, frame)) {
          this.reject(channel, frame, 'Busy', 'this node is busy with traffic from untrusted peers; retry later')
        }
      }
    }
    stream.addEventListener('message', onMessage)
    stream.addEventListener('remoteCloseWrite', () => {
      // the peer sends nothing more on this stream: answer what is in flight, then close our side
      channel.remoteDone = true
      if (channel.inFlight === 0) {
        channel.finish()
      }
    })
    stream.addEventListener('close', () => {
      frames.close()
      channel.closed = true
      this.channels.delete(channel)
      const current = this.outbound.get(channel.remote)
      void current?.then(c => { if (c === channel) this.outbound.delete(channel.remote) }, () => {})
      if (this.ready.get(channel.remote) === channel) this.ready.delete(channel.remote)
    })
    return channel
  }

  private onFrame (channel: Channel, frame: Uint8Array): void {
    const ackId = decodeAck(frame)
    if (ackId !== undefined) {
      const pending = this.pending.get(ackId)
      if (pending?.to === channel.remote) {
        pending.resolve('ack')
      }
      return
    }
    // the frame counts as in flight from here, so the stream is not closed while it is verified
    channel.inFlight++
    const now = this.now()
    const opened = openEnvelopeAsync(frame, {
      localPeer: this.localBytes,
      remotePeer: channel.remotePeer,
      now,
      maxBodyBytes: this.init.maxBodyBytes,
      windowMs: this.init.replayWindowMs,
      maxSkewMs: this.init.maxClockSkewMs,
      replayCache: this.replayCache,
      cryptoPool: this.cryptoPool,
      // an answer to our own pending request is let through whatever its timestamp (see README "Clock skew")
      expectedReply: m => this.pending.get(m.inReplyTo)?.to === channel.remote
    })
    // a failure waits in the chain for the frames before it: mark it handled now
    opened.catch(() => {})
    // nothing is acted on before it verified, and frames are acted on in arrival order
    channel.handled = channel.handled.then(async () => opened).then(({ message }) => {
      this.clockWatch.observe(channel.remote, message.timestamp - now)
      this.accept(channel, message)
    }, (err: unknown) => {
      if (err instanceof StaleMessageError || err instanceof FutureMessageError) {
        // checked after the signature: the peer's own clock reading
        this.clockWatch.observe(channel.remote, err.timestamp - err.now)
      }
      const code = err instanceof ProtocolError ? err.code : 'MalformedFrame'
      this.reject(channel, frame, code, (err as Error).message, undefined, err instanceof RestartedAtError ? err.floor : undefined)
      channel.settled()
    }).catch((err: unknown) => {
      // keep the chain fulfilled: a failure here must not be taken for the next frame's
      this.components.logger?.error({ peer: channel.remote, err: (err as Error).message }, 'handling a verified frame failed')
    })
  }

  /** A frame that passed `openEnvelope`: an answer to one of ours, or a request for a local service */
  private accept (channel: Channel, message: Message): void {
    this.metrics.received++
    switch (message.kind) {
      case 'response':
      case 'error': {
        const pending = this.pending.get(message.inReplyTo)
        this.components.observer?.received(message.service, message.kind, 'ok')
        if (pending?.to === channel.remote) {
          pending.resolve(message)
        }
        channel.settled()
        return
      }
      case 'request':
      case 'oneway': {
        // in flight since it arrived (onFrame); settled when the dispatcher is done
        const bounded = this.components.isPreferred != null && !this.components.isPreferred(channel.remotePeer)
        const bytes = message.body.byteLength
        if (bounded && !this.pressure.take(channel.remote, bytes)) {
          this.reject(channel, undefined, 'Busy', 'too many requests or bytes in flight from this untrusted peer; retry later', message)
          channel.settled()
          return
        }
        void this.dispatcher.dispatch(channel, message).finally(() => {
          if (bounded) this.pressure.release(channel.remote, bytes)
          channel.settled()
        })
      }
    }
  }

  /** Count, log and (where the sender can match it) answer a rejected frame */
  private reject (channel: Channel, frame: Uint8Array | undefined, code: string, reason: string, message?: Message, floor?: number): void {
    this.metrics.rejected[code] = (this.metrics.rejected[code] ?? 0) + 1
    // label only what verified: an unverified frame's service name is the attacker's choice
    this.components.observer?.received(message?.service ?? '', message?.kind ?? '', code)
    let parsed = message
    if (parsed == null && frame != null) {
      try {
        parsed = decodeMessage(decodeSignedMessage(frame).payload)
      } catch {}
    }
    this.rejectLog.log({ peer: channel.remote, id: parsed?.id, service: parsed?.service, code, reason })
    this.components.onReject?.({ peer: channel.remote, id: parsed?.id, service: parsed?.service, code, reason })
    // never answer an answer: that could loop between two nodes
    if (parsed == null || parsed.kind === 'response' || parsed.kind === 'error' || parsed.id === '') {
      return
    }
    this.replyTo(channel, parsed, { kind: 'error', body: encodeErrorBody(code, reason, floor), contentType: JSON_TYPE })
  }

  private replyTo (channel: Channel, request: Message, reply: CachedReply): void {
    // in flight until written: signing may end on a worker thread, and the stream must stay open for it
    channel.inFlight++
    sealEnvelopeAsync({
      to: channel.remotePeer.toMultihash().bytes,
      service: request.service,
      kind: reply.kind,
      id: randomUUID(),
      inReplyTo: request.id,
      contentType: reply.contentType,
      timestamp: this.now(),
      body: reply.body
    }, this.signer, this.cryptoPool)
      // a reply waits for room rather than be dropped: the requester would wait out its attempt and send again
      .then(async frame => { await channel.write(frame, ANSWER_WRITE_WAIT_MS) })
      .catch((err: Error) => {
        this.components.logger?.warn({ peer: channel.remote, inReplyTo: request.id, err: err.message }, 'could not write a reply; the requester will time out and may retry')
      })
      .finally(() => { channel.settled() })
  }
}
