/**
 * The member side of the protocol: every inbound frame type, succession,
 * catching up (sync), rollback of a losing commit, and rejoin.
 *
 * @module
 */

import { decodeMlsMessage, emptyPskIndex, encodeMlsMessage, joinGroup, processMessage, processPrivateMessage } from 'ts-mls'
import { decryptSenderData } from 'ts-mls/privateMessage.js'
import {
  GroupsError, InvalidArgumentError, InvalidCommitError, MalformedGroupFrameError, NotCommitterError, NotMemberError, StaleTermError,
  UnexpectedWelcomeError, UnknownGroupError, WelcomeBeforeCommitError, WrongEpochError, GroupRefusedError, RateLimitedError
} from './errors.ts'
import { RateLimiter } from '../utils/rate-limit.ts'
import { leafOf, members, newKeyPackage } from './identity.ts'
import { epochOf, sha256hex } from './groups.ts'
import type { GroupsService } from './groups.ts'
import type { GroupRecord } from './store.ts'
import type { GroupFrame } from './wire.ts'
import type { ClientState, KeyPackage, MlsPrivateMessage, PrivateKeyPackage } from 'ts-mls'

type Reply = Partial<GroupFrame> & { groupId: Uint8Array }
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const decoder = new TextDecoder()

/** Whether commit (term a, hash a) beats (term b, hash b): higher term, then lower hash. */
export function beats (termA: number, hashA: string, termB: number, hashB: string): boolean {
  return termA !== termB ? termA > termB : hashA < hashB
}

/** Of `candidates`, the first `k` in succession after `term` (the committer of term t is `list[(t - 1) mod n]`, as in `Inbound.committerOf`). */
export function successors (list: string[], term: number, candidates: string[], k: number): string[] {
  const out: string[] = []
  for (let t = term + 1; t <= term + list.length && out.length < k; t++) {
    const p = list[(t - 1) % list.length]
    if (p !== undefined && candidates.includes(p) && !out.includes(p)) out.push(p)
  }
  return out
}

export class Inbound {
  private readonly svc: GroupsService
  /** key packages handed out, waiting for a Welcome */
  private readonly keyPackages: Array<{ pub: KeyPackage, priv: PrivateKeyPackage, at: number }> = []
  /** application frames for an epoch not reached yet */
  private readonly future = new Map<string, Array<{ from: string, frame: GroupFrame, at: number }>>()
  private readonly audited = new WeakSet<object>()
  private readonly syncing = new Set<string>()
  private readonly rejoining = new Map<string, number>()
  readonly frames: RateLimiter
  private readonly kpRequests: RateLimiter

  constructor (svc: GroupsService) {
    this.svc = svc
    this.frames = new RateLimiter(svc.options.framesPerSecond, svc.options.framesPerSecond * 4, 10_000)
    this.kpRequests = new RateLimiter(svc.options.keyPackagesPerSecond, svc.options.keyPackagesPerSecond * 4, 10_000)
  }

  /** Report a rejected frame (once per error). */
  rejected (peer: string, code: string, message: string, groupId = '', frame?: GroupFrame, err?: unknown): void {
    if (typeof err === 'object' && err !== null) {
      if (this.audited.has(err)) return
      this.audited.add(err)
    }
    this.svc.audit({ type: 'groups.rejected', peer, groupId, code, message, ...(frame !== undefined ? { epoch: frame.epoch, term: frame.term } : {}) })
  }

  async handle (type: string, from: string, frame: GroupFrame, signal: AbortSignal): Promise<Reply> {
    try {
      switch (type) {
        case 'mls.keypackage': return await this.onKeyPackage(from, frame)
        case 'mls.commit': return await this.onCommit(from, frame)
        case 'mls.welcome': return await this.onWelcome(from, frame, signal)
        case 'mls.app': return await this.onApp(from, frame)
        case 'mls.heartbeat': return await this.onHeartbeat(from, frame)
        case 'mls.request': return await this.onRequest(from, frame, signal)
        case 'mls.sync': return await this.onSync(from, frame)
        case 'mls.status': return await this.onStatus(from, frame)
        default: throw new MalformedGroupFrameError(`unknown frame type ${type}`)
      }
    } catch (err) {
      const code = err instanceof GroupsError ? err.code : 'InvalidCommit'
      if (!(err instanceof GroupsError && err.meta?.repeat === true)) this.rejected(from, code, (err as Error).message, hex(frame.groupId), frame, err)
      throw err instanceof GroupsError ? err : new InvalidCommitError((err as Error).message)
    }
  }

