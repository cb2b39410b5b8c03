import { randomUUID } from 'node:crypto'
import { errorCodeOf, foreignCode, PeerUnreachableError } from '../errors/index.ts'
import type { ErrorCode, ForeignCode } from '../errors/index.ts'
import { createSigner, decodeMessage, decodeSignedMessage, openEnvelope, ProtocolError, ReplayCache, sealEnvelope } from '../protocol/index.ts'
import { JSON_TYPE } from './body.ts'
import { BusyError, MessagingError, NoSuchServiceError, RemoteMessageError, RequestTimeoutError, ServiceError, ServiceTakenError } from './errors.ts'
import { encodeFrame, FrameDecoder, FrameTooLargeError } from './frames.ts'
import type { MessagingComponents, MessagingInit, InboundMessage, ServiceHandler, SendOptions, Reply, MessagingMetrics } from './index.ts'
import type { GuardedBody } from '../outbox/index.ts'
import type { Message, MessageKind, MessageSigner } from '../protocol/index.ts'
import type { Connection, PeerId, Stream } from '@libp2p/interface'

export const MSG_PROTOCOL = '/agentnet/msg/1.0.0'

/** Tag byte of an unsigned transport acknowledgement frame: field 3, length-delimited */
const ACK_TAG = 0x1a
/** Room for everything in a frame that is not the body */
const FRAME_OVERHEAD_BYTES = 16 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder()

interface PendingRequest {
  to: string
  resolve: (message: Message | 'ack') => void
  reject: (err: Error) => void
}

type CachedReply = { kind: 'response' | 'error', body: Uint8Array, contentType: string }

interface IdempotenceEntry {
  expires: number
  /** bytes of the cached reply body, counted against maxIdempotenceBytes */
  bytes: number
  reply?: CachedReply
  waiters?: Array<(reply: CachedReply) => void>
}

/** A msg stream with one peer: varint-framed, written in order, read by one loop */
class Channel {
  readonly stream: Stream
  readonly remotePeer: PeerId
  readonly remote: string
  closed = false
  /** runs over a relayed (limited) connection: replaced once a direct one opens */
  limited = false
  /** requests received on this stream and not yet answered */
  inFlight = 0
  /** the peer closed its writing side */
  remoteDone = false

  /** Close our side once nothing more can arrive or leave */
  finish (): void {
    this.closed = true
    void this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
  }

  /** A reply was written: close when the peer is done and nothing is left */
  settled (): void {
    this.inFlight--
    if (this.remoteDone && this.inFlight === 0) {
      this.finish()
    }
  }

  constructor (stream: Stream, remotePeer: PeerId) {
    this.stream = stream
    this.remotePeer = remotePeer
    this.remote = remotePeer.toString()
  }

  private queue: Uint8Array[] = []
  private queuedBytes = 0
  private flushScheduled = false
  /** a frame went out in this tick: gather any more until the tick ends */
  private recentlyFlushed = false
  private draining = false
  private nextFlush = Channel.flushPromise()

  private static flushPromise (): PromiseWithResolvers<void> {
    const flush = Promise.withResolvers<void>()
    // nobody may be waiting on a given flush; its failure surfaces on the next write
    flush.promise.catch(() => {})
    return flush
  }

  /**
   * Queue a frame. Frames written in the same tick go out together in one
   * `stream.send` (at most {@link MAX_BATCH_FRAMES} at a time): one yamux
   * frame, one Noise encryption and one socket write for a burst instead of
   * one each. Resolves once the frame is handed to the stream.
   */
  async write (frame: Uint8Array): Promise<void> {
    if (this.closed || this.stream.writeStatus !== 'writable') {
      this.closed = true
      throw new MessagingError('StreamClosed', 'stream to peer closed')
    }
    if (this.queuedBytes > MAX_QUEUED_BYTES) {
      throw new BusyError('too much unsent data queued for this peer')
    }
    const encoded = encodeFrame(frame)
    this.queue.push(encoded)
    this.queuedBytes += encoded.byteLength
    const flushed = this.nextFlush.promise
    if (!this.draining) {
      if (this.queue.length >= MAX_BATCH_FRAMES || (this.queue.length === 1 && !this.flushScheduled && !this.recentlyFlushed)) {
        // a lone frame goes out at once (latency); a burst is gathered until the end of the tick (throughput)
        this.flush()
        this.recentlyFlushed = true
        if (!this.flushScheduled) {
          this.flushScheduled = true
          queueMicrotask(() => {
            this.flushScheduled = false
            this.recentlyFlushed = false
            this.flush()
          })
        }
      } else if (!this.flushScheduled) {
        this.flushScheduled = true
        queueMicrotask(() => {
          this.flushScheduled = false
          this.flush()
        })
      }
    }
    await flushed
  }

