import { errorCodeOf } from '../errors/index.ts'
import { AgentReplyError } from '../messaging/index.ts'
import { screenBody } from './guard-stage.ts'
import type { AddressBook } from '../addressbook/index.ts'
import type { Guard, GuardDecision, Screening } from '../guard/index.ts'
import type { AgentGroups } from './lazy-groups.ts'
import type { PostureMonitor } from '../posture/monitor.ts'
import type { AuditSink } from '../audit/index.ts'
import type { SuccessionFollower, SuccessorService } from '../rotation/index.ts'
import type { AgentCard, CardContent, CardService } from '../cards/index.ts'
import type { ErrorCode, ForeignCode } from '../errors/index.ts'
import type { InboundMessage, MessagingService, Reply, SendOptions } from '../messaging/index.ts'
import type { AgentLibp2p, Milestones, Network, NodeInfo, NodeStatus, PeerSummary } from '../node/index.ts'
import type { Outbox } from '../outbox/index.ts'
import type { NodeMetrics } from '../metrics/index.ts'
import type { TokenService } from '../tokens/index.ts'
import type { TrustService } from '../trust/index.ts'
import type { AbortOptions, Connection, PeerId, Startable } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import type { Logger } from 'pino'

/** How long a send that found no peer looks for the pointer card a rotated peer leaves under its old ID, ms */
const POINTER_LOOKUP_MS = 5_000

/** What a local agent answers a request with: a body, or an error of its own */
export type AgentReply =
  | { body: Uint8Array, contentType: string }
  | { error: { code: ErrorCode | ForeignCode, message: string } }

/** An inbound message as a local agent's service gets it */
export interface AgentInbound extends InboundMessage {
  /** Set when the body echoes this agent's registered values or secrets, or holds injection markers */
  screening?: Screening
}

/** A local agent's service: every reply it makes leaves through the outbox */
export type AgentServiceHandler = (message: AgentInbound) => Promise<AgentReply | undefined> | AgentReply | undefined

/** What the admission check of a local service learns of a message before it is acknowledged */
export interface AdmissionRequest {
  from: PeerId
  id: string
  kind: string
  bodyBytes: number
}

/**
 * Decides, before a message is acknowledged or run, whether the local agent
 * can take it now; throws a typed error (e.g. `AgentNotReading`) to refuse it
 * to the sender. May wait (bounded) for room.
 */
export type ServiceAdmission = (message: AdmissionRequest) => void | Promise<void>

export interface RegisterServiceOptions {
  admit?: ServiceAdmission
}

export interface ScreeningOptions {
  /** Screen inbound bodies (`guard.enabled && guard.inbound.screen`) */
  enabled: boolean
}

export interface AgentNodeParts {
  /** The Prometheus registry and endpoint; absent when `metrics.listen` is empty */
  metrics?: NodeMetrics
  groups: AgentGroups
  /** The node's own posture review, cached (metrics, dashboard, `node.posture`) */
  posture: PostureMonitor
  milestones: Milestones
  guard: Guard
  screening: ScreeningOptions
  book: AddressBook
  libp2p: AgentLibp2p
  trust: TrustService
  tokens: TokenService
  messaging: MessagingService
  network: Network
  cards: CardService
  outbox: Outbox
  audit: AuditSink
  /** This node's key rotation in its grace period (src/rotation) */
  rotation: SuccessorService
  /** Peers' key rotations: follows them (src/rotation) */
  follower: SuccessionFollower
  /** Peer store, DHT records, keychain (closed last at stop) */
  datastore: Datastore & { close: () => Promise<void> }
  /** Started in this order, stopped in the reverse */
  lifecycle: Startable[]
  /** Persist what a clean stop leaves behind (the replay-cache snapshot) */
  saveState: () => Promise<void>
  /** Admission checks by service, read by the `local admission` inbound stage */
  admissions?: Map<string, ServiceAdmission>
  /** Resolves once what the node loads soon after start (secretlint) is loaded. @default resolved */
  warmedUp?: Promise<void>
  logger?: Logger
}

/**
 * An agent's node, as the local API sees it. Everything an agent sends goes
 * through {@link AgentNode.outbox} here, and only here.
 */
