/**
 * Application messages: encrypt once, fan out to every member by peer ID,
 * and keep what could not be delivered for `offlineWindowMs` (bounded by
 * `maxPendingPerGroup`), re-sent when the peer connects and on every tick.
 *
 * @module
 */

import { createApplicationMessage, encodeMlsMessage, zeroOutUint8Array } from 'ts-mls'
import { GroupRefusedError, GroupsError, InvalidArgumentError, UnknownGroupError } from './errors.ts'
import { members } from './identity.ts'
import { encodeBody } from './wire.ts'
import { epochOf } from './groups.ts'
import type { GroupsService } from './groups.ts'
import type { AbortOptions } from './index.ts'
import type { GroupRecord } from './store.ts'
import type { GroupFrame } from './wire.ts'
import type { PeerId } from '@libp2p/interface'

interface Pending { peer: string, bytes: Uint8Array, frame: GroupFrame, until: number }

export class Delivery {
  private readonly svc: GroupsService
  /** undelivered application frames, per group */
  readonly pending = new Map<string, Pending[]>()

  constructor (svc: GroupsService) {
    this.svc = svc
  }

  /** Encrypt `body` for the group and send it to every other member. */
  async send (args: { groupId: string, body: Uint8Array, contentType?: string }, options: AbortOptions = {}): Promise<{ epoch: number, delivered: number, queued: number }> {
    const rec = this.svc.group(args.groupId)
    if (!(args.body instanceof Uint8Array) || args.body.length > this.svc.options.maxBodyBytes) throw new InvalidArgumentError(`body must be bytes, at most ${this.svc.options.maxBodyBytes}`)
    const ct = new TextEncoder().encode(args.contentType ?? 'application/octet-stream')
    if (ct.length > 255) throw new InvalidArgumentError('contentType too long')
    const plain = new Uint8Array(1 + ct.length + args.body.length)
    plain[0] = ct.length
    plain.set(ct, 1)
    plain.set(args.body, 1 + ct.length)
    const { epoch, to, frame } = await this.svc.withLock(rec.id, async () => {
      // a commit queued before this section (applyDelayMs) may have removed this node
      if (this.svc.groups.get(rec.id) !== rec) throw new UnknownGroupError(`no group ${rec.id}`)
      if (rec.unclean === true) {
        void this.svc.refresh(rec).catch(() => {})
        throw new GroupRefusedError('this node stopped uncleanly: the group moves to a new epoch before it sends again; retry shortly')
      }
      const out = await createApplicationMessage(rec.state, plain, this.svc.cs)
      rec.state = out.newState
      out.consumed.forEach(zeroOutUint8Array)
      this.svc.saveSoon(rec)
      const mls = encodeMlsMessage({ version: 'mls10', wireformat: 'mls_private_message', privateMessage: out.privateMessage })
      return { epoch: epochOf(rec), to: members(rec.state).filter(p => p !== this.svc.selfId), frame: this.svc.frameOf(rec, { mls }) }
    })
    const signal = this.svc.signal(this.svc.options.requestTimeoutMs, options.signal)
    // one body for every member; each envelope only names its recipient
    const body = encodeBody(frame)
    const results = await Promise.allSettled(to.map(async peer => this.svc.request(peer, 'mls.app', body, signal)))
    let delivered = 0
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') delivered++
      else this.queue(rec, to[i] ?? '', frame)
    })
    return { epoch, delivered, queued: to.length - delivered }
  }

  queue (rec: GroupRecord, peer: string, frame: Partial<GroupFrame> & { groupId: Uint8Array }): void {
    const list = this.pending.get(rec.id) ?? []
    list.push({ peer, bytes: encodeBody(frame), frame: frame as GroupFrame, until: this.svc.now() + this.svc.options.offlineWindowMs })
    while (list.length > this.svc.options.maxPendingPerGroup) list.shift()
    this.pending.set(rec.id, list)
  }

  readonly onConnect = (evt: CustomEvent<PeerId>): void => {
    void this.redeliver(evt.detail.toString())
  }

  /** Re-send queued application frames (to one peer, or to all). */
  async redeliver (peer?: string): Promise<void> {
    const now = this.svc.now()
    for (const [id, list] of this.pending) {
      const rec = this.svc.groups.get(id)
      const keep: Pending[] = []
      for (const p of list) {
        if (p.until < now || rec === undefined || !members(rec.state).includes(p.peer)) continue
        if (peer !== undefined && p.peer !== peer) { keep.push(p); continue }
        try {
          await this.svc.request(p.peer, 'mls.app', p.frame, this.svc.signal(this.svc.options.requestTimeoutMs))
        } catch {
          keep.push(p)
        }
      }
      if (keep.length === 0) this.pending.delete(id)
      else this.pending.set(id, keep)
    }
  }

  /**
   * Send a Welcome; a joiner that cannot yet confirm the commit with another
   * member (`WelcomeBeforeCommit`: that member is still catching up) is tried
   * again, two heartbeats (at most 5 s) later, up to 5 times.
   */
  async deliverWelcome (peer: string, frame: Partial<GroupFrame> & { groupId: Uint8Array }): Promise<void> {
    for (let attempt = 0; attempt < 5 && this.svc.isStarted(); attempt++) {
      try {
        await this.svc.request(peer, 'mls.welcome', frame, this.svc.signal(this.svc.options.requestTimeoutMs))
        return
      } catch (err) {
        if (!(err instanceof GroupsError) || (err.code !== 'WelcomeBeforeCommit' && err.code !== 'PeerUnreachable')) return
        await new Promise(resolve => setTimeout(resolve, Math.min(this.svc.options.heartbeatIntervalMs * 2, 5_000)).unref())
      }
    }
  }
}
