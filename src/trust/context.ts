/**
 * What the parts of the trust service share: the resolved options, the
 * signers, the replay cache and the records, and small helpers.
 *
 * @module
 */

import { InvalidArgumentError, toPeer } from '../protocol/index.ts'
import {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  DEFAULT_MAX_CONCURRENT_HANDSHAKES,
  DEFAULT_MAX_CONCURRENT_PER_PEER,
  DEFAULT_MAX_INBOUND_STREAMS,
  DEFAULT_MAX_INVITES,
  DEFAULT_MAX_PENDING,
  DEFAULT_MAX_PENDING_PER_SOURCE,
  DEFAULT_MAX_RATE_LIMITED_PEERS,
  DEFAULT_PENDING_TTL_MS,
  DEFAULT_RATE_BURST,
  DEFAULT_RATE_PER_SECOND,
  DEFAULT_REPLAY_MAX_PER_PEER,
  DEFAULT_REPLAY_MAX_TOTAL,
  DEFAULT_REPLAY_WINDOW_MS,
  DEFAULT_REVOKE_NOTICE_TIMEOUT_MS,
  DEFAULT_STRICT,
  DEFAULT_STRICT_ADMITS_INVITEES,
  DEFAULT_TIMEOUT_MS
} from './constants.ts'
import type { TrustRecords } from './records.ts'
import type { TrustComponents, TrustInit } from './index.ts'
import type { MessageSigner, ReplayCache } from '../protocol/index.ts'
import type { PeerId } from '@libp2p/interface'

export type ResolvedInit = Required<Omit<TrustInit, 'allowPeers' | 'staticPeers' | 'publicServices'>>

/** Shared by the service façade and its parts. */
export interface TrustContext {
  readonly components: TrustComponents
  readonly init: ResolvedInit
  readonly records: TrustRecords
  readonly self: PeerId
  /** Signs trust frames ({@link TRUST_SIGNATURE_SCHEME}) */
  readonly signer: MessageSigner
  /** The node's replay cache when it passed one, else the service's own */
  readonly replayCache: ReplayCache
  readonly now: () => number
  /** Append an audit record (errors are logged, never thrown) */
  audit(type: string, peer: string | undefined, data: Record<string, unknown>): Promise<void>
}

function positive (name: string, value: number | undefined, fallback: number, integer = true, min = Number.MIN_VALUE): number {
  if (value === undefined) return fallback
  if (!(value >= min) || (integer && !Number.isSafeInteger(value)) || !Number.isFinite(value)) {
    throw new InvalidArgumentError(`${name} must be a ${min === 0 ? 'non-negative' : 'positive'} ${integer ? 'integer' : 'number'}`)
  }
  return value
}

/** Every option with its default, checked. @throws {InvalidArgumentError} */
export function resolveInit (init: TrustInit): ResolvedInit {
  if (typeof init.home !== 'string' || init.home.length === 0) throw new InvalidArgumentError('home must be a directory path')
  return {
    home: init.home,
    strict: init.strict ?? DEFAULT_STRICT,
    strictAdmitsInvitees: init.strictAdmitsInvitees ?? DEFAULT_STRICT_ADMITS_INVITEES,
    maxPending: positive('maxPending', init.maxPending, DEFAULT_MAX_PENDING),
    maxPendingPerSource: positive('maxPendingPerSource', init.maxPendingPerSource, DEFAULT_MAX_PENDING_PER_SOURCE),
    pendingTtlMs: positive('pendingTtlMs', init.pendingTtlMs, DEFAULT_PENDING_TTL_MS),
    maxInvites: positive('maxInvites', init.maxInvites, DEFAULT_MAX_INVITES),
    ratePerSecond: positive('ratePerSecond', init.ratePerSecond, DEFAULT_RATE_PER_SECOND, false),
    rateBurst: positive('rateBurst', init.rateBurst, DEFAULT_RATE_BURST),
    maxRateLimitedPeers: positive('maxRateLimitedPeers', init.maxRateLimitedPeers, DEFAULT_MAX_RATE_LIMITED_PEERS),
    maxConcurrentHandshakes: positive('maxConcurrentHandshakes', init.maxConcurrentHandshakes, DEFAULT_MAX_CONCURRENT_HANDSHAKES),
    maxConcurrentPerPeer: positive('maxConcurrentPerPeer', init.maxConcurrentPerPeer, DEFAULT_MAX_CONCURRENT_PER_PEER),
    maxInboundStreams: positive('maxInboundStreams', init.maxInboundStreams, DEFAULT_MAX_INBOUND_STREAMS),
    timeoutMs: positive('timeoutMs', init.timeoutMs, DEFAULT_TIMEOUT_MS),
    revokeNoticeTimeoutMs: positive('revokeNoticeTimeoutMs', init.revokeNoticeTimeoutMs, DEFAULT_REVOKE_NOTICE_TIMEOUT_MS),
    replayWindowMs: positive('replayWindowMs', init.replayWindowMs, DEFAULT_REPLAY_WINDOW_MS),
    // 0 is allowed, as in `messaging.maxClockSkewMs`: no timestamp ahead of this node's clock
    maxClockSkewMs: positive('maxClockSkewMs', init.maxClockSkewMs, DEFAULT_MAX_CLOCK_SKEW_MS, true, 0),
    replayMaxPerPeer: positive('replayMaxPerPeer', init.replayMaxPerPeer, DEFAULT_REPLAY_MAX_PER_PEER),
    replayMaxTotal: positive('replayMaxTotal', init.replayMaxTotal, DEFAULT_REPLAY_MAX_TOTAL),
    acceptOldKeyOnlySuccession: init.acceptOldKeyOnlySuccession === true
  }
}

export function anySignal (signals: Array<AbortSignal | undefined>): AbortSignal {
  return AbortSignal.any(signals.filter((s): s is AbortSignal => s !== undefined))
}

/** A peer we can hold a handshake with: Ed25519, not ourselves. @throws {InvalidArgumentError} */
export function toRemote (peer: PeerId | string, self: PeerId): PeerId {
  const remote = toPeer(peer)
  if (remote.type !== 'Ed25519') throw new InvalidArgumentError('agentnet peers have Ed25519 peer IDs')
  if (remote.equals(self)) throw new InvalidArgumentError('a node cannot hold a trust relationship with itself')
  return remote
}