export class AgentNode {
  readonly libp2p: AgentLibp2p
  readonly peerId: PeerId
  readonly messaging: MessagingService
  readonly tokens: TokenService
  readonly trust: TrustService
  readonly network: Network
  readonly cards: CardService
  readonly outbox: Outbox
  readonly audit: AuditSink
  readonly rotation: SuccessorService
  readonly follower: SuccessionFollower
  readonly guard: Guard
  readonly groups: AgentGroups
  /** The node's own posture review, cached (metrics, dashboard, `node.posture`) */
  readonly posture: PostureMonitor
  /** Operator milestones and readiness (`node.state`, `node.wait`) */
  readonly milestones: Milestones
  readonly book: AddressBook
  /** Resolves once what the node loads soon after start (secretlint) is loaded */
  readonly warmedUp: Promise<void>
  /** The Prometheus registry and endpoint; absent when `metrics.listen` is empty */
  readonly metrics: NodeMetrics | undefined
  private readonly screening: ScreeningOptions
  readonly datastore: Datastore & { close: () => Promise<void> }
  private readonly lifecycle: Startable[]
  private readonly saveState: () => Promise<void>
  private readonly logger: Logger | undefined
  private readonly admissions: Map<string, ServiceAdmission>
  private started: Startable[] = []

  constructor (parts: AgentNodeParts) {
    this.libp2p = parts.libp2p
    this.peerId = parts.libp2p.peerId
    this.messaging = parts.messaging
    this.tokens = parts.tokens
    this.trust = parts.trust
    this.network = parts.network
    this.cards = parts.cards
    this.outbox = parts.outbox
    this.audit = parts.audit
    this.rotation = parts.rotation
    this.follower = parts.follower
    this.guard = parts.guard
    this.groups = parts.groups
    this.posture = parts.posture
    this.milestones = parts.milestones
    this.book = parts.book
    this.metrics = parts.metrics
    this.screening = parts.screening
    this.datastore = parts.datastore
    this.lifecycle = parts.lifecycle
    this.saveState = parts.saveState
    this.warmedUp = parts.warmedUp ?? Promise.resolve()
    this.logger = parts.logger
    this.admissions = parts.admissions ?? new Map()
  }

  async start (): Promise<void> {
    for (const component of this.lifecycle) {
      try {
        await component.start()
      } catch (err) {
        await this.stopStarted().catch(() => {})
        throw err
      }
      this.started.push(component)
    }
  }

  private async stopStarted (): Promise<void> {
    let first: unknown
    for (const component of this.started.reverse()) {
      try {
        await component.stop()
      } catch (err) {
        first ??= err
      }
    }
    this.started = []
    await this.audit.close().catch(err => this.logger?.error({ err }, 'could not close the audit log'))
    if (first != null) throw first
  }

  async stop (): Promise<void> {
    await this.stopStarted()
    try {
      await this.saveState()
    } catch (err) {
      this.logger?.error({ err }, 'could not save the replay cache; the next start will treat this stop as a crash')
      throw err
    }
    this.logger?.info('node stopped')
  }

  // ---- agent-authored content: every path passes the outbox once

  /**
   * Send a request (resolves with the reply) or a one-way message (resolves
   * once accepted). A peer known to have rotated its key is sent to at its
   * new ID. A peer that answers from its old ID with `Moved`, or that cannot
   * be reached and whose DHT card points to a successor, is followed
   * (src/rotation: the record is verified, trust moves) and the message is
   * sent once more, to the new ID, through the outbox again (the
   * destination changed).
   */
  async send (to: PeerId, service: string, body: Uint8Array, contentType: string, options: SendOptions = {}): Promise<Reply> {
    const target = this.follower.resolve(to)
    try {
      return await this.sendTo(target, service, body, contentType, options)
    } catch (err) {
      if (options.signal?.aborted === true) throw err
      const code = errorCodeOf(err)
      const next = await this.follower.followMoved(err, target, service) ??
        (code === 'PeerUnreachable' || code === 'RequestTimeout'
          ? await this.follower.followPointer(target, async peer => this.cards.lookup(peer, { signal: AbortSignal.timeout(POINTER_LOOKUP_MS) }), service)
          : undefined)
      if (next === undefined) throw err
      return this.sendTo(next, service, body, contentType, options)
    }
  }

  private async sendTo (to: PeerId, service: string, body: Uint8Array, contentType: string, options: SendOptions): Promise<Reply> {
    const admitted = await this.outbox.admit({ kind: options.oneway === true ? 'oneway' : 'request', to: to.toString(), service, body, contentType }, options)
    return this.messaging.send(to, service, admitted.body, admitted.contentType, options)
  }

