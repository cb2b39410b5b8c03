import { randomUUID } from 'node:crypto'
import { foreignCode } from '../errors/index.ts'
import { decodeBody, encodeBody, MessagingError, ServiceError } from '../messaging/index.ts'
import { invalidParams } from '../ipc/index.ts'
import type { AgentInbound, AgentReply } from '../agent/index.ts'
import type { NodeHost } from './host.ts'
import type { IpcSession } from '../ipc/index.ts'

/** How long a local service may take when the sender set no deadline */
const DEFAULT_SERVICE_TIMEOUT_MS = 60_000
/** Requests delivered to one client and not yet answered */
const MAX_PENDING_PER_SESSION = 10_000

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
 */
export class LocalServices {
  private readonly host: NodeHost
  private readonly deliveries = new Map<string, PendingDelivery>()
  private readonly owners = new Map<string, { session: IpcSession, unregister: () => void }>()
  private readonly pendingPerSession = new Map<IpcSession, number>()

  constructor (host: NodeHost) {
    this.host = host
    // a live key rotation replaced the node: the clients' services move to the new one
    host.on('replaced', node => {
      for (const [service, owner] of this.owners) {
        owner.unregister = node.registerService(service, async (message) => this.deliver(owner.session, message))
      }
    })
  }

  register (session: IpcSession, service: string): void {
    const owner = this.owners.get(service)
    if (owner?.session === session) {
      return
    }
    const unregister = this.host.node.registerService(service, async (message) => this.deliver(session, message))
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
    }
    return true
  }

  /** Answer a delivered request: `{id, body | bodyBase64}` or `{id, error: {code?, message}}` */
  reply (session: IpcSession, params: Record<string, unknown>): void {
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
    let encoded
    try {
      encoded = encodeBody({ body: params.body, bodyBase64: params.bodyBase64 as string | undefined })
    } catch (err) {
      throw invalidParams((err as Error).message)
    }
    this.deliveries.delete(id)
    pending.resolve(encoded)
  }

  private async deliver (session: IpcSession, message: AgentInbound): Promise<AgentReply | undefined> {
    const delivery = randomUUID()
    const notification = {
      id: delivery,
      requestId: message.id,
      from: message.from.toString(),
      service: message.service,
      kind: message.kind,
      ...decodeBody(message.body, message.contentType),
      contentType: message.contentType,
      ...(message.screening == null ? {} : { screening: message.screening })
    }
    if (message.kind === 'oneway') {
      session.notify('msg.received', notification)
      return undefined
    }
    const pendingCount = this.pendingPerSession.get(session) ?? 0
    if (pendingCount >= MAX_PENDING_PER_SESSION) {
      throw new ServiceError('Busy', 'the agent has too many unanswered requests')
    }
    const { promise, resolve, reject } = Promise.withResolvers<AgentReply>()
    this.deliveries.set(delivery, { session, resolve, reject })
    if (!session.notify('msg.received', notification)) {
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
