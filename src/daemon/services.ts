import { randomUUID } from 'node:crypto'
import { foreignCode } from '../errors/index.ts'
import { MessagingError, ServiceError } from '../messaging/index.ts'
import { invalidParams, RateLimitedLog } from '../ipc/index.ts'
import { bodyForClient, bodyFromParams, queuedSizeOf } from './bodies.ts'
import type { AdmissionRequest, AgentInbound, AgentReply } from '../agent/index.ts'
import type { NodeHost } from './host.ts'
import type { IpcSession } from '../ipc/index.ts'
import type { Logger } from 'pino'

/** How long a local service may take when the sender set no deadline */
const DEFAULT_SERVICE_TIMEOUT_MS = 60_000
/** Requests delivered to one client and not yet answered */
const MAX_PENDING_PER_SESSION = 10_000

/** An admitted message is expected at `deliver` within this time; a reservation older is freed */
const RESERVATION_TTL_MS = 60_000

export interface DeliveryLimits {
  /** Output held for one client: queued bytes plus admitted, not yet written messages */
  maxClientBufferBytes: number
  /** The same for all clients together */
  maxTotalBufferBytes: number
  /** How long a message waits for room before it is refused */
  deliveryWaitMs: number
}

export interface LocalServicesInit {
  limits: DeliveryLimits
  /** Output queued for all clients now (the IPC server's figure) */
  totalQueued: () => number
  logger?: Logger
}

interface Reservation {
  session: IpcSession
  bytes: number
  at: number
}

interface PendingDelivery {
  session: IpcSession
  resolve: (reply: AgentReply) => void
  reject: (err: Error) => void
}

/**
 * Bridges services registered by local IPC clients to the messaging layer:
 * inbound messages become `msg.received` notifications, `msg.reply` answers
 * them. A service name belongs to one connection and is freed when it
 * disconnects; pending requests of a disconnected client fail at once.
 *
 * What the node holds for a client is bounded: a message is admitted (before
 * the sender's node acknowledges it) only while the client's queued output
 * plus the messages already admitted for it stay under
 * `maxClientBufferBytes`; otherwise it waits up to `deliveryWaitMs` for the
 * agent to read, then is refused to the sender with `AgentNotReading` (the
 * agent read nothing meanwhile) or `Busy`. Nothing admitted is dropped.
 */
export class LocalServices {
  private readonly host: NodeHost
  private readonly init: LocalServicesInit
  private readonly deliveries = new Map<string, PendingDelivery>()
  private readonly owners = new Map<string, { session: IpcSession, unregister: () => void }>()
  private readonly pendingPerSession = new Map<IpcSession, number>()
  private readonly reservations = new Map<string, Reservation>()
  private readonly reservedPerSession = new Map<IpcSession, number>()
  private reservedTotal = 0
  private readonly rateLog = new RateLimitedLog()

  constructor (host: NodeHost, init: LocalServicesInit) {
    this.host = host
    this.init = init
    // a live key rotation replaced the node: the clients' services move to the new one
    host.on('replaced', node => {
      for (const [service, owner] of this.owners) {
        owner.unregister = node.registerService(service, async (message) => this.deliver(owner.session, message), {
          admit: async (message) => { await this.admit(owner.session, service, message) }
        })
      }
    })
  }

  register (session: IpcSession, service: string): void {
    const owner = this.owners.get(service)
    if (owner?.session === session) {
      return
    }
    const unregister = this.host.node.registerService(service, async (message) => this.deliver(session, message), {
      admit: async (message) => { await this.admit(session, service, message) }
    })
    this.owners.set(service, { session, unregister })
    session.events.once('close', () => { this.unregister(session, service) })
  }

  unregister (session: IpcSession, service: string): boolean {
    const owner = this.owners.get(service)
    if (owner == null || owner.session !== session) {
      return false
    }
    owner.unregister()
    this.owners.delete(service)
    if (![...this.owners.values()].some(o => o.session === session)) {
      for (const [id, pending] of this.deliveries) {
        if (pending.session === session) {
          pending.reject(new ServiceError('ServiceUnavailable', 'the agent serving this service disconnected'))
          this.deliveries.delete(id)
        }
      }
      for (const [key, reservation] of this.reservations) {
        if (reservation.session === session) this.release(key)
      }
    }
    return true
  }

  /** Answer a delivered request: `{id, body | bodyBase64}`, a binary frame, or `{id, error: {code?, message}}` */
  reply (session: IpcSession, params: Record<string, unknown>, raw?: Uint8Array): void {
    const id = params.id
    if (typeof id !== 'string') {
      throw invalidParams('params.id must be the id of a msg.received notification')
    }
    const pending = this.deliveries.get(id)
    if (pending == null || pending.session !== session) {
      throw new MessagingError('UnknownDelivery', `no pending request with id ${JSON.stringify(id)} (answered already, timed out, or one-way)`)
    }
    const error = params.error
    if (error != null) {
      const e = typeof error === 'object' ? error as { code?: unknown, message?: unknown } : { message: String(error) }
      this.deliveries.delete(id)
      // the agent's own error: its text leaves through the outbox like any reply
      pending.resolve({ error: { code: typeof e.code === 'string' ? foreignCode(e.code) : 'ServiceError', message: typeof e.message === 'string' ? e.message : 'the service failed' } })
      return
    }
    const encoded = bodyFromParams(params, raw)
    this.deliveries.delete(id)
    pending.resolve(encoded)
  }

