/**
 * The groups service: lifecycle, public API, committer side. Inbound frames
 * are handled in `inbound.ts`.
 *
 * Longer than 450 lines on purpose: the public API and the committer's
 * commit, heartbeat and hand-over share the group records and their locks;
 * what owns no such state is apart (`inbound.ts`, `delivery.ts`,
 * `channels.ts`, `store.ts`, `serve.ts`).
 *
 * @module
 */

import { createHash, randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { peerIdFromString } from '@libp2p/peer-id'
import { createCommit, createGroup, decodeMlsMessage, encodeMlsMessage } from 'ts-mls'
import { createSigner, MLS_SIGNATURE_SCHEME, ReplayCache, toPeer } from '../protocol/index.ts'
import { DEFAULTS, MLS_PROTOCOL, WELCOME_HOLDERS } from './constants.ts'
import {
  GroupsError, InvalidArgumentError, NotMemberError, NotStartedError, TooManyGroupsError, UnknownGroupError, InvalidCommitError
} from './errors.ts'
import { cipherSuite, clientConfig, keyPackagePeer, leafOf, members, newKeyPackage } from './identity.ts'
import { Delivery } from './delivery.ts'
import { Inbound, successors } from './inbound.ts'
import { GroupStore, StateWriter, withoutWelcome } from './store.ts'
import { checkReply, decodeReply, encodeBody, sealFrame } from './wire.ts'
import { Channels } from './channels.ts'
import { serveStream } from './serve.ts'
import type { GuardedBody } from '../outbox/index.ts'
import type { AbortOptions, GroupAuditEvent, GroupInfo, GroupsComponents, GroupsEvents, GroupsInit } from './index.ts'
import type { CommitLogEntry, GroupRecord } from './store.ts'
import type { FrameType, GroupFrame } from './wire.ts'
import type { MessageSigner } from '../protocol/index.ts'
import type { PeerId, Startable, Stream, Connection } from '@libp2p/interface'
import type { CiphersuiteImpl, ClientConfig, KeyPackage, Proposal } from 'ts-mls'

type Options = Required<Omit<GroupsInit, 'home'>> & { home: string }

export const sha256hex = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
export const epochOf = (rec: GroupRecord): number => Number(rec.state.groupContext.epoch)


/** MLS groups over `/agentnet/mls/2.0.0`; see the package doc in `index.ts`. */
export class GroupsService extends EventEmitter<GroupsEvents> implements Startable {
  readonly components: GroupsComponents
  readonly options: Options
  readonly self: PeerId
  readonly selfId: string
  readonly groups = new Map<string, GroupRecord>()
  readonly replayCache: ReplayCache
  readonly signer: MessageSigner
  impl?: CiphersuiteImpl
  readonly config: ClientConfig
  store: GroupStore
  private readonly writer: StateWriter
  readonly inbound: Inbound
  readonly delivery: Delivery
  /** one long-lived outbound stream per peer */
  readonly channels: Channels<GroupFrame>
  /** Inbound frames accepted by the verification core, by type (metrics and tests). */
  readonly framesIn: Record<string, number> = {}
  /** This node's last commit, ms from its start: made, frames handed to the streams, all acks in, state durable (groups.bench.ts) */
  lastCommit?: { epoch: number, targets: number, acked: number, createdMs: number, sentMs: number, ackedMs: number, durableMs: number }
  private readonly locks = new Map<string, Promise<unknown>>()
  /** per group: ends the wait of the deferred section holding or queued for its lock */
  private readonly wakers = new Map<string, () => void>()
  /** the deferred sections not yet run */
  private readonly deferred = new Set<Promise<void>>()
  private readonly refreshing = new Set<string>()
  private started = false
  private timer?: ReturnType<typeof setInterval>
  private controller = new AbortController()

  constructor (components: GroupsComponents, init: GroupsInit) {
    super()
    this.components = components
    this.options = { ...DEFAULTS, ...init }
    this.self = components.libp2p.peerId
    this.selfId = this.self.toString()
    this.replayCache = new ReplayCache({ windowMs: this.options.replayWindowMs })
    this.signer = createSigner(components.privateKey, MLS_SIGNATURE_SCHEME)
    this.config = clientConfig(this.options.retainEpochs)
    this.store = new GroupStore(init.home, components.privateKey, this.config)
    this.writer = new StateWriter(this.store, this.options.saveDelayMs, (rec) => this.groups.get(rec.id) === rec)
    this.inbound = new Inbound(this)
    this.delivery = new Delivery(this)
    this.channels = new Channels<GroupFrame>(components.libp2p, (bytes) => {
      const { inReplyTo, frame } = decodeReply(bytes)
      return { inReplyTo, reply: frame }
    })
  }

  readonly [Symbol.toStringTag] = '@agentnet/groups'
  now (): number {
    return (this.components.clock ?? Date.now)()
  }

  get cs (): CiphersuiteImpl {
    if (this.impl === undefined || !this.started) throw new NotStartedError('groups service is not started')
    return this.impl
  }

  isStarted (): boolean { return this.started }

  async start (): Promise<void> {
    if (this.started) return
    this.controller = new AbortController()
    this.impl = await cipherSuite()
    for (const rec of await this.store.loadAll(this.now())) this.groups.set(rec.id, rec)
    for (const rec of this.groups.values()) if (rec.unclean === true) setTimeout(() => { void this.refresh(rec).catch(() => {}) }, 0).unref()
    await this.components.libp2p.handle(MLS_PROTOCOL, (stream: Stream, connection: Connection) => { serveStream(this, stream, connection.remotePeer) }, { maxInboundStreams: 256 })
    this.components.libp2p.addEventListener('peer:connect', this.delivery.onConnect)
    this.started = true
    this.timer = setInterval(() => { void this.tick() }, this.options.heartbeatIntervalMs)
    this.timer.unref?.()
    this.log('info', { groups: this.groups.size }, 'groups service started')
  }

  async stop (): Promise<void> {
    if (!this.started) return
    // acknowledged commits still waiting for their processing are processed now, while the service still runs
    for (const wake of this.wakers.values()) wake()
    await Promise.allSettled([...this.deferred])
    this.started = false
    clearInterval(this.timer)
    this.controller.abort(new NotStartedError('groups service stopped'))
    this.channels.close(new NotStartedError('groups service stopped'))
    this.components.libp2p.removeEventListener('peer:connect', this.delivery.onConnect)
    await this.components.libp2p.unhandle(MLS_PROTOCOL).catch(() => {})
    await Promise.allSettled([...this.locks.values()])
    await this.writer.idle()
    for (const rec of this.groups.values()) await this.writer.save(rec, false).catch(() => {})
    this.groups.clear()
  }


  log (level: 'info' | 'warn' | 'debug', obj: Record<string, unknown>, msg: string): void {
    this.components.logger?.[level](obj, msg)
  }

  audit (event: GroupAuditEvent): void {
    this.log(event.type === 'groups.rejected' ? 'warn' : 'info', { ...event }, event.type)
    try {
      this.components.audit?.(event)
    } catch {}
  }

  /** Run `fn` with the group's lock held: every change of one group is serialised. */
  async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    // a deferred section holding the lock runs now: this one must not wait out its delay
    this.wakers.get(id)?.()
    const prev = this.locks.get(id) ?? Promise.resolve()
    const run = prev.then(fn, fn)
    const tail = run.catch(() => {})
    this.locks.set(id, tail)
    void tail.then(() => { if (this.locks.get(id) === tail) this.locks.delete(id) })
    return run
  }

  /**
   * Run `fn` with the group's lock held, `applyDelayMs` from now or as soon
   * as anything else asks for the group's lock, whichever comes first; it
   * still runs before every section asked for after it.
   */
  async withLockDeferred (id: string, fn: () => Promise<void>): Promise<void> {
    const { promise: due, resolve } = Promise.withResolvers<void>()
    const timer = setTimeout(resolve, this.options.applyDelayMs)
    const wake = (): void => { clearTimeout(timer); resolve() }
    const run = this.withLock(id, async () => {
      await due
      if (this.wakers.get(id) === wake) this.wakers.delete(id)
      await fn()
    })
    this.wakers.set(id, wake)
    this.deferred.add(run)
    void run.catch(() => {}).finally(() => this.deferred.delete(run))
    return run
  }

  /**
   * The group once the commits this node acknowledged and has not processed
   * yet (`applyDelayMs`) are processed: the membership a local call checks
   * against. Not for use inside a locked section.
   *
   * @throws {UnknownGroupError} when there is no such group (or no longer)
   */
  async settled (groupId: string): Promise<GroupRecord> {
    const rec = this.group(groupId)
    await this.withLock(rec.id, async () => {})
    return this.group(groupId)
  }

  signal (timeoutMs: number, outer?: AbortSignal): AbortSignal {
    return AbortSignal.any([this.controller.signal, AbortSignal.timeout(timeoutMs), ...(outer !== undefined ? [outer] : [])])
  }

  group (groupId: string): GroupRecord {
    const rec = this.groups.get(groupId)
    if (rec === undefined) throw new UnknownGroupError(`no group ${groupId}`)
    return rec
  }

  /**
   * Send one frame on the peer's long-lived stream and wait for its reply; an
   * error reply is thrown as {@link GroupsError}. `frame` may be a body
   * encoded once for a whole fan-out.
   */
  async request (peer: string, type: FrameType, frame: (Partial<GroupFrame> & { groupId: Uint8Array }) | Uint8Array, signal: AbortSignal): Promise<GroupFrame> {
    const to = toPeer(peer)
    const sealed = sealFrame(this.signer, to, type, frame, this.now())
    return checkReply(await this.channels.request(to, sealed.bytes, sealed.id, signal))
  }

  frameOf (rec: GroupRecord, extra: Partial<GroupFrame> = {}): Partial<GroupFrame> & { groupId: Uint8Array } {
    return { groupId: rec.groupId, epoch: epochOf(rec), term: rec.term, ...extra }
  }

  /** A frame stating `epoch` (an ack names the epoch the commit leads to). */
  frameFor (rec: GroupRecord, epoch: number): Partial<GroupFrame> & { groupId: Uint8Array } {
    return { groupId: rec.groupId, epoch, term: rec.term }
  }

  /** Write `rec` now (persist first, then act); see {@link StateWriter}. */
  async save (rec: GroupRecord): Promise<void> {
    await this.writer.save(rec)
  }

  /** Write `rec` within `saveDelayMs` (ratchet advances of sent and received messages). */
  saveSoon (rec: GroupRecord): void {
    this.writer.saveSoon(rec)
  }

  /** After an unclean stop: move the group to a new epoch before this node sends in it again. */
  async refresh (rec: GroupRecord): Promise<void> {
    if (this.refreshing.has(rec.id) || rec.unclean !== true) return
    this.refreshing.add(rec.id)
    try {
      const signal = this.signal(this.options.requestTimeoutMs * 3)
      if (rec.committer === this.selfId) await this.withLock(rec.id, async () => this.commit(rec, [], { exclude: [], welcome: [] }, signal))
      else await this.request(rec.committer, 'mls.request', this.frameOf(rec, { meta: { op: 'update' } }), signal)
    } finally {
      this.refreshing.delete(rec.id)
    }
  }

  // ------------------------------------------------------------------ API

  async create (args: { name: string }, options: AbortOptions = {}): Promise<{ groupId: string }> {
    if (typeof args.name !== 'string' || args.name.length === 0 || args.name.length > 200) throw new InvalidArgumentError('name must be 1..200 characters')
    if (this.groups.size >= this.options.maxGroups) throw new TooManyGroupsError(`at most ${this.options.maxGroups} groups`)
    options.signal?.throwIfAborted()
    const groupId = new Uint8Array(randomBytes(16))
    const kp = await newKeyPackage(this.components.privateKey, this.self, this.cs)
    const state = await createGroup(groupId, kp.publicPackage, kp.privatePackage, [], this.cs, this.config)
    const rec: GroupRecord = {
      id: Buffer.from(groupId).toString('hex'), groupId, name: args.name, creator: this.selfId, term: 1, committer: this.selfId,
      state, log: [], lastHeartbeat: this.now(), lastUpdate: this.now()
    }
    await this.save(rec)
    this.groups.set(rec.id, rec)
    return { groupId: rec.id }
  }

  list (): GroupInfo[] {
    return [...this.groups.values()].map(rec => this.info(rec))
  }

  info (rec: GroupRecord): GroupInfo {
    return { groupId: rec.id, name: rec.name, epoch: epochOf(rec), term: rec.term, committer: rec.committer, members: members(rec.state) }
  }

  /** Fetch a key package from `peer` (it must name that peer). */
  async fetchKeyPackage (rec: GroupRecord, peer: string, signal: AbortSignal): Promise<KeyPackage> {
    const reply = await this.request(peer, 'mls.keypackage', this.frameOf(rec), signal)
    return this.parseKeyPackage(reply.mls, peer)
  }

  parseKeyPackage (bytes: Uint8Array, peer: string): KeyPackage {
    const decoded = decodeMlsMessage(bytes, 0)?.[0]
    if (decoded?.wireformat !== 'mls_key_package') throw new InvalidArgumentError('not a key package')
    if (keyPackagePeer(decoded.keyPackage) !== peer) throw new GroupsError('BadCredential', `key package does not name ${peer}`)
    return decoded.keyPackage
  }

  /** Add `peer`; resolves once the commit is applied and the Welcome sent (by this node or by the committer). */
  async add (args: { groupId: string, peer: string }, options: AbortOptions = {}): Promise<{ epoch: number }> {
    const rec = await this.settled(args.groupId)
    const peer = peerIdFromString(args.peer).toString()
    if (members(rec.state).includes(peer)) return { epoch: epochOf(rec) }
    const signal = this.signal(this.options.requestTimeoutMs * 3, options.signal)
    const kp = await this.fetchKeyPackage(rec, peer, signal)
    return this.changeMembers(rec, { op: 'add', peer, kp }, signal)
  }

  async remove (args: { groupId: string, peer: string }, options: AbortOptions = {}): Promise<{ epoch: number }> {
    const rec = await this.settled(args.groupId)
    const peer = peerIdFromString(args.peer).toString()
    if (!members(rec.state).includes(peer)) throw new NotMemberError(`${peer} is not a member of ${args.groupId}`)
    return this.changeMembers(rec, { op: 'remove', peer }, this.signal(this.options.requestTimeoutMs * 3, options.signal))
  }

  /** Leave a group: ask the committer to remove this node, then forget the group. */
  async leave (args: { groupId: string }, options: AbortOptions = {}): Promise<{ groupId: string }> {
    const rec = await this.settled(args.groupId)
    if (members(rec.state).length > 1) {
      if (rec.committer === this.selfId) await this.handOver(rec).catch(() => {})
      await this.changeMembers(rec, { op: 'remove', peer: this.selfId }, this.signal(this.options.requestTimeoutMs * 3, options.signal)).catch(() => {})
    }
    await this.forget(rec)
    return { groupId: rec.id }
  }

  /** Trust in `peer` was revoked: remove it from every group (asking the committer where this node is not it). */
  async onTrustRevoked (peer: string): Promise<void> {
    await Promise.allSettled([...this.groups.keys()].map(async id => this.settled(id)))
    const jobs = [...this.groups.values()].filter(rec => members(rec.state).includes(peer) && peer !== this.selfId)
      .map(async rec => this.remove({ groupId: rec.id, peer }).then(() => this.audit({ type: 'groups.removed', peer, groupId: rec.id, message: 'trust revoked' })))
    await Promise.allSettled(jobs)
  }

  async forget (rec: GroupRecord): Promise<void> {
    this.groups.delete(rec.id)
    this.delivery.pending.delete(rec.id)
    await this.writer.remove(rec.id)
    this.emit('removed', { groupId: rec.id })
  }

  /** Encrypt `body` for the group and send it to every other member; unreachable members get it on reconnect (within `offlineWindowMs`). */
  async send (args: { groupId: string, body: GuardedBody, contentType?: string }, options: AbortOptions = {}): Promise<{ epoch: number, delivered: number, queued: number }> {
    return this.delivery.send(args, options)
  }

  // ------------------------------------------------------------- committer

  /** Apply a membership change: commit it here if this node is the committer, else ask the committer. */
  async changeMembers (rec: GroupRecord, change: { op: 'add', peer: string, kp: KeyPackage } | { op: 'remove', peer: string } | { op: 'rejoin', peer: string, kp: KeyPackage }, signal: AbortSignal): Promise<{ epoch: number }> {
    if (rec.committer !== this.selfId) {
      const mls = change.op === 'remove' ? undefined : encodeMlsMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: change.kp })
      const reply = await this.request(rec.committer, 'mls.request', this.frameOf(rec, { meta: { op: change.op, peer: change.peer }, ...(mls !== undefined ? { mls } : {}) }), signal)
      return { epoch: reply.epoch }
    }
    return this.withLock(rec.id, async () => {
      const proposals: Proposal[] = []
      const old = leafOf(rec.state, change.peer)
      if (change.op !== 'add' && old !== undefined) proposals.push({ proposalType: 'remove', remove: { removed: old } })
      if (change.op !== 'remove') {
        if (change.op === 'add' && old !== undefined) return { epoch: epochOf(rec) }
        if (members(rec.state).length >= this.options.maxMembers) throw new InvalidArgumentError(`at most ${this.options.maxMembers} members`)
        proposals.push({ proposalType: 'add', add: { keyPackage: change.kp } })
      }
      if (proposals.length === 0) return { epoch: epochOf(rec) }
      await this.commit(rec, proposals, {
        exclude: change.op === 'rejoin' ? [change.peer] : [],
        welcome: change.op === 'remove' ? [] : [change.peer]
      }, signal)
      return { epoch: epochOf(rec) }
    })
  }

  /**
   * Create a commit (not applied), send it to every member, apply it once the
   * reachable members have acknowledged it, then send the Welcome. Runs with
   * the group lock held.
   */
  async commit (rec: GroupRecord, proposals: Proposal[], opts: { exclude: string[], welcome: string[] }, signal: AbortSignal): Promise<void> {
    const before = members(rec.state)
    const epoch = epochOf(rec)
    const started = performance.now()
    const out = await createCommit({ state: rec.state, cipherSuite: this.cs }, { extraProposals: proposals, ratchetTreeExtension: true })
    const mls = encodeMlsMessage(out.commit)
    const hash = sha256hex(mls)
    // the Welcome travels (encrypted to the joiners) with the commit, so that a successor can send it if this node dies
    const welcome = out.welcome === undefined ? undefined : encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: out.welcome })
    const targets = before.filter(p => p !== this.selfId && !opts.exclude.includes(p))
    // one body for all members, encoded once (each envelope only names its recipient); the Welcome (tens of kB in
    // a large group) goes only to the next members in succession of the new epoch, which can send it if this node dies
    const body = encodeBody(this.frameOf(rec, { mls }))
    const holders = welcome === undefined ? [] : successors(members(out.newState), rec.term, targets, WELCOME_HOLDERS)
    const bodyWithWelcome = welcome === undefined ? body : encodeBody(this.frameOf(rec, { mls, meta: { welcome: Buffer.from(welcome).toString('base64'), welcomeTo: opts.welcome } }))
    const ackSignal = AbortSignal.any([signal, AbortSignal.timeout(this.options.ackTimeoutMs)])
    const createdMs = performance.now() - started
    const fanOut = Promise.allSettled(targets.map(async p => this.request(p, 'mls.commit', holders.includes(p) ? bodyWithWelcome : body, ackSignal)))
    const sentMs = performance.now() - started
    // the record this commit produces, written to the side file while the acks travel (after the frames left:
    // setImmediate) and made the group's state with a rename once they are in
    const entry: CommitLogEntry = { epoch, term: rec.term, hash, commit: mls, at: this.now(), ...(welcome !== undefined ? { welcome, welcomeTo: opts.welcome } : {}) }
    // only the last commit's Welcome can still be needed (a successor sends it); older ones only grew every save
    const log = [...rec.log, entry].slice(-this.options.commitLogSize).map(e => e === entry ? e : withoutWelcome(e))
    const next: GroupRecord = { ...rec, state: out.newState, prev: rec.state, last: { epoch, term: rec.term, hash }, log }
    const { state: stateBefore, lastUpdate } = rec
    const staged = new Promise(resolve => setImmediate(resolve)).then(async () => this.writer.stage(next))
    const results = await fanOut
    const ackedMs = performance.now() - started
    const acked = targets.filter((_p, i) => results[i]?.status === 'fulfilled')
    this.log('debug', { group: rec.id, epoch, acked: acked.length, targets: targets.length }, 'commit acknowledged')
    if (rec.committer !== this.selfId || epochOf(rec) !== epoch) {
      void this.writer.unstage(rec.id, staged)
      throw new InvalidCommitError('the group moved on while the commit was in flight')
    }
    // a ratchet advance meanwhile: `prev` (and so the file) moved on from what was staged
    const changed = rec.state !== stateBefore || rec.lastUpdate !== lastUpdate
    rec.prev = rec.state
    rec.prevUntil = this.now() + this.options.committerTimeoutMs * 2
    // out.consumed is not zeroed: `prev` shares those keys until the rollback window closes
    rec.state = out.newState
    delete rec.unclean
    rec.last = next.last
    rec.log = log
    await this.writer.promote(rec, staged, changed)
    this.lastCommit = { epoch, targets: targets.length, acked: acked.length, createdMs, sentMs, ackedMs, durableMs: performance.now() - started }
    // members that acked know this commit; the others (missed it, or excluded) learn the new epoch now and catch up,
    // the rest hear it with the next periodic heartbeat (a heartbeat to all after every commit doubled its frames);
    // the peers the Welcome is for learn the group from it (a heartbeat first was refused: UnknownGroup, audited)
    void this.heartbeat(rec, members(rec.state).filter(p => !acked.includes(p) && !opts.welcome.includes(p)))
    if (welcome !== undefined) this.sendWelcome(rec, welcome, opts.welcome, hash, acked)
  }

  /** Send a heartbeat `(epoch, term, last commit hash)` to every member (or to `to`). */
  async heartbeat (rec: GroupRecord, to: string[] = members(rec.state)): Promise<void> {
    const frame = encodeBody(this.frameOf(rec, { meta: { hash: rec.last?.hash ?? '' } }))
    const signal = this.signal(this.options.requestTimeoutMs)
    await Promise.allSettled(to.filter(p => p !== this.selfId).map(async p => this.request(p, 'mls.heartbeat', frame, signal)))
  }

  /** Make the next member in succession the committer (a clean hand-over before leaving). */
  async handOver (rec: GroupRecord): Promise<void> {
    const next = this.inbound.committerOf(rec, rec.term + 1)
    if (next === this.selfId) return
    await this.request(next, 'mls.request', this.frameOf(rec, { meta: { op: 'takeover' } }), this.signal(this.options.requestTimeoutMs))
    // the next member now commits for term + 1: follow it at once (its heartbeat would say the same)
    await this.withLock(rec.id, async () => { rec.term += 1; rec.committer = next; await this.save(rec) })
  }

  /** Become committer with `term + rank` (failover, or a hand-over). */
  async takeOver (rec: GroupRecord, rank: number): Promise<void> {
    rec.term += rank
    rec.committer = this.selfId
    rec.lastHeartbeat = this.now()
    await this.save(rec)
    this.audit({ type: 'groups.takeover', peer: this.selfId, groupId: rec.id, epoch: epochOf(rec), term: rec.term })
    void this.heartbeat(rec)
    // the previous committer may have died before sending the Welcome of the last commit
    const last = rec.log.at(-1)
    if (last?.welcome !== undefined && last.epoch === epochOf(rec) - 1) this.sendWelcome(rec, last.welcome, last.welcomeTo ?? [], last.hash, undefined)
  }

  /** Send the Welcome of the commit that produced the current epoch (`confirm`: members that acked it). */
  sendWelcome (rec: GroupRecord, welcome: Uint8Array, to: string[], hash: string, acked: string[] | undefined): void {
    // `confirm`: members that acknowledged the commit, whom the joiner asks whether it is settled (unknown after a take-over)
    const confirm = acked?.filter(p => !to.includes(p)).slice(0, 3)
    const frame = this.frameOf(rec, { mls: welcome, meta: { name: rec.name, creator: rec.creator, hash, ...(confirm !== undefined ? { confirm } : {}) } })
    for (const p of to) void this.delivery.deliverWelcome(p, frame)
  }

  /** Periodic work: heartbeats, failover, self-update, redelivery. */
  async tick (): Promise<void> {
    if (!this.started) return
    const now = this.now()
    for (const rec of [...this.groups.values()]) {
      try {
        if (rec.unclean === true) void this.refresh(rec).catch(() => {})
        if (rec.prev !== undefined && now > (rec.prevUntil ?? 0)) {
          // the previous epoch's secrets are kept only while a rollback can still happen
          await this.withLock(rec.id, async () => { delete rec.prev; await this.save(rec) })
        }
        if (rec.committer === this.selfId) {
          if (this.options.selfUpdateIntervalMs > 0 && now - rec.lastUpdate > this.options.selfUpdateIntervalMs) {
            await this.selfUpdate(rec)
          }
          void this.withLock(rec.id, async () => { void this.heartbeat(rec) })
          continue
        }
        const rank = this.inbound.rankOf(rec, this.selfId)
        if (rank > 0 && now - rec.lastHeartbeat > this.options.committerTimeoutMs * rank) {
          await this.withLock(rec.id, async () => this.takeOver(rec, rank))
        } else if (this.options.selfUpdateIntervalMs > 0 && now - rec.lastUpdate > this.options.selfUpdateIntervalMs) {
          await this.selfUpdate(rec)
        }
      } catch (err) {
        this.log('debug', { group: rec.id, err: (err as Error).message }, 'groups tick')
      }
    }
    if (this.delivery.pending.size > 0) await this.delivery.redeliver()
  }

  /** Refresh this node's leaf: an empty commit (committer) or a rejoin with a fresh key package. */
  async selfUpdate (rec: GroupRecord): Promise<void> {
    rec.lastUpdate = this.now()
    const signal = this.signal(this.options.requestTimeoutMs * 3)
    if (rec.committer === this.selfId) {
      await this.withLock(rec.id, async () => this.commit(rec, [], { exclude: [], welcome: [] }, signal))
    } else {
      await this.inbound.rejoin(rec)
    }
  }
}
