/**
 * The peer side of a key rotation: what this node does when a peer it knows
 * rotated its key, whether it learns it from the peer's notice (the trust
 * protocol) or from a `Moved` answer to a message it sent to the old ID.
 *
 * Trust moves in `src/trust` (`TrustService.follow`, which verifies the
 * record per this node's policy); then, here: petnames re-point, tokens held
 * from the old ID are dropped (revocations carry over), group memberships
 * this node commits for swap the old ID for the new one, and the old ID is
 * remembered as forwarding to the new one, so a later message an agent
 * addresses to the old ID goes to the new one.
 *
 * @module
 */

import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { AddressBook } from '../addressbook/index.ts'
import { RemoteMessageError } from '../messaging/index.ts'
import { successorFromNote } from '../identity/rotation.ts'
import type { GroupsService } from '../groups/index.ts'
import type { TokenService } from '../tokens/index.ts'
import type { TrustService } from '../trust/index.ts'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'

/** Addresses taken from a `Moved` answer at most */
const MAX_MOVED_ADDRESSES = 16

/** Multicodec of `/p2p` */
const P2P_CODE = 421

/** The `addresses` of a `Moved` answer that parse as multiaddrs */
function movedAddresses (value: unknown): Multiaddr[] {
  if (!Array.isArray(value)) return []
  const out: Multiaddr[] = []
  for (const item of value.slice(0, MAX_MOVED_ADDRESSES)) {
    if (typeof item !== 'string' || item.length > 512) continue
    try {
      // without the /p2p suffix: the peer store keeps transport addresses
      out.push(multiaddr(item).decapsulateCode(P2P_CODE))
    } catch {}
  }
  return out
}

/** Rotations followed one after another at most (A rotated, then rotated again) */
const MAX_CHAIN = 8

export interface FollowerComponents {
  home: string
  /** The node's address book (its cache sees the re-pointed petnames at once). Default: one on `home` */
  book?: AddressBook
  /** This node's peer ID */
  self: () => string
  trust: Pick<TrustService, 'follow' | 'get'>
  tokens?: Pick<TokenService, 'follow'>
  groups?: () => GroupsService | undefined
  /** Keep addresses of a peer (the peer store) */
  addAddresses?: (peer: PeerId, addresses: Multiaddr[]) => Promise<void>
  audit?: (type: string, data: Record<string, string | number | boolean | string[]>) => Promise<void>
  logger?: Logger
}

/**
 * Follows peers' key rotations. {@link SuccessionFollower.onTrustMoved} is
 * the trust service's `onSuccession` hook; {@link SuccessionFollower.followMoved}
 * handles a `Moved` answer; {@link SuccessionFollower.resolve} maps an old ID
 * to the newest ID known for it.
 */
export class SuccessionFollower {
  private readonly components: FollowerComponents
  /** old ID → new ID, learnt in this run (the trust store's notes keep them across restarts) */
  private readonly successors = new Map<string, string>()

  constructor (components: FollowerComponents) {
    this.components = components
  }

  /** Trust moved from `old` to `next` (a verified record): petnames, tokens and groups follow */
  async onTrustMoved (old: string, next: string): Promise<void> {
    this.successors.set(old, next)
    await repointPetnames(this.components.home, old, next, this.components.book)
    await this.components.tokens?.follow(old, next)
    // in the background: the new ID dials in once told, and may not be reachable yet
    const groups = this.components.groups?.()
    void swapGroupMember(groups === undefined ? undefined : groupMembership(groups), this.components.self(), old, next).catch(err => {
      this.components.logger?.warn({ err: (err as Error).message, old, next }, 'could not swap a rotated member in its groups')
    })
  }

  /** The newest ID a rotated peer is known by (itself when it did not rotate) */
  resolve (peer: PeerId): PeerId {
    let id = peer.toString()
    for (let i = 0; i < MAX_CHAIN; i++) {
      const next = this.successors.get(id) ?? this.fromTrustStore(id)
      if (next === undefined || next === id) break
      id = next
    }
    return id === peer.toString() ? peer : peerIdFromString(id)
  }

  /** A succession this node followed earlier: the old ID's entry is `revoked` with the note `applySuccession` wrote (peers cannot set notes on that state) */
  private fromTrustStore (id: string): string | undefined {
    const entry = this.components.trust.get(id)
    return entry?.state === 'revoked' ? successorFromNote(entry.note) : undefined
  }

  /**
   * `err` came back from a message sent to `to`: if it is a `Moved` answer
   * from that peer (signed by it), follow the succession record it carries
   * and return the new ID to send to. Undefined when `err` is not a `Moved`
   * answer from `to`; throws the `SuccessionError` when the record is refused.
   */
  async followMoved (err: unknown, to: PeerId, service: string): Promise<PeerId | undefined> {
    if (!(err instanceof RemoteMessageError) || err.code !== 'Moved' || err.remote !== to.toString()) return undefined
    const next = await this.followRecord(to, err.message, 'moved', service)
    // where the new ID listens, as the old ID says: hints only (a dial checks the peer ID)
    const hints = movedAddresses(err.details.addresses)
    if (next !== undefined && hints.length > 0) {
      await this.components.addAddresses?.(next, hints).catch((e: Error) => { this.components.logger?.debug({ err: e.message }, 'could not keep the new ID\'s addresses') })
    }
    return next
  }

