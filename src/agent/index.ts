/**
 * @packageDocumentation
 *
 * The composition root: the one module that wires an agent's node together
 * and declares, in order, what happens to a message. Nothing else wires the
 * stages; every stage is one module.
 *
 * Outbound (data flows down), once per piece of agent-authored content, in
 * the outbox (`src/outbox`): {@link OUTBOUND_STAGES}; then per attempt, in
 * `src/messaging`: token attach (`src/tokens`), seal = sign (`src/protocol`).
 *
 * Inbound (data flows up), per frame, in `src/messaging`: open = verify and
 * replay check (`openEnvelope` in `src/protocol`), then the gates
 * {@link INBOUND_STAGES} (screening flags echoes of the agent's own values,
 * secrets and injection markers), then delivery to the local service.
 *
 * @example
 *
 * ```TypeScript
 * import { loadConfig } from './src/config/index.ts'
 * import { loadOrCreateIdentity } from './src/identity/index.ts'
 * import { createAgentNode } from './src/agent/index.ts'
 *
 * const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
 * const { privateKey } = await loadOrCreateIdentity('/tmp/agentnet-a')
 * const node = await createAgentNode({ config, privateKey, home: '/tmp/agentnet-a' })
 * await node.start()
 * node.registerService('echo', async msg => ({ body: msg.body, contentType: msg.contentType }))
 * await node.stop()
 * ```
 */

import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { AUDIT_LOG_FILE, AuditSink, openAuditLog } from '../audit/index.ts'
import { CARD_NAMESPACE, CardService, createCardValidator, selectCard } from '../cards/index.ts'
import { AGENT_CARD_SERVICE, agentCardHandler } from '../did/service.ts'
import { migrateHome, SuccessionFollower, SuccessorService } from '../rotation/index.ts'
import { MessagingService } from '../messaging/index.ts'
import { AGENT_VERSION, ConnectionGuard, createAgentLibp2p, keychainPassFor, Milestones, Network, openPeerStore, reachabilityOf, relaysOf } from '../node/index.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { Outbox } from '../outbox/index.ts'
import { loadReplayCache, saveReplayCache } from '../protocol/index.ts'
import { TokenService } from '../tokens/index.ts'
import { createTrustGater, TrustService } from '../trust/index.ts'
import { AddressBook } from '../addressbook/index.ts'
import { createGuard, warmInjectionMatcher, warmSecretScanner } from '../guard/index.ts'
// the groups service is imported when first needed (ts-mls is ~15 % of a start): see lazy-groups.ts
import { LazyGroups } from './lazy-groups.ts'
import type { NodeMetrics } from '../metrics/index.ts'
import { PostureMonitor } from '../posture/monitor.ts'
import { AgentNode } from './agent-node.ts'
import type { ServiceAdmission } from './agent-node.ts'
import { guardStage, screenBody } from './guard-stage.ts'
import { stunService } from './stun.ts'
import { InboundRefusedError } from './errors.ts'
import type { AuditData } from '../audit/index.ts'
import type { Config } from '../config/index.ts'
import type { InboundStage } from '../messaging/index.ts'
import type { OutboundStage } from '../outbox/index.ts'
import type { PeerId, PrivateKey, Startable } from '@libp2p/interface'
import type { Clock } from '../utils/clock.ts'
import type { Logger } from 'pino'

export { AgentNode } from './agent-node.ts'
export type { AgentInbound, AgentReply, AgentServiceHandler, ServiceAdmission, AdmissionRequest, RegisterServiceOptions } from './agent-node.ts'
export { InboundRefusedError } from './errors.ts'

/** Peer-store tag of trusted and infrastructure peers: libp2p's pruner closes the lowest-valued connections first */
const TRUSTED_TAG = 'agentnet-trusted'
const TRUSTED_TAG_VALUE = 100

export interface AgentNodeInit {
  config: Config
  privateKey: PrivateKey
  /** Home folder for persistent state (trust, tokens, audit, replay cache) */
  home: string
  /**
   * The previous node on this home did not stop cleanly: its replay cache
   * snapshot is missing, so refuse anything timestamped before start + skew
   */
  afterCrash?: boolean
  /** How often a node with no connections re-dials its bootstrap nodes, ms. @default 15000 */
  rejoinIntervalMs?: number
  /** Structured logger; defaults to none */
  logger?: Logger
  /** Wall clock for every window and expiry (tests move it instead of sleeping). @default Date.now */
  clock?: Clock
}