  /** Serve a local service; its replies and error texts pass the outbox. Returns the unregister function */
  registerService (name: string, handler: AgentServiceHandler, options: RegisterServiceOptions = {}): () => void {
    const admit = options.admit
    const unregister = this.messaging.registerService(name, async (message) => {
      // flagged messages for a refusing service were refused by the inbound gate, before any ack
      const screening = await this.screenText(message.body, message.contentType)
      const reply = await handler(screening == null ? message : { ...message, screening })
      if (reply == null) {
        return undefined
      }
      const to = message.from.toString()
      if ('error' in reply) {
        const text = await this.outbox.admitText({ kind: 'error', to, service: name, text: reply.error.message })
        throw new AgentReplyError(reply.error.code, text)
      }
      return this.outbox.admit({ kind: 'reply', to, service: name, body: reply.body, contentType: reply.contentType })
    })
    // set once the name is ours (registerService throws ServiceTaken otherwise)
    if (admit != null) this.admissions.set(name, admit)
    return () => {
      if (this.admissions.get(name) === admit) this.admissions.delete(name)
      unregister()
    }
  }

  /** Screen an inbound body (a message, a group message) when screening is on */
  async screenText (body: Uint8Array, contentType: string): Promise<Screening | undefined> {
    return this.screening.enabled ? screenBody(this.guard, body, contentType) : undefined
  }

  /** The decision `msg.send` would take for this content, without sending (`guard.check`) */
  async checkGuard (to: PeerId | string, service: string | undefined, body: string): Promise<GuardDecision> {
    const peer = to.toString()
    return this.guard.check({ peerNames: [peer, ...await this.book.namesOf(peer)], service, body })
  }

  /** Ask a peer for trust, with a justification it will read */
  async requestTrust (peer: PeerId | string, reason: string, options: AbortOptions = {}): ReturnType<TrustService['request']> {
    const text = await this.outbox.admitText({ kind: 'trust-reason', to: peer.toString(), text: reason }, options)
    return this.trust.request(peer, text, options)
  }

  /** Reject a pending trust request; the reason, if any, is sent to the peer */
  async rejectTrust (peer: PeerId | string, reason: string | undefined, options: AbortOptions = {}): ReturnType<TrustService['reject']> {
    const text = reason === undefined ? undefined : await this.outbox.admitText({ kind: 'trust-reason', to: peer.toString(), text: reason }, options)
    return this.trust.reject(peer, text, options)
  }

  /** Revoke trust; the reason, if any, is sent to the peer */
  async revokeTrust (peer: PeerId | string, reason: string | undefined, options: AbortOptions = {}): ReturnType<TrustService['revoke']> {
    const text = reason === undefined ? undefined : await this.outbox.admitText({ kind: 'trust-reason', to: peer.toString(), text: reason }, options)
    return this.trust.revoke(peer, text, options)
  }

  /** Send to a group: screened by the outbox for every member, then MLS-encrypted and fanned out */
  async sendToGroup (groupId: string, body: Uint8Array, contentType: string, options: AbortOptions = {}): Promise<{ epoch: number, delivered: number, queued: number }> {
    const admitted = await this.outbox.admit({ kind: 'group', service: groupId, body, contentType }, options)
    return this.groups.send({ groupId, body: admitted.body, contentType: admitted.contentType }, options)
  }

  /** Change and publish our agent card */
  async publishCard (content: Partial<CardContent>, options: AbortOptions = {}): Promise<AgentCard> {
    return this.cards.publish(await this.outbox.admitJson({ kind: 'card', value: content }, options), options)
  }

  async lookupCard (peer: PeerId, options: AbortOptions = {}): Promise<AgentCard> {
    return this.cards.lookup(peer, options)
  }

  // ---- the network

  addresses (): string[] { return this.network.addresses() }
  info (): NodeInfo { return this.network.info() }
  status (): NodeStatus { return this.network.status() }
  async peers (): Promise<PeerSummary[]> { return this.network.peers() }
  async connect (target: string, signal?: AbortSignal): Promise<Connection> { return this.network.connect(target, signal) }
  async reach (peer: PeerId, signal?: AbortSignal): Promise<Connection> { return this.network.reach(peer, signal) }
  async ping (target: string, signal?: AbortSignal): Promise<{ peerId: string, rttMs: number }> { return this.network.ping(target, signal) }
}
