/**
 * @packageDocumentation
 *
 * MLS (RFC 9420) groups over libp2p without a broker, on ts-mls, protocol
 * `/agentnet/mls/2.0.0`. One committer per group (its creator first) orders
 * every change: members send requests (add, remove, rejoin / self-update) to
 * it; it creates a commit without applying it, sends it to every member,
 * applies it once the online members have acknowledged it, and only then sends
 * the Welcome to added members. Commits and heartbeats carry `(epoch, term)`;
 * members accept them only for their epoch and from the committer of the
 * highest valid term. When the committer is silent for `committerTimeoutMs`,
 * the next member in leaf order takes over with `term + 1`. Of two commits for
 * one epoch the higher term wins, then the lower commit hash, never arrival
 * order; a member left behind or on a losing branch rolls back, catches up from
 * the committer's commit log, or is re-added (remove + add) automatically.
 *
 * Every frame is a signed envelope of `src/protocol` (domain `agentnet-mls`),
 * opened by the project's one verification core (sender = Noise peer,
 * recipient, signature, freshness, replay). MLS credentials name the member's
 * peer ID and its leaf signature key is the peer's Ed25519 key.
 *
 * @example
 *
 * ```TypeScript
 * import { createLibp2p } from 'libp2p'
 * import { groups } from './src/groups/index.ts'
 *
 * const node = await createLibp2p({ privateKey, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
 * const service = groups({ home: '/tmp/agent-a' })({ libp2p: node, privateKey, audit: (e) => console.log(e) })
 * await service.start()
 * const { groupId } = await service.create({ name: 'team' })
 * await service.add({ groupId, peer: bobPeerId })
 * service.on('received', (m) => console.log(m.from, new TextDecoder().decode(m.body)))
 * await service.send({ groupId, body: new TextEncoder().encode('hello team'), contentType: 'text/plain' })
 * ```
 */

import { GroupsService } from './groups.ts'
import type { GroupsLibp2p } from './wire.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'

export { GroupsService } from './groups.ts'
export { DEFAULTS as GROUPS_DEFAULTS, MLS_PROTOCOL, CIPHER_SUITE } from './constants.ts'
export * from './errors.ts'
export { encodeBody, decodeBody, decodeReply, sealFrame, sendRawFrame, FRAME_TYPES } from './wire.ts'
export type { FrameType, GroupFrame, GroupsLibp2p } from './wire.ts'
export { peerAuthenticationService, credentialPeer } from './identity.ts'

/** Options; every one has a default in `constants.ts`. Times in ms. */
export interface GroupsInit {
  /** The node's home folder: group state lives in `<home>/groups/`. */
  home: string
  heartbeatIntervalMs?: number
  committerTimeoutMs?: number
  ackTimeoutMs?: number
  requestTimeoutMs?: number
  /** 0 disables the periodic self-update */
  selfUpdateIntervalMs?: number
  offlineWindowMs?: number
  maxPendingPerGroup?: number
  epochBufferMs?: number
  maxEpochBuffer?: number
  commitLogSize?: number
  retainEpochs?: number
  maxBodyBytes?: number
  replayWindowMs?: number
  keyPackageTtlMs?: number
  saveDelayMs?: number
  /** how long an acknowledged commit waits for its processing unless the group is needed sooner */
  applyDelayMs?: number
  framesPerSecond?: number
  keyPackagesPerSecond?: number
  maxGroups?: number
  maxMembers?: number
}

/** One rejected frame or notable decision, for the audit log. */
export interface GroupAuditEvent {
  type: 'groups.rejected' | 'groups.takeover' | 'groups.rejoin' | 'groups.removed' | 'groups.rollback'
  peer: string
  groupId: string
  code?: string
  message?: string
  epoch?: number
  term?: number
}

export interface GroupsComponents {
  /** The node (dial, handle, connection events). */
  libp2p: GroupsLibp2p
  /** The node key: signs frames, is the MLS leaf signature key, and keys the state encryption. */
  privateKey: PrivateKey
  logger?: Logger
  /** Rejections and recoveries; the lead connects it to the audit log. */
  audit?: (event: GroupAuditEvent) => void
  /** Injectable clock, ms since the epoch. @default Date.now */
  clock?: () => number
  /** Whether to hand a key package to (be invited by) `peer`. @default every peer */
  acceptInvite?: (peer: string) => boolean
}

/** A group as {@link GroupsService.list} shows it. */
export interface GroupInfo {
  groupId: string
  name: string
  epoch: number
  term: number
  committer: string
  members: string[]
}

/** Payload of the `received` event (`service.on('received', m => …)`). */
export interface GroupMessage {
  groupId: string
  from: string
  body: Uint8Array
  contentType: string
  epoch: number
}

/** Events of {@link GroupsService} (a node `EventEmitter`). */
export interface GroupsEvents {
  received: [GroupMessage]
  /** this node joined a group (Welcome accepted) */
  joined: [GroupInfo]
  /** this node was removed from a group or left it */
  removed: [{ groupId: string }]
}

export interface AbortOptions {
  signal?: AbortSignal
}

/** The service factory, libp2p style: `groups(init)(components)`. */
export function groups (init: GroupsInit): (components: GroupsComponents) => GroupsService {
  return (components) => new GroupsService(components, init)
}
