/**
 * The receiving side's last stage: a verified request or one-way message is
 * answered from the idempotence cache if it is a retry, else passes the
 * inbound gates (trust, tokens, screening, in the order the composition root
 * declares) and runs the local service, bounded per peer.
 */
import { errorCodeOf } from '../errors/index.ts'
import { encodeErrorBody, JSON_TYPE } from './body.ts'
import { ANSWER_WRITE_WAIT_MS, encodeAck } from './channel.ts'
import { BusyError, MessagingError, NoSuchServiceError, ServiceError, ServiceTakenError } from './errors.ts'
import { IdempotenceCache } from './idempotence.ts'
import type { Channel } from './channel.ts'
import type { CachedReply } from './idempotence.ts'
import type { InboundMessage, MessagingComponents, MessagingInit, MessagingMetrics, ServiceHandler } from './index.ts'
import type { Message } from '../protocol/index.ts'

/** How the dispatcher answers: signed replies and rejections are the service's (one place each) */
export interface DispatchAnswers {
  reply: (channel: Channel, request: Message, reply: CachedReply) => void
  reject: (channel: Channel, code: string, reason: string, message: Message) => void
}

type DispatchInit = Required<Pick<MessagingInit, 'maxBodyBytes' | 'replayWindowMs' | 'maxInFlightPerPeer' | 'maxIdempotenceEntries' | 'maxIdempotenceBytes'>>

export class Dispatcher {
  private readonly services = new Map<string, ServiceHandler>()
  private readonly inFlightPerPeer = new Map<string, number>()
  private readonly idempotence: IdempotenceCache
  private readonly components: MessagingComponents
  private readonly init: DispatchInit
  private readonly metrics: MessagingMetrics
  private readonly answer: DispatchAnswers
  private readonly now: () => number

  constructor (components: MessagingComponents, init: DispatchInit, metrics: MessagingMetrics, answer: DispatchAnswers) {
    this.components = components
    this.init = init
    this.metrics = metrics
    this.answer = answer
    this.now = components.clock ?? Date.now
    this.idempotence = new IdempotenceCache({
      windowMs: init.replayWindowMs,
      maxEntries: init.maxIdempotenceEntries,
      maxBytes: init.maxIdempotenceBytes,
      clock: this.now
    })
  }

  /** Register a local service; returns the function that unregisters it */
  register (name: string, handler: ServiceHandler): () => void {
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

  has (name: string): boolean {
    return this.services.has(name)
  }

  /** Run one verified request or one-way message: idempotence, gates, the service, the answer */
  async dispatch (channel: Channel, message: Message): Promise<void> {
    const key = `${channel.remote}/${message.id}`
    const existing = this.idempotence.get(key)
    if (existing != null) {
      // a retry of a request we have seen: answer it, never run the service twice
      this.metrics.duplicates++
      this.components.observer?.received(message.service, message.kind, 'duplicate')
      if (message.kind === 'oneway') {
        channel.write(encodeAck(message.id), ANSWER_WRITE_WAIT_MS).catch(() => {})
      } else if (existing.reply != null) {
        this.answer.reply(channel, message, existing.reply)
      } else {
        const waiters = existing.waiters ??= []
        await new Promise<void>(resolve => {
          waiters.push(reply => {
            this.answer.reply(channel, message, reply)
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
      const entry = this.idempotence.open(key)
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
        channel.write(encodeAck(message.id), ANSWER_WRITE_WAIT_MS).catch(() => {})
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
        reply = { kind: 'error', body: encodeErrorBody(code, (err as Error).message), contentType: JSON_TYPE }
      } finally {
        const n = (this.inFlightPerPeer.get(channel.remote) ?? 1) - 1
        if (n <= 0) this.inFlightPerPeer.delete(channel.remote)
        else this.inFlightPerPeer.set(channel.remote, n)
      }
      this.idempotence.settle(key, entry, reply)
      this.answer.reply(channel, message, reply)
    } catch (err) {
      const code = errorCodeOf(err) ?? 'ServiceError'
      this.answer.reject(channel, code, (err as Error).message, message)
    }
  }
}