/** Names of the outbound stages, in order (the outbox runs them once per piece of content) */
export const OUTBOUND_STAGES = ['trust check', 'guard'] as const
/** Names of the inbound gates between `open` and delivery, in order */
export const INBOUND_STAGES = ['trust gate', 'token gate', 'inbound screening', 'local admission'] as const

/** Assemble (but do not start) an agent's node described by `config` */
export async function createAgentNode (init: AgentNodeInit): Promise<AgentNode> {
  const { config, privateKey, home } = init
  const log = (component: string): Logger | undefined => init.logger?.child({ component })
  // a key rotation interrupted after its swap moves the home's key-bound state first (src/rotation)
  await migrateHome(home)

  // ---- the libp2p node (src/node assembles it from the config only)
  // known peers, DHT records and the WebRTC-direct certificate key, on disk;
  // the card validator reads the DHT records to refuse older cards
  const datastore = await openPeerStore(home, log('peerstore'))
  // strict mode needs the gater at creation, before the trust service exists
  let trust: TrustService | undefined
  const infrastructurePeers = config.bootstrap.map(a => multiaddr(a).getComponents().findLast(c => c.name === 'p2p')?.value).filter((p): p is string => p != null)
  const infrastructureSet = new Set(infrastructurePeers)
  // trusted and infrastructure peers: served first, and keep their connection slots
  const isPreferred = (peer: PeerId): boolean => trust?.isTrusted(peer) === true || infrastructureSet.has(peer.toString())
  // Prometheus metrics (off, and prom-client not loaded, unless metrics.listen is set): libp2p reports to the same registry
  const metrics: NodeMetrics | undefined = config.metrics.listen === '' ? undefined : new (await import('../metrics/index.ts')).NodeMetrics({ listen: config.metrics.listen, logger: log('metrics') })
  const libp2p = await createAgentLibp2p({
    metricsRegistry: metrics?.registry,
    config,
    connectionGater: config.trust.strict ? createTrustGater(() => trust, { allowPeers: () => infrastructurePeers }) : undefined,
    privateKey,
    userAgent: AGENT_VERSION,
    datastore,
    keychainPass: keychainPassFor(privateKey),
    dhtValidators: { [CARD_NAMESPACE]: createCardValidator(datastore) },
    dhtSelectors: { [CARD_NAMESPACE]: selectCard }
  })

  // ---- persistent security state
  const replayCache = await loadReplayCache(home, {
    windowMs: config.messaging.replayWindowMs,
    afterCrash: init.afterCrash === true,
    // the audit log exists once a node has run on this home
    ranBefore: await stat(join(home, AUDIT_LOG_FILE)).then(() => true, () => false),
    maxSkewMs: config.messaging.maxClockSkewMs,
    now: (init.clock ?? Date.now)(),
    logger: log('replay')
  })
  const auditLog = await openAuditLog({ path: join(home, AUDIT_LOG_FILE) })
  for (const warning of auditLog.recovery.warnings) {
    init.logger?.warn({ warning }, 'audit log')
  }
  const audit = new AuditSink(auditLog, log('audit'))

  // ---- services
  const clock = init.clock ?? Date.now
  let groupsService: LazyGroups | undefined
  const tokens: TokenService = new TokenService({
    libp2p,
    privateKey,
    clock,
    logger: log('tokens'),
    // a token opens a private service only for a peer that is trusted anyway
    mayIssue: (peer, services) => trustService.isTrusted(peer) || services.every(s => publicServices.has(s)),
    onEvent: ({ type, ...data }) => { audit.record(type, { ...data }); metrics?.series.tokenEvent(type) }
  }, {
    home,
    protectedServices: config.tokens.protectedServices,
    lifetimeMs: config.tokens.lifetimeMs,
    maxLifetimeMs: config.tokens.maxLifetimeMs
  })
  const trustService = new TrustService({
    libp2p,
    privateKey,
    clock,
    // trust frames are envelopes: their nonces share the node's replay cache (persisted at a clean stop)
    replayCache,
    logger: log('trust'),
    // trust decisions are rare: the caller waits until its record is on disk
    audit: { append: async (type, data) => { await audit.recordNow(type, JSON.parse(JSON.stringify(data)) as AuditData) } },
    onRevoke: async peer => {
      await tokens.revoke(peer)
      // and removes it from every group (asks the committer where this node is not it)
      void groupsService?.onTrustRevoked(peer.toString()).catch((err: Error) => { init.logger?.warn({ err: err.message }, 'could not remove a revoked peer from its groups') })
    },
    // a trusted peer rotated its key (src/rotation): its petnames, tokens and
    // group memberships where this node commits follow
    onSuccession: async (old, next) => { await follower.onTrustMoved(old, next) }
  }, {
    home,
    staticPeers: config.trust.peers,
    publicServices: config.trust.publicServices,
    strict: config.trust.strict,
    maxPending: config.trust.maxPending,
    maxPendingPerSource: config.trust.maxPendingPerSource,
    pendingTtlMs: config.trust.pendingTtlMs,
    replayWindowMs: config.messaging.replayWindowMs,
    maxClockSkewMs: config.messaging.maxClockSkewMs,
    acceptOldKeyOnlySuccession: config.trust.acceptOldKeyOnlySuccession,
    allowPeers: () => infrastructurePeers
  })
  trust = trustService
  const book = new AddressBook(home)
  const follower = new SuccessionFollower({
    home,
    book,
    self: () => libp2p.peerId.toString(),
    trust: trustService,
    tokens,
    groups: () => groupsService?.loaded(),
    addAddresses: async (peer, addresses) => { await libp2p.peerStore.merge(peer, { multiaddrs: addresses }) },
    audit: async (type, data) => { await audit.recordNow(type, data) },
    logger: log('rotation')
  })
  const publicServices = new Set(config.trust.publicServices)
  // a key rotation of this node in its grace period: the old ID points to the new one
  const rotation = new SuccessorService({
    home,
    libp2p,
    contentRouting: libp2p.services.dht == null ? undefined : libp2p.contentRouting,
    trustedPeers: () => trustService.list().filter(e => e.state === 'trusted').map(e => e.peerId),
    audit: async (type, data) => { await audit.recordNow(type, data) },
    logger: log('rotation')
  }, { config })
  const network = new Network({ libp2p, logger: log('network') }, { config, rejoinIntervalMs: init.rejoinIntervalMs })

  const guard = createGuard({
    now: clock,
    persistPath: join(home, config.guard.persistFile),
    policies: config.guard.policies,
    maxValues: config.guard.maxValues,
    maxPolicies: config.guard.maxPolicies,
    maxBodyChars: config.guard.maxBodyChars,
    sweepIntervalMs: config.guard.sweepIntervalMs,
    minPartialDigits: config.guard.minPartialDigits,
    longNumberDigits: config.guard.longNumberDigits,
    partialWordsFraction: config.guard.partialWordsFraction,
    secretScan: config.guard.secretScan,
    entropyScan: config.guard.entropyScan,
    onPersistError: err => { init.logger?.error({ err: err.message }, 'could not write the guard store') }
  })

  // ---- what happens to a message, in order ---------------------------------
  const outbound: OutboundStage[] = [
    // who: never send to a peer that revoked us, or that we revoked
    { name: 'trust check', run: (content) => { if (content.to != null && (content.kind === 'request' || content.kind === 'oneway' || content.kind === 'group')) trustService.outboundCheck(content.to); return content } },
    // what: the leakage guard (registered context, secrets, PII, per-peer policy)
    guardStage(guard, { enabled: config.guard.enabled, namesOf: async peer => book.namesOf(peer), audit })
    // then, per attempt, in messaging: token attach → seal (sign)
  ]
  const admissions = new Map<string, ServiceAdmission>()
  const inbound: InboundStage[] = [
    // after open (verify, replay) in messaging: who first, then with what
    { name: 'trust gate', check: trustService.gate },
    { name: 'token gate', check: tokens.gate },
    // services in guard.inbound.refuse refuse flagged content here, before a one-way message is acknowledged
    { name: 'inbound screening', check: async (message) => { await refuseFlagged(message.service, message.body, message.contentType) } },
    // room in the serving agent's buffer (src/daemon): refused here, before a one-way message is acknowledged, when it does not read
    { name: 'local admission', check: async (message, remotePeer) => { await admissions.get(message.service)?.({ from: remotePeer, id: message.id, kind: message.kind, bodyBytes: message.body.byteLength }) } }
    // then deliver to the local service (which gets the screening result)
  ]
  // --------------------------------------------------------------------------

  const refuseServices = new Set(config.guard.inbound.refuse)
  const refuseFlagged = async (service: string, body: Uint8Array, contentType: string): Promise<void> => {
    if (!config.guard.enabled || !refuseServices.has(service)) return
    if (await screenBody(guard, body, contentType) != null) {
      throw new InboundRefusedError(`service ${JSON.stringify(service)} refuses messages that echo protected values, carry secrets or injection markers`)
    }
  }
  const outbox = new Outbox(outbound)
  const messaging = new MessagingService({
    libp2p,
    privateKey,
    clock,
    logger: log('messaging'),
    tokenProvider: tokens,
    inboundGates: inbound,
    onReject: event => { audit.rejectedMessage(event) },
    // trusted and infrastructure peers are served first; strangers wait in a bounded queue
    isPreferred,
    observer: metrics?.series.observer,
    connect: async (peer, signal) => network.reach(peer, signal)
  }, {
    maxBodyBytes: config.messaging.maxBodyBytes,
    replayWindowMs: config.messaging.replayWindowMs,
    maxClockSkewMs: config.messaging.maxClockSkewMs,
    requestTimeoutMs: config.messaging.requestTimeoutMs,
    retries: config.messaging.retries,
    cryptoWorkers: config.crypto.workers,
    cryptoOffloadUtilization: config.crypto.offloadUtilization,
    frameTimeoutMs: config.messaging.frameTimeoutMs,
    untrustedInFlightBytes: config.messaging.untrustedInFlightBytes,
    untrustedInFlightRequests: config.messaging.untrustedInFlightRequests,
    untrustedIdleStreamMs: config.messaging.untrustedIdleStreamMs,
    replayCache
  })
  // the milestones an operator waits for: listening, bootstrap connected, DHT ready, relay, card
  const milestones = new Milestones(libp2p, config.bootstrap, { reachabilityOf, relaysOf }, init.logger)
  const cards = new CardService({
    peerId: libp2p.peerId,
    privateKey,
    contentRouting: libp2p.services.dht == null ? undefined : libp2p.contentRouting,
    logger: log('cards'),
    onPublished: seq => { milestones.cardPublished(seq) }
  }, {
    // the configured card is agent-authored content too
    card: await outbox.admitJson({ kind: 'card', value: config.card })
  })

  // MLS groups: frames signed by the protocol core; group messages leave through the outbox
  groupsService = new LazyGroups({
    libp2p,
    privateKey,
    clock,
    logger: log('groups'),
    // only trusted peers may invite this node into a group
    acceptInvite: peer => trustService.isTrusted(peer),
    audit: ({ type, ...data }) => { audit.record(type, { ...data }) }
  }, {
    home,
    heartbeatIntervalMs: config.groups.heartbeatIntervalMs,
    committerTimeoutMs: config.groups.committerTimeoutMs,
    selfUpdateIntervalMs: config.groups.selfUpdateIntervalMs,
    offlineWindowMs: config.groups.offlineWindowMs,
    maxGroups: config.groups.maxGroups,
    maxMembers: config.groups.maxMembers,
    maxBodyBytes: config.messaging.maxBodyBytes,
    replayWindowMs: config.messaging.replayWindowMs
  })

  // the guard's injection automaton and secretlint are built off the start-up path, before the first message is likely
  const warmUp = warmAfterStart(config.guard.enabled
    ? async () => {
      warmInjectionMatcher()
      if (config.guard.secretScan) await warmSecretScanner()
    }
    : undefined)
  // ---- connection slots: strangers are held to connections.maxConnections, trusted peers tagged so pruning spares them
  const connectionGuard = new ConnectionGuard({ libp2p, isPreferred, logger: log('connections') }, {
    maxConnections: config.connections.maxConnections,
    maxPerIp: config.connections.maxPerIp,
    maxPerSubnet: config.connections.maxPerSubnet
  })
  const tagTrusted = async (id: string, trusted: boolean): Promise<void> => {
    await libp2p.peerStore.merge(peerIdFromString(id), { tags: { [TRUSTED_TAG]: trusted ? { value: TRUSTED_TAG_VALUE } : undefined } }).catch(() => {})
  }
  trustService.on('changed', (change: { peerId: string, state: string }) => { void tagTrusted(change.peerId, change.state === 'trusted') })
  const slots: Startable = {
    start: async () => {
      connectionGuard.start()
      for (const entry of trustService.list()) {
        if (entry.state === 'trusted') await tagTrusted(entry.peerId, true)
      }
      for (const id of infrastructureSet) await tagTrusted(id, true)
    },
    stop: () => { connectionGuard.stop() }
  }

  // ---- lifecycle: started in this order, stopped in the reverse ------------
  const lifecycle: Startable[] = [
    { start: () => {}, stop: async () => { await datastore.close() } }, // closed last
    guard, // loads persisted values; a damaged store stops the start
    trustService, // loads trust.json before any connection can arrive
    libp2p,
    slots,
    milestones,
    tokens,
    messaging,
    network,
    cards,
    rotation,
    ...(config.groups.enabled ? [groupsService] : []),
    stunService(config, log('stun')),
    ...(metrics == null ? [] : [metrics]), // serves /metrics once every service it reads runs
    // secretlint is imported off the start-up path, soon after it, so that the first message does not wait for it
    warmUp
  ]
  // the node's own posture review (agentnet doctor's checks), live data read in-process
  const posture = new PostureMonitor({
    home,
    config,
    live: () => {
      const status = network.status()
      return { running: true, version: network.info().version, addresses: network.info().addresses, connections: status.connections.length, relayReservations: status.relayReservations, rejected: { ...messaging.metrics.rejected } }
    }
  })
  metrics?.setSources({ messaging, outbox, guard, groups: config.groups.enabled ? groupsService : undefined, trust: trustService, network, posture })

  const node = new AgentNode({
    metrics,
    groups: groupsService,
    posture,
    milestones,
    guard,
    screening: { enabled: config.guard.enabled && config.guard.inbound.screen },
    book,
    libp2p,
    trust: trustService,
    tokens,
    messaging,
    network,
    cards,
    outbox,
    audit,
    rotation,
    follower,
    datastore,
    lifecycle,
    warmedUp: warmUp.done,
    logger: init.logger,
    // only a clean stop leaves a snapshot; its absence at the next start means a crash
    saveState: async () => { await saveReplayCache(home, replayCache) },
    admissions
  })
  // the A2A-style agent card (src/did), signed from the card content the outbox admitted;
  // its reply passes the guard too, where the JWS signature and the did:key count as
  // high-entropy tokens: allowed for this service unless the config sets its own policy
  if (!config.guard.policies.some(p => p.peer === '*' && p.service === AGENT_CARD_SERVICE)) {
    guard.setPolicy({ peer: '*', service: AGENT_CARD_SERVICE, allow: ['secret/high-entropy'] })
  }
  node.registerService(AGENT_CARD_SERVICE, agentCardHandler(async () => {
    const { createAgentCard } = await import('../did/agent-card.ts')
    return createAgentCard({ ...cards.content(), version: AGENT_VERSION.split('/')[1] ?? '0.0.0' }, privateKey)
  }, { version: () => cards.content() }))
  return node
}

/** How long after start a node loads what its first messages need (secretlint, the injection automaton) */
export const WARM_DELAY_MS = 500

/**
 * A lifecycle entry that runs `warm` WARM_DELAY_MS after the node started;
 * `done` resolves once it ran (or at once without one, or at stop)
 */
function warmAfterStart (warm: (() => Promise<void>) | undefined): Startable & { done: Promise<void> } {
  let timer: ReturnType<typeof setTimeout> | undefined
  let finish: () => void = () => {}
  const done = new Promise<void>(resolve => { finish = resolve })
  return {
    done,
    start: () => {
      if (warm == null) {
        finish()
        return
      }
      timer = setTimeout(() => { void warm().finally(finish) }, WARM_DELAY_MS)
      timer.unref()
    },
    stop: () => {
      clearTimeout(timer)
      finish()
    }
  }
}