  private flush (): void {
    if (this.draining || this.queue.length === 0) {
      return
    }
    const done = this.nextFlush
    this.nextFlush = Channel.flushPromise()
    try {
      let writable = true
      while (this.queue.length > 0 && writable) {
        const batch = this.queue.splice(0, MAX_BATCH_FRAMES)
        let total = 0
        for (const f of batch) total += f.byteLength
        this.queuedBytes -= total
        const buf = batch.length === 1 ? batch[0] as Uint8Array : concatFrames(batch, total)
        writable = this.stream.send(buf)
      }
      done.resolve()
      if (!writable) {
        // backpressure: hold the rest until the stream drains
        this.draining = true
        this.stream.onDrain({ signal: AbortSignal.timeout(30_000) }).then(() => {
          this.draining = false
          this.flush()
        }, (err: Error) => { this.fail(err) })
      }
    } catch (err) {
      done.reject(err)
      this.fail(err as Error)
    }
  }

  private fail (err: Error): void {
    // a dead stream must not be handed out again: the next attempt opens a new one
    this.closed = true
    this.draining = false
    this.queue = []
    this.queuedBytes = 0
    this.nextFlush.reject(err)
    this.nextFlush = Channel.flushPromise()
  }
}

/** Frames joined into one `stream.send` at most */
const MAX_BATCH_FRAMES = 32
/** Unsent bytes one channel may hold before writes are refused with `Busy` */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024

function concatFrames (frames: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let offset = 0
  for (const f of frames) {
    out.set(f, offset)
    offset += f.byteLength
  }
  return out
}

export function encodeAck (id: string): Uint8Array {
  const idBytes = encoder.encode(id)
  // field 3 (length-delimited), varint length (< 128 for any sane id), bytes
  if (idBytes.length > 127) {
    throw new MessagingError('InvalidId', 'request id too long')
  }
  const out = new Uint8Array(2 + idBytes.length)
  out[0] = ACK_TAG
  out[1] = idBytes.length
  out.set(idBytes, 2)
  return out
}

function decodeAck (frame: Uint8Array): string | undefined {
  if (frame.length < 2 || frame[0] !== ACK_TAG || frame[1] !== frame.length - 2) {
    return undefined
  }
  return decoder.decode(frame.subarray(2))
}

export class MessagingService {
  readonly metrics: MessagingMetrics = { sent: 0, received: 0, rejected: {}, retries: 0, duplicates: 0 }
  readonly replayCache: ReplayCache
  private readonly components: MessagingComponents
  private readonly init: Required<Omit<MessagingInit, 'replayCache'>>
  private readonly signer: MessageSigner
  private readonly localBytes: Uint8Array
  private readonly services = new Map<string, ServiceHandler>()
  private readonly pending = new Map<string, PendingRequest>()
  private readonly outbound = new Map<string, Promise<Channel>>()
  private readonly channels = new Set<Channel>()
  private readonly idempotence = new Map<string, IdempotenceEntry>()
  private idempotenceBytes = 0
  private readonly inFlightPerPeer = new Map<string, number>()
  private started = false

  private readonly now: () => number