  /**
   * `to` could not be reached: if its agent card in the DHT is the pointer
   * a rotated node publishes for its old ID during the grace period (signed
   * by the old key), follow the succession record it carries. Undefined
   * when the card is absent or not a pointer.
   */
  async followPointer (to: PeerId, lookup: (peer: PeerId) => Promise<{ metadata: Record<string, unknown> }>, service: string): Promise<PeerId | undefined> {
    let record: unknown
    try {
      record = (await lookup(to)).metadata.succession
    } catch (err) {
      this.components.logger?.debug({ peer: to.toString(), err: (err as Error).message }, 'no pointer card for an unreachable peer')
      return undefined
    }
    if (typeof record !== 'string') return undefined
    return this.followRecord(to, record, 'card', service)
  }

  /**
   * Verify the record (both signatures, per the policy: `TrustService.follow`),
   * which must say that `old` moved on; move trust, petnames and tokens if
   * `old` is trusted; record it in the audit log; return the new ID.
   */
  private async followRecord (old: PeerId, record: string, via: 'moved' | 'card', service: string): Promise<PeerId | undefined> {
    const s = await this.components.trust.follow(old, record)
    if (s.old !== old.toString()) return undefined
    this.successors.set(s.old, s.new)
    await this.components.audit?.('rotation.followed', { old: s.old, new: s.new, via, service, signedBy: s.signedBy, trustMoved: s.moved })
    this.components.logger?.info({ old: s.old, new: s.new, via }, 'a peer rotated its key: following it to its new ID')
    return peerIdFromString(s.new)
  }
}

/** Peer side: petnames that named the old ID now name the new one */
export async function repointPetnames (home: string, old: string, next: string, book = new AddressBook(home)): Promise<string[]> {
  const moved: string[] = []
  for (const { name, peerId } of await book.list()) {
    if (peerId === old) {
      await book.add(name, next)
      moved.push(name)
    }
  }
  return moved
}

/** What {@link swapGroupMember} needs of the groups service */
export interface GroupMembership {
  list: () => Array<{ groupId: string, committer: string, members: string[] }>
  add: (args: { groupId: string, peer: string }) => Promise<unknown>
  remove: (args: { groupId: string, peer: string }) => Promise<unknown>
  /**
   * The group's committer `old` rotated away: become committer now if this
   * node is next in the succession after it; true if this node commits now
   */
  takeOverFrom?: (groupId: string, old: string) => Promise<boolean>
}

/**
 * {@link GroupMembership} of the groups service. A committer that rotated
 * its key while stopped left its group state behind with the old key, so it
 * will never commit again: the member next in the succession (the
 * deterministic order of `src/groups`, `term + k`) takes over at once, exactly as it would
 * after `k` committer timeouts, instead of leaving the group without a
 * committer until then.
 */
export function groupMembership (groups: GroupsService): GroupMembership {
  return {
    list: () => groups.list(),
    add: async args => groups.add(args),
    remove: async args => groups.remove(args),
    takeOverFrom: async (groupId, old) => {
      const rec = groups.group(groupId)
      if (rec.committer !== old) return rec.committer === groups.selfId
      const n = groups.list().find(g => g.groupId === groupId)?.members.length ?? 0
      for (let k = 1; k <= n; k++) {
        const next = groups.inbound.committerOf(rec, rec.term + k)
        if (next === old) continue
        if (next !== groups.selfId) return false
        await groups.withLock(rec.id, async () => { await groups.takeOver(rec, k) })
        return true
      }
      return false
    }
  }
}

/**
 * Peer side: in every group this node commits for, the rotated member's old
 * ID is replaced by its new one (add the new ID, which gets a Welcome, then
 * remove the old). Other members leave it to their committer, which got the
 * same notice. When the rotated member was the committer itself (it rotated
 * while stopped, without handing over), the next member in the succession
 * takes over first. The new ID may not be reachable yet when the notice
 * arrives: each step is retried. Resolves to the groups changed.
 */
export async function swapGroupMember (groups: GroupMembership | undefined, self: string, old: string, next: string, options: { attempts?: number, delayMs?: number } = {}): Promise<string[]> {
  if (groups === undefined) return []
  const attempts = options.attempts ?? 10
  const delayMs = options.delayMs ?? 1000
  const retry = async (step: () => Promise<unknown>): Promise<boolean> => {
    for (let i = 0; i < attempts; i++) {
      try {
        await step()
        return true
      } catch {
        await new Promise(resolve => setTimeout(resolve, delayMs))
      }
    }
    return false
  }
  const changed: string[] = []
  for (const g of groups.list()) {
    if (!g.members.includes(old)) continue
    const commits = g.committer === self || (g.committer === old && await groups.takeOverFrom?.(g.groupId, old).catch(() => false) === true)
    if (!commits) continue
    const added = g.members.includes(next) || await retry(async () => groups.add({ groupId: g.groupId, peer: next }))
    if (added && await retry(async () => groups.remove({ groupId: g.groupId, peer: old }))) changed.push(g.groupId)
  }
  return changed
}