  private async member (frame: GroupFrame, from: string): Promise<GroupRecord> {
    let rec = this.svc.groups.get(hex(frame.groupId))
    if (rec === undefined) throw new UnknownGroupError('unknown group')
    // a commit this node acknowledged may add `from` and still wait for its processing (`applyDelayMs`): let it run
    if (!members(rec.state).includes(from)) rec = await this.svc.settled(rec.id)
    if (!members(rec.state).includes(from)) throw new NotMemberError(`${from} is not a member`)
    return rec
  }

  /**
   * The committer of a term above the current one: the members in leaf order
   * take the terms in turn (`members[(term - 1) mod n]`; term 1 is the first
   * leaf, the creator). A function of the term alone, so two members that
   * took over concurrently agree on who holds the higher term.
   */
  committerOf (rec: GroupRecord, term: number): string {
    const list = members(rec.state)
    return list.length === 0 ? rec.committer : (list[(term - 1) % list.length] ?? rec.committer)
  }

  /** How many terms ahead `peer`'s next turn is (1 = the next term); it takes over after that many timeouts. */
  rankOf (rec: GroupRecord, peer: string): number {
    const n = members(rec.state).length
    for (let k = 1; k <= n; k++) if (this.committerOf(rec, rec.term + k) === peer) return k
    return 0
  }

  /** Accept `from` as committer of `term`, or throw. A valid higher term is adopted. */
  private checkCommitter (rec: GroupRecord, from: string, term: number): void {
    if (term < rec.term) throw new StaleTermError(`term ${term} is older than ${rec.term}`, { term: rec.term })
    if (term === rec.term) {
      if (from !== rec.committer) throw new NotCommitterError(`${from} is not the committer of term ${term}`)
      return
    }
    if (this.committerOf(rec, term) !== from) throw new NotCommitterError(`${from} is not the committer of term ${term}`)
    rec.term = term
    rec.committer = from
  }