  constructor (components: MessagingComponents, init: MessagingInit = {}) {
    this.now = components.clock ?? Date.now
    this.components = components
    this.init = {
      maxBodyBytes: init.maxBodyBytes ?? 1024 * 1024,
      replayWindowMs: init.replayWindowMs ?? 60_000,
      maxClockSkewMs: init.maxClockSkewMs ?? 30_000,
      requestTimeoutMs: init.requestTimeoutMs ?? 10_000,
      retries: init.retries ?? 2,
      maxInboundStreams: init.maxInboundStreams ?? 64,
      maxInFlightPerPeer: init.maxInFlightPerPeer ?? 1024,
      maxIdempotenceEntries: init.maxIdempotenceEntries ?? 100_000,
      maxIdempotenceBytes: init.maxIdempotenceBytes ?? 64 * 1024 * 1024
    }
    this.signer = createSigner(components.privateKey)
    this.localBytes = this.signer.from
    this.replayCache = init.replayCache ?? new ReplayCache({ windowMs: this.init.replayWindowMs })
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
      this.attach(stream, connection.remotePeer)
    }, { maxInboundStreams: this.init.maxInboundStreams, runOnLimitedConnection: true })
    this.started = true
  }

  async stop (): Promise<void> {
    this.started = false
    this.components.libp2p.removeEventListener('connection:open', this.onConnectionOpen)
    await this.components.libp2p.unhandle(MSG_PROTOCOL).catch(() => {})
    for (const channel of this.channels) {
      channel.closed = true
      channel.stream.abort(new Error('messaging stopped'))
    }
    this.channels.clear()
    this.outbound.clear()
    for (const pending of this.pending.values()) {
      pending.reject(new MessagingError('Stopped', 'node is stopping'))
    }
    this.pending.clear()
  }

  /** Register a local service; returns the function that unregisters it */
  registerService (name: string, handler: ServiceHandler): () => void {
    if (this.services.has(name)) {
      throw new ServiceTakenError(name)
    }
    this.services.set(name, handler)
    return () => {
      if (this.services.get(name) === handler) {
        this.services.delete(name)
      }
    }
  }

  hasService (name: string): boolean {
    return this.services.has(name)
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

  private async attempts (to: PeerId, service: string, body: GuardedBody, contentType: string, options: SendOptions): Promise<Reply> {
    if (body.byteLength > this.init.maxBodyBytes) {
      throw new MessagingError('BodyTooLarge', `body of ${body.byteLength} bytes exceeds the ${this.init.maxBodyBytes}-byte limit`)
    }
    const kind: MessageKind = options.oneway === true ? 'oneway' : 'request'
    const id = randomUUID()
    const timeoutMs = options.timeoutMs ?? this.init.requestTimeoutMs
    const attempts = (options.retries ?? this.init.retries) + 1
    const deadline = this.now() + timeoutMs
    const remote = to.toString()
    const { promise, resolve, reject } = Promise.withResolvers<Message | 'ack'>()
    this.pending.set(id, { to: remote, resolve, reject })
    // the reply may settle while no attempt is awaiting it
    promise.catch(() => {})
    let lastError: Error | undefined
    let tokenRetried = false
    // finding and dialling the peer may use the whole deadline, not one attempt's share
    const overall = new AbortController()
    const overallTimer = setTimeout(() => { overall.abort(new RequestTimeoutError('request timed out')) }, timeoutMs)
    const dialSignal = options.signal == null ? overall.signal : AbortSignal.any([options.signal, overall.signal])
    try {
      for (let attempt = 0; attempt < attempts; attempt++) {
        const left = deadline - this.now()
        if (left <= 0) {
          break
        }
        if (attempt > 0) {
          this.metrics.retries++
        }
        let timer: ReturnType<typeof setTimeout> | undefined
        try {
          const channel = await this.channelTo(to, dialSignal)
          const token = await this.components.tokenProvider?.tokenFor(to, service, options.signal)
          const frame = sealEnvelope({
            to: to.toMultihash().bytes,
            service,
            kind,
            id,
            ttl: timeoutMs,
            contentType,
            token,
            timestamp: this.now(),
            body
          }, this.signer)
          await channel.write(frame)
          // the attempt's share of the deadline runs from the moment the frame left
          // (a clearable timer: AbortSignal.timeout cannot be cancelled and would fire for every message)
          const attemptController = new AbortController()
          const attemptMs = Math.max(1, Math.ceil((deadline - this.now()) / (attempts - attempt)))
          timer = setTimeout(() => { attemptController.abort(new RequestTimeoutError('attempt timed out')) }, attemptMs)
          const signal = options.signal == null ? attemptController.signal : AbortSignal.any([options.signal, attemptController.signal])
          this.metrics.sent++
          const answer = await raceAbort(promise, signal)
          if (answer === 'ack') {
            return { from: remote, id, kind: 'ack', body: new Uint8Array(0), contentType: '' }
          }
          if (answer.kind === 'error') {
            const { code, message, details } = parseErrorBody(answer.body)
            const err = new RemoteMessageError(code, message, remote, details)
            if (!tokenRetried && this.components.tokenProvider?.isTokenError(code) === true) {
              // the token was refused (expired, revoked, scope): fetch a new one, once
              tokenRetried = true
              await this.components.tokenProvider.renew(to, service, options.signal)
              this.pending.delete(id)
              return await this.attempts(to, service, body, contentType, { ...options, timeoutMs: Math.max(1, deadline - this.now()) })
            }
            throw err
          }
          return { from: remote, id, kind: 'response', body: answer.body, contentType: answer.contentType }
        } catch (err) {
          if (err instanceof RemoteMessageError || options.signal?.aborted === true) {
            throw err
          }
          lastError = err as Error
          this.components.logger?.debug({ id, attempt, err: lastError.message }, 'message attempt failed')
        } finally {
          clearTimeout(timer)
        }
      }
      if (lastError instanceof PeerUnreachableError) {
        // no attempt got as far as a connection: say so, not "timed out"
        throw lastError
      }
      throw new RequestTimeoutError(`no answer from ${remote} for ${service} within ${timeoutMs} ms${lastError != null ? ` (${lastError.message})` : ''}`)
    } finally {
      clearTimeout(overallTimer)
      this.pending.delete(id)
    }
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
      return this.channelTo(peer, signal)
    }
    return ready
  }

  /** Read frames from a stream (either direction) and dispatch them */
  private attach (stream: Stream, remotePeer: PeerId): Channel {
    const channel = new Channel(stream, remotePeer)
    this.channels.add(channel)
    const frames = new FrameDecoder(this.init.maxBodyBytes + FRAME_OVERHEAD_BYTES)
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
      for (const frame of list) {
        this.onFrame(channel, frame)
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
      channel.closed = true
      this.channels.delete(channel)
      const current = this.outbound.get(channel.remote)
      void current?.then(c => { if (c === channel) this.outbound.delete(channel.remote) }, () => {})
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
    let message: Message
    try {
      ({ message } = openEnvelope(frame, {
        localPeer: this.localBytes,
        remotePeer: channel.remotePeer,
        now: this.now(),
        maxBodyBytes: this.init.maxBodyBytes,
        windowMs: this.init.replayWindowMs,
        maxSkewMs: this.init.maxClockSkewMs,
        replayCache: this.replayCache
      }))
    } catch (err) {
      const code = err instanceof ProtocolError ? err.code : 'MalformedFrame'
      this.reject(channel, frame, code, (err as Error).message)
      return
    }
    this.metrics.received++
    switch (message.kind) {
      case 'response':
      case 'error': {
        const pending = this.pending.get(message.inReplyTo)
        this.components.observer?.received(message.service, message.kind, 'ok')
        if (pending?.to === channel.remote) {
          pending.resolve(message)
        }
        return
      }
      case 'request':
      case 'oneway':
        channel.inFlight++
        void this.onRequest(channel, message).finally(() => { channel.settled() })
    }
  }

  /** Count, log and (where the sender can match it) answer a rejected frame */
  private reject (channel: Channel, frame: Uint8Array | undefined, code: string, reason: string, message?: Message): void {
    this.metrics.rejected[code] = (this.metrics.rejected[code] ?? 0) + 1
    // label only what verified: an unverified frame's service name is the attacker's choice
    this.components.observer?.received(message?.service ?? '', message?.kind ?? '', code)
    let parsed = message
    if (parsed == null && frame != null) {
      try {
        parsed = decodeMessage(decodeSignedMessage(frame).payload)
      } catch {}
    }
    this.components.logger?.warn({ peer: channel.remote, id: parsed?.id, service: parsed?.service, code, reason }, 'message rejected')
    this.components.onReject?.({ peer: channel.remote, id: parsed?.id, service: parsed?.service, code, reason })
    // never answer an answer: that could loop between two nodes
    if (parsed == null || parsed.kind === 'response' || parsed.kind === 'error' || parsed.id === '') {
      return
    }
    this.replyTo(channel, parsed, { kind: 'error', body: errorBody(code, reason), contentType: JSON_TYPE })
  }

  private replyTo (channel: Channel, request: Message, reply: CachedReply): void {
    const frame = sealEnvelope({
      to: channel.remotePeer.toMultihash().bytes,
      service: request.service,
      kind: reply.kind,
      id: randomUUID(),
      inReplyTo: request.id,
      contentType: reply.contentType,
      timestamp: this.now(),
      body: reply.body
    }, this.signer)
    channel.write(frame).catch(() => {})
  }

  private async onRequest (channel: Channel, message: Message): Promise<void> {
    const key = `${channel.remote}/${message.id}`
    const existing = this.idempotence.get(key)
    if (existing != null && existing.expires > this.now()) {
      // a retry of a request we have seen: answer it, never run the service twice
      this.metrics.duplicates++
      this.components.observer?.received(message.service, message.kind, 'duplicate')
      if (message.kind === 'oneway') {
        channel.write(encodeAck(message.id)).catch(() => {})
      } else if (existing.reply != null) {
        this.replyTo(channel, message, existing.reply)
      } else {
        const waiters = existing.waiters ??= []
        await new Promise<void>(resolve => {
          waiters.push(reply => {
            this.replyTo(channel, message, reply)
            resolve()
          })
        })
      }
      return
    }
    try {
      // `ttl` is how long the sender waits: a request whose deadline passed is not run
      if (message.ttl > 0 && message.timestamp + message.ttl < this.now()) {
        throw new MessagingError('DeadlineExceeded', `the sender stopped waiting ${this.now() - message.timestamp - message.ttl} ms ago`)
      }
      for (const gate of this.components.inboundGates ?? []) {
        // gates are synchronous today; await only the ones that are not
        const pending = gate.check(message, channel.remotePeer)
        if (pending != null) await pending
      }
      const handler = this.services.get(message.service)
      if (handler == null) {
        throw new NoSuchServiceError(message.service)
      }
      const inFlight = this.inFlightPerPeer.get(channel.remote) ?? 0
      if (inFlight >= this.init.maxInFlightPerPeer) {
        throw new BusyError(`too many requests in flight from ${channel.remote}`)
      }
      this.components.observer?.received(message.service, message.kind, 'ok')
      const entry: IdempotenceEntry = { expires: this.now() + this.init.replayWindowMs, bytes: 0 }
      this.remember(key, entry)
      const inbound: InboundMessage = {
        from: channel.remotePeer,
        id: message.id,
        service: message.service,
        kind: message.kind as 'request' | 'oneway',
        body: message.body,
        contentType: message.contentType
      }
      if (message.kind === 'oneway') {
        // accepted: the service has it; the sender's promise resolves now
        channel.write(encodeAck(message.id)).catch(() => {})
        void Promise.resolve(handler(inbound)).catch(err => {
          this.components.logger?.debug({ err, id: message.id }, 'one-way handler failed')
        })
        return
      }
      this.inFlightPerPeer.set(channel.remote, inFlight + 1)
      let reply: CachedReply
      try {
        const result = await handler(inbound)
        reply = result == null
          ? { kind: 'response', body: new Uint8Array(0), contentType: '' }
          : { kind: 'response', body: result.body, contentType: result.contentType }
        if (reply.body.byteLength > this.init.maxBodyBytes) {
          throw new ServiceError('BodyTooLarge', 'the service answered with a body over the limit')
        }
      } catch (err) {
        const code = errorCodeOf(err) ?? 'ServiceError'
        reply = { kind: 'error', body: errorBody(code, (err as Error).message), contentType: JSON_TYPE }
      } finally {
        const n = (this.inFlightPerPeer.get(channel.remote) ?? 1) - 1
        if (n <= 0) this.inFlightPerPeer.delete(channel.remote)
        else this.inFlightPerPeer.set(channel.remote, n)
      }
      entry.reply = reply
      if (this.idempotence.get(key) === entry) {
        entry.bytes = reply.body.byteLength
        this.idempotenceBytes += entry.bytes
        this.trimIdempotence()
      }
      for (const waiter of entry.waiters ?? []) waiter(reply)
      entry.waiters = undefined
      this.replyTo(channel, message, reply)
    } catch (err) {
      const code = errorCodeOf(err) ?? 'ServiceError'
      this.reject(channel, undefined, code, (err as Error).message, message)
    }
  }

  /**
   * Keep a request's outcome for the replay window. Bounded in entries and
   * bytes, oldest dropped first: a dropped entry only means a late retry of
   * that request runs the service again, never that a replay gets through
   * (the replay cache decides that).
   */
  private remember (key: string, entry: IdempotenceEntry): void {
    this.idempotence.set(key, entry)
    this.trimIdempotence()
  }

  private trimIdempotence (): void {
    const now = this.now()
    for (const [k, v] of this.idempotence) {
      const over = this.idempotence.size > this.init.maxIdempotenceEntries || this.idempotenceBytes > this.init.maxIdempotenceBytes
      if (v.expires > now && !over) break
      this.idempotence.delete(k)
      this.idempotenceBytes -= v.bytes
    }
  }
}

function errorBody (code: string, message: string): Uint8Array {
  return encoder.encode(JSON.stringify({ code, message }))
}

function parseErrorBody (body: Uint8Array): { code: ErrorCode | ForeignCode, message: string, details: Record<string, unknown> } {
  try {
    const parsed = JSON.parse(decoder.decode(body)) as { code?: unknown, message?: unknown }
    const { code, message, ...details } = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : {}
    return {
      code: typeof code === 'string' ? foreignCode(code) : 'RemoteError',
      message: typeof message === 'string' ? message : 'remote error',
      details
    }
  } catch {
    return { code: 'RemoteError', message: 'remote error (unreadable body)', details: {} }
  }
}

async function raceAbort<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    throw signal.reason
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
  })
}