  /** Room for `message` in the client's buffer, or a typed refusal; reserves the room until `deliver` */
  private async admit (session: IpcSession, service: string, message: AdmissionRequest): Promise<void> {
    const { maxClientBufferBytes, maxTotalBufferBytes, deliveryWaitMs } = this.init.limits
    const need = queuedSizeOf(session, message.bodyBytes)
    const clientFits = (): boolean => {
      const held = session.queuedBytes + (this.reservedPerSession.get(session) ?? 0)
      // a body larger than the bound alone still gets through to an idle client
      return held === 0 || held + need <= maxClientBufferBytes
    }
    const totalFits = (): boolean => this.init.totalQueued() + this.reservedTotal + need <= maxTotalBufferBytes
    this.sweepReservations()
    if (!(clientFits() && totalFits())) {
      const drainedBefore = session.drainedBytes
      const room = await this.waitForRoom(session, () => clientFits() && totalFits(), deliveryWaitMs)
      if (session.closed) throw new ServiceError('ServiceUnavailable', 'the agent serving this service disconnected')
      if (!room) {
        const notReading = session.drainedBytes === drainedBefore && !clientFits()
        const code = notReading ? 'AgentNotReading' : 'Busy'
        this.rateLog.warn(this.init.logger, `${code}/${session.id}`, {
          code, session: session.id, service, from: message.from.toString(), queuedBytes: session.queuedBytes, reservedBytes: this.reservedPerSession.get(session) ?? 0, totalQueuedBytes: this.init.totalQueued()
        }, notReading ? 'local agent does not read its socket: inbound message refused' : 'local agents\' buffers are full: inbound message refused')
        throw new ServiceError(code, notReading
          ? `the agent serving ${JSON.stringify(service)} is not reading its messages; nothing was delivered`
          : 'the node holds too much for its local agents; retry later')
      }
    }
    const key = `${message.from.toString()}/${message.id}`
    this.release(key)
    this.reservations.set(key, { session, bytes: need, at: Date.now() })
    this.reservedPerSession.set(session, (this.reservedPerSession.get(session) ?? 0) + need)
    this.reservedTotal += need
  }

  private async waitForRoom (session: IpcSession, fits: () => boolean, waitMs: number): Promise<boolean> {
    if (waitMs <= 0) return fits()
    return new Promise<boolean>(resolve => {
      const done = (value: boolean): void => {
        clearTimeout(timer)
        session.events.off('drain', check)
        session.events.off('close', check)
        resolve(value)
      }
      const check = (): void => {
        if (session.closed) done(false)
        else if (fits()) done(true)
      }
      const timer = setTimeout(() => { done(fits()) }, waitMs)
      session.events.on('drain', check)
      session.events.on('close', check)
    })
  }

  private release (key: string): void {
    const reservation = this.reservations.get(key)
    if (reservation == null) return
    this.reservations.delete(key)
    const left = (this.reservedPerSession.get(reservation.session) ?? 0) - reservation.bytes
    if (left <= 0) this.reservedPerSession.delete(reservation.session)
    else this.reservedPerSession.set(reservation.session, left)
    this.reservedTotal -= reservation.bytes
    // someone may be waiting for this room
    reservation.session.events.emit('drain')
  }

  /** Admitted messages that never reached `deliver` (refused after admission) free their room */
  private sweepReservations (): void {
    const cutoff = Date.now() - RESERVATION_TTL_MS
    for (const [key, reservation] of this.reservations) {
      if (reservation.at > cutoff && !reservation.session.closed) break
      this.release(key)
    }
  }

  private async deliver (session: IpcSession, message: AgentInbound): Promise<AgentReply | undefined> {
    const delivery = randomUUID()
    const { fields, raw } = bodyForClient(session, message.body, message.contentType)
    const notification = {
      id: delivery,
      requestId: message.id,
      from: message.from.toString(),
      service: message.service,
      kind: message.kind,
      ...fields,
      ...(message.screening == null ? {} : { screening: message.screening })
    }
    const key = `${notification.from}/${message.id}`
    if (message.kind === 'oneway') {
      const written = session.notify('msg.received', notification, raw)
      this.release(key)
      if (!written) {
        // admitted and acknowledged, then the client went away before it could be written: say so
        this.init.logger?.warn({ session: session.id, service: message.service, from: notification.from, id: message.id }, 'one-way message acknowledged but its agent disconnected before delivery')
      }
      return undefined
    }
    const pendingCount = this.pendingPerSession.get(session) ?? 0
    if (pendingCount >= MAX_PENDING_PER_SESSION) {
      this.release(key)
      throw new ServiceError('Busy', 'the agent has too many unanswered requests')
    }
    const { promise, resolve, reject } = Promise.withResolvers<AgentReply>()
    this.deliveries.set(delivery, { session, resolve, reject })
    const written = session.notify('msg.received', notification, raw)
    this.release(key)
    if (!written) {
      this.deliveries.delete(delivery)
      throw new ServiceError('ServiceUnavailable', 'the agent serving this service disconnected')
    }
    this.pendingPerSession.set(session, pendingCount + 1)
    const timer = setTimeout(() => {
      if (this.deliveries.delete(delivery)) {
        reject(new ServiceError('ServiceTimeout', 'the agent did not answer in time'))
      }
    }, DEFAULT_SERVICE_TIMEOUT_MS)
    try {
      return await promise
    } finally {
      clearTimeout(timer)
      const left = (this.pendingPerSession.get(session) ?? 1) - 1
      if (left <= 0) this.pendingPerSession.delete(session)
      else this.pendingPerSession.set(session, left)
    }
  }
}