  private async onKeyPackage (from: string, _frame: GroupFrame): Promise<Reply> {
    if (this.svc.components.acceptInvite?.(from) === false) throw new GroupRefusedError('invitations from this peer are refused')
    const take = this.kpRequests.take(from, this.svc.now())
    if (!take.allowed) throw new RateLimitedError('too many key package requests', { repeat: !take.firstRefusal })
    const kp = await newKeyPackage(this.svc.components.privateKey, this.svc.self, this.svc.cs)
    this.keyPackages.push({ pub: kp.publicPackage, priv: kp.privatePackage, at: this.svc.now() })
    while (this.keyPackages.length > 64) this.keyPackages.shift()
    return { groupId: new Uint8Array([0]), mls: encodeMlsMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: kp.publicPackage }) }
  }

  private async onCommit (from: string, frame: GroupFrame): Promise<Reply> {
    const rec = await this.member(frame, from)
    return this.svc.withLock(rec.id, async () => {
      this.checkCommitter(rec, from, frame.term)
      rec.lastHeartbeat = this.svc.now()
      const hash = sha256hex(frame.mls)
      const epoch = epochOf(rec)
      if (frame.epoch !== epoch) {
        const last = rec.last
        if (frame.epoch === epoch - 1 && last !== undefined && last.epoch === frame.epoch && rec.prev !== undefined) {
          if (hash === last.hash) return this.svc.frameOf(rec)
          if (beats(frame.term, hash, last.term, last.hash)) {
            this.svc.audit({ type: 'groups.rollback', peer: from, groupId: rec.id, epoch: frame.epoch, term: frame.term, message: `commit ${hash.slice(0, 16)} beats ${last.hash.slice(0, 16)}` })
            rec.state = rec.prev
            this.applyNext(rec, frame, from)
            return this.svc.frameFor(rec, frame.epoch + 1)
          }
        }
        if (frame.epoch > epoch) void this.catchUp(rec)
        throw new WrongEpochError(`commit for epoch ${frame.epoch}, this member is at ${epoch}`, { epoch, hash: rec.last?.hash ?? '', lastTerm: rec.last?.term ?? 0 })
      }
      this.applyNext(rec, frame, from)
      return this.svc.frameFor(rec, epoch + 1)
    })
  }

  /**
   * Queue the MLS processing of an accepted commit: called with the group lock
   * held, so it runs after the current section and before any later section
   * of this group. The ack goes out first: it means "passed every frame check
   * and queued", which keeps the committer's wait independent of how long
   * members take to process the commit. The processing waits `applyDelayMs`
   * unless the group is needed sooner (a frame, a send, a tick), so that it
   * does not take CPU from the acks the committer is still waiting for.
   */
  private applyNext (rec: GroupRecord, frame: GroupFrame, from: string): void {
    const mls = frame.mls.slice()
    const welcome = typeof frame.meta.welcome === 'string' ? { welcome: new Uint8Array(Buffer.from(frame.meta.welcome, 'base64')), welcomeTo: Array.isArray(frame.meta.welcomeTo) ? frame.meta.welcomeTo.map(String) : [] } : undefined
    void this.svc.withLockDeferred(rec.id, async () => this.apply(rec, mls, frame.term, from, welcome)).catch((err: unknown) => {
      this.rejected(from, err instanceof GroupsError ? err.code : 'InvalidCommit', (err as Error).message, rec.id, frame, err)
      void this.catchUp(rec)
    })
  }

  /** Process one commit (`committer`: the peer whose leaf must have made it, or undefined to accept any member's). */
  async apply (rec: GroupRecord, mls: Uint8Array, term: number, committer: string | undefined, welcome?: { welcome: Uint8Array, welcomeTo: string[] }): Promise<void> {
    const msg = decodeMlsMessage(mls, 0)?.[0]
    if (msg === undefined || (msg.wireformat !== 'mls_private_message' && msg.wireformat !== 'mls_public_message')) throw new InvalidCommitError('not a commit message')
    const epoch = epochOf(rec)
    const expected = committer === undefined ? undefined : leafOf(rec.state, committer)
    const result = await processMessage(msg, rec.state, emptyPskIndex, (incoming) => {
      if (incoming.kind !== 'commit') return 'reject'
      return expected === undefined || incoming.senderLeafIndex === expected ? 'accept' : 'reject'
    }, this.svc.cs)
    if (result.kind !== 'newState' || result.actionTaken !== 'accept') throw new InvalidCommitError('the commit was not made by the committer')
    const hash = sha256hex(mls)
    rec.prev = rec.state
    rec.prevUntil = this.svc.now() + this.svc.options.committerTimeoutMs * 2
    rec.state = result.newState
    delete rec.unclean
    rec.last = { epoch, term, hash }
    rec.log.push({ epoch, term, hash, commit: mls, at: this.svc.now(), ...welcome })
    while (rec.log.length > this.svc.options.commitLogSize) rec.log.shift()
    // only the last commit's Welcome can still be needed (a successor sends it); older ones only grew every save
    for (const e of rec.log.slice(0, -1)) { delete e.welcome; delete e.welcomeTo }
    if (rec.state.groupActiveState.kind === 'removedFromGroup') {
      this.svc.audit({ type: 'groups.removed', peer: this.svc.selfId, groupId: rec.id, epoch: epochOf(rec), term })
      await this.svc.forget(rec)
      return
    }
    await this.svc.save(rec)
    void this.flushFuture(rec)
  }

  private async onWelcome (from: string, frame: GroupFrame, signal: AbortSignal): Promise<Reply> {
    const msg = decodeMlsMessage(frame.mls, 0)?.[0]
    if (msg?.wireformat !== 'mls_welcome') throw new MalformedGroupFrameError('not a Welcome')
    let state: ClientState | undefined
    let used: unknown
    const fresh = this.svc.now() - this.svc.options.keyPackageTtlMs
    for (let i = this.keyPackages.length - 1; i >= 0; i--) if ((this.keyPackages[i]?.at ?? 0) < fresh) this.keyPackages.splice(i, 1)
    for (const kp of this.keyPackages) {
      try {
        state = await joinGroup(msg.welcome, kp.pub, kp.priv, emptyPskIndex, this.svc.cs, undefined, undefined, this.svc.config)
        used = kp
        break
      } catch {}
    }
    if (state === undefined) throw new UnexpectedWelcomeError('no key package of this node opens this Welcome')
    const id = hex(state.groupContext.groupId)
    const epoch = Number(state.groupContext.epoch)
    if (id !== hex(frame.groupId) || epoch !== frame.epoch) throw new UnexpectedWelcomeError('Welcome does not match its frame')
    const list = members(state)
    if (!list.includes(from) || !list.includes(this.svc.selfId)) throw new UnexpectedWelcomeError('Welcome sender is not a member')
    const known = this.svc.groups.get(id)
    if (known !== undefined && epochOf(known) >= epoch) throw new WrongEpochError('Welcome for an epoch this node has passed')
    // the commit must be settled: another member must already be at this epoch
    // the members the committer names as having acknowledged the commit, else any members
    const named = Array.isArray(frame.meta.confirm) ? frame.meta.confirm.filter((p): p is string => typeof p === 'string' && list.includes(p)) : undefined
    const others = (named ?? list).filter(p => p !== from && p !== this.svc.selfId).slice(0, 3)
    if (others.length > 0) {
      const answers = await Promise.allSettled(others.map(async p => this.svc.request(p, 'mls.status', { groupId: frame.groupId, epoch, term: frame.term }, signal)))
      const reached = answers.filter(a => a.status === 'fulfilled' || (a.reason instanceof GroupsError && a.reason.code !== 'PeerUnreachable'))
      const confirmed = answers.some(a => a.status === 'fulfilled' && a.value.epoch >= epoch)
      if (reached.length > 0 && !confirmed) throw new WelcomeBeforeCommitError(`no member has applied the commit of epoch ${epoch} yet`)
    }
    const rec: GroupRecord = {
      id, groupId: state.groupContext.groupId, name: String(frame.meta.name ?? ''), creator: String(frame.meta.creator ?? from),
      term: frame.term, committer: from, state, log: [], lastHeartbeat: this.svc.now(), lastUpdate: this.svc.now(),
      last: { epoch: epoch - 1, term: frame.term, hash: String(frame.meta.hash ?? '') }
    }
    // the key package is spent only now: a Welcome refused above can be sent again
    this.keyPackages.splice(this.keyPackages.findIndex(k => k === used), 1)
    await this.svc.save(rec)
    this.svc.groups.set(id, rec)
    this.svc.emit('joined', this.svc.info(rec))
    void this.flushFuture(rec)
    return this.svc.frameOf(rec)
  }

  private async onApp (from: string, frame: GroupFrame): Promise<Reply> {
    const rec = this.svc.groups.get(hex(frame.groupId))
    if (rec === undefined) {
      this.buffer(hex(frame.groupId), from, frame)
      return { groupId: frame.groupId }
    }
    return this.svc.withLock(rec.id, async () => {
      if (frame.epoch > epochOf(rec)) {
        this.buffer(rec.id, from, frame)
        return this.svc.frameOf(rec)
      }
      await this.decrypt(rec, from, frame)
      return this.svc.frameOf(rec)
    })
  }

  private buffer (id: string, from: string, frame: GroupFrame): void {
    if (!this.future.has(id) && this.future.size >= this.svc.options.maxGroups) throw new GroupRefusedError('too many groups with held messages')
    const list = (this.future.get(id) ?? []).filter(f => this.svc.now() - f.at < this.svc.options.epochBufferMs)
    if (list.length >= this.svc.options.maxEpochBuffer) throw new GroupRefusedError('too many messages for a future epoch')
    list.push({ from, frame: { ...frame, mls: frame.mls.slice() }, at: this.svc.now() })
    this.future.set(id, list)
  }

  private async flushFuture (rec: GroupRecord): Promise<void> {
    const list = this.future.get(rec.id)
    if (list === undefined) return
    const ready = list.filter(f => f.frame.epoch <= epochOf(rec))
    const rest = list.filter(f => f.frame.epoch > epochOf(rec))
    if (rest.length > 0) this.future.set(rec.id, rest)
    else this.future.delete(rec.id)
    for (const f of ready) {
      await this.svc.withLock(rec.id, async () => this.decrypt(rec, f.from, f.frame)).catch((err: unknown) => {
        this.rejected(f.from, err instanceof GroupsError ? err.code : 'InvalidMessage', (err as Error).message, rec.id, f.frame, err)
      })
    }
  }

  /** Decrypt an application frame; the MLS sender leaf must be the peer that sent the frame. */
  private async decrypt (rec: GroupRecord, from: string, frame: GroupFrame): Promise<void> {
    const msg = decodeMlsMessage(frame.mls, 0)?.[0]
    if (msg?.wireformat !== 'mls_private_message') throw new MalformedGroupFrameError('not an MLS private message')
    const pm = (msg as MlsPrivateMessage & { version: 'mls10' }).privateMessage
    const pmEpoch = pm.epoch
    const source = pmEpoch === rec.state.groupContext.epoch ? { secret: rec.state.keySchedule.senderDataSecret, tree: rec.state.ratchetTree } : (() => {
      const h = rec.state.historicalReceiverData.get(pmEpoch)
      if (h === undefined) throw new WrongEpochError(`no keys for epoch ${pmEpoch}`)
      return { secret: h.senderDataSecret, tree: h.ratchetTree }
    })()
    const sender = await decryptSenderData(pm, source.secret, this.svc.cs)
    const leaf = sender === undefined ? undefined : source.tree[sender.leafIndex * 2]
    const peer = leaf?.nodeType === 'leaf' ? decoder.decode(leaf.leaf.credential.credentialType === 'basic' ? leaf.leaf.credential.identity : new Uint8Array()) : undefined
    if (peer !== from) throw new NotMemberError('the MLS sender is not the peer that sent the frame')
    const out = await processPrivateMessage(rec.state, pm, emptyPskIndex, this.svc.cs)
    rec.state = out.newState
    this.svc.saveSoon(rec)
    if (out.kind !== 'applicationMessage') throw new InvalidArgumentError('expected an application message')
    const plain = out.message
    const ctLen = plain[0] ?? 0
    this.svc.emit('received', {
      groupId: rec.id, from, contentType: decoder.decode(plain.subarray(1, 1 + ctLen)), body: plain.slice(1 + ctLen), epoch: Number(pmEpoch)
    })
  }

  private async onHeartbeat (from: string, frame: GroupFrame): Promise<Reply> {
    const rec = await this.member(frame, from)
    const next = await this.svc.withLock(rec.id, async (): Promise<'none' | 'sync' | 'rejoin'> => {
      const wasCommitter = rec.committer === this.svc.selfId
      this.checkCommitter(rec, from, frame.term)
      rec.lastHeartbeat = this.svc.now()
      if (wasCommitter && rec.committer !== this.svc.selfId) this.svc.log('info', { group: rec.id, term: rec.term }, 'stepped down')
      const epoch = epochOf(rec)
      const hash = String(frame.meta.hash ?? '')
      const last = rec.last
      if (frame.epoch > epoch) return 'sync'
      if (frame.epoch === epoch && hash === (last?.hash ?? '')) {
        // the committer has our commit: the rollback state can go (written within saveDelayMs, not in the ack path)
        if (rec.prev !== undefined) { rec.prev = undefined; this.svc.saveSoon(rec) }
        return 'none'
      }
      if (last === undefined) return 'none'
      // this member applied a commit the committer does not have: roll it back if the committer's side wins
      //  - same epoch, other commit: higher term, then lower hash
      //  - the committer one epoch behind: only when our commit is from an older term (a deposed committer's)
      const loses = frame.epoch === epoch ? beats(frame.term, hash, last.term, last.hash)
        : frame.epoch === epoch - 1 && last.epoch === frame.epoch && last.term < frame.term
      if (!loses) return 'none'
      if (rec.prev === undefined || last.epoch !== epoch - 1) return 'rejoin'
      this.svc.audit({ type: 'groups.rollback', peer: from, groupId: rec.id, epoch: last.epoch, term: frame.term, message: `drops ${last.hash.slice(0, 16)}` })
      rec.state = rec.prev
      delete rec.prev
      rec.log = rec.log.filter(e => e.epoch < last.epoch)
      const top = rec.log.at(-1)
      if (top !== undefined) rec.last = { epoch: top.epoch, term: top.term, hash: top.hash }
      else delete rec.last
      await this.svc.save(rec)
      return frame.epoch > epochOf(rec) ? 'sync' : 'none'
    })
    if (next === 'sync') void this.catchUp(rec)
    if (next === 'rejoin') void this.rejoin(rec).catch(() => {})
    return this.svc.frameOf(rec)
  }

  private async onRequest (from: string, frame: GroupFrame, signal: AbortSignal): Promise<Reply> {
    const rec = await this.member(frame, from)
    const op = String(frame.meta.op)
    const peer = String(frame.meta.peer ?? from)
    if (op === 'takeover') {
      if (from !== rec.committer) throw new NotCommitterError('only the committer hands over')
      await this.svc.withLock(rec.id, async () => this.svc.takeOver(rec, Math.max(1, this.rankOf(rec, this.svc.selfId))))
      return this.svc.frameOf(rec)
    }
    if (rec.committer !== this.svc.selfId) throw new NotCommitterError(`${rec.committer} is the committer`, { committer: rec.committer, term: rec.term })
    if (op === 'add') {
      await this.svc.changeMembers(rec, { op, peer, kp: this.svc.parseKeyPackage(frame.mls, peer) }, signal)
    } else if (op === 'remove') {
      await this.svc.changeMembers(rec, { op, peer }, signal)
    } else if (op === 'update') {
      // a member asks for a new epoch (after an unclean stop): an empty commit gives everyone fresh keys
      await this.svc.withLock(rec.id, async () => this.svc.commit(rec, [], { exclude: [], welcome: [] }, signal))
    } else if (op === 'rejoin') {
      if (peer !== from) throw new InvalidArgumentError('a member can only rejoin itself')
      await this.svc.changeMembers(rec, { op, peer, kp: this.svc.parseKeyPackage(frame.mls, from) }, signal)
    } else {
      throw new InvalidArgumentError(`unknown request ${op}`)
    }
    return this.svc.frameOf(rec)
  }

  private async onSync (from: string, frame: GroupFrame): Promise<Reply> {
    const rec = await this.member(frame, from)
    const commits = rec.log.filter(e => e.epoch >= frame.epoch).map(e => ({ epoch: e.epoch, term: e.term, commit: Buffer.from(e.commit).toString('base64') }))
    return this.svc.frameOf(rec, { meta: { commits, hash: rec.last?.hash ?? '' } })
  }

  private async onStatus (from: string, frame: GroupFrame): Promise<Reply> {
    const rec = await this.member(frame, from)
    return this.svc.withLock(rec.id, async () => this.svc.frameOf(rec, { meta: { hash: rec.last?.hash ?? '' } }))
  }

  /** Catch up with the committer from its commit log; if that cannot work, rejoin. One at a time per group. */
  async catchUp (rec: GroupRecord): Promise<void> {
    if (rec.committer === this.svc.selfId || !this.svc.isStarted() || this.syncing.has(rec.id)) return
    this.syncing.add(rec.id)
    try {
      const reply = await this.svc.request(rec.committer, 'mls.sync', this.svc.frameOf(rec), this.svc.signal(this.svc.options.requestTimeoutMs))
      const settled = await this.svc.withLock(rec.id, async () => {
        const commits = Array.isArray(reply.meta.commits) ? reply.meta.commits as Array<{ epoch: number, term: number, commit: string }> : []
        for (const c of commits) {
          if (c.epoch !== epochOf(rec)) continue
          await this.apply(rec, new Uint8Array(Buffer.from(c.commit, 'base64')), c.term, undefined)
        }
        return !this.svc.groups.has(rec.id) || (reply.epoch === epochOf(rec) && String(reply.meta.hash ?? '') === (rec.last?.hash ?? ''))
      })
      // still apart and nothing to roll back to: only a fresh leaf helps
      if (!settled && (reply.epoch > epochOf(rec) || rec.prev === undefined)) await this.rejoin(rec)
    } catch (err) {
      this.svc.log('info', { group: rec.id, err: (err as Error).message }, 'catch-up failed, rejoining')
      await this.rejoin(rec).catch(() => {})
    } finally {
      this.syncing.delete(rec.id)
    }
  }

  /** Ask the committer to replace this node's leaf with a fresh key package (recovery and self-update). At most one at a time. */
  async rejoin (rec: GroupRecord): Promise<void> {
    const now = this.svc.now()
    if ((this.rejoining.get(rec.id) ?? 0) > now) return
    this.rejoining.set(rec.id, now + this.svc.options.requestTimeoutMs * 3)
    try {
      this.svc.audit({ type: 'groups.rejoin', peer: this.svc.selfId, groupId: rec.id, epoch: epochOf(rec), term: rec.term })
      const kp = await newKeyPackage(this.svc.components.privateKey, this.svc.self, this.svc.cs)
      this.keyPackages.push({ pub: kp.publicPackage, priv: kp.privatePackage, at: now })
      const mls = encodeMlsMessage({ version: 'mls10', wireformat: 'mls_key_package', keyPackage: kp.publicPackage })
      await this.svc.request(rec.committer, 'mls.request', this.svc.frameOf(rec, { mls, meta: { op: 'rejoin', peer: this.svc.selfId } }), this.svc.signal(this.svc.options.requestTimeoutMs * 3))
    } finally {
      this.rejoining.delete(rec.id)
    }
  }
}
