/**
 * @packageDocumentation
 *
 * Trust: who may talk to this node's agents. Private by default — agent
 * services answer trusted peers only, everyone else gets `UntrustedPeer` —
 * with trust established by a signed handshake carrying a justification, by
 * an invite code, or by configuration (`staticPeers`), and withdrawn by
 * revocation, which the revoked peer is told about and which closes its
 * connections at once.
 *
 * ## Trust store
 *
 * `<home>/trust.json` (mode 0600, replaced atomically on every decision): per
 * peer `{state, since, updatedAt, reason, direction, via, note?}` and the open
 * invites by the SHA-256 of their secret (see `store.ts`). States: `trusted`,
 * `pending-inbound` (it asked us), `pending-outbound` (we asked it),
 * `rejected` (we rejected it), `rejected-by-peer`, `revoked` (we revoked it),
 * `revoked-by-peer` (it revoked us). `pending-inbound` records, which
 * strangers create, live in the append-only journal
 * `<home>/trust-pending.jsonl` instead (one fsync'd line per change), so a
 * flood of requests never rewrites `trust.json`. A file that cannot be read
 * as a store fails `start()` with `CorruptTrustStore` and is left untouched.
 * Static peers from the config are trusted without a handshake and never
 * written; a `revoked` or `revoked-by-peer` record overrides them.
 *
 * ## Handshake protocol `/agentnet/trust/2.0.0`
 *
 * Allowed on untrusted and on limited (relayed) connections. One exchange per
 * stream: the initiator writes one frame, the responder answers with one frame
 * and closes. Each frame is one varint-length-prefixed agent-protocol
 * `SignedMessage` (see `src/protocol`; at most 16 KiB after the prefix),
 * sealed by `sealEnvelope` and checked by `openEnvelope` like any agent
 * message, but signed under its own scheme:
 *
 * ```
 * signature = Ed25519 by the sender's peer key over
 *             uvarint(14) || "agentnet-trust" || uvarint(21) || "/agentnet/trust/2.0.0" || uvarint(len(payload)) || payload
 * ```
 *
 * | `Message` field | trust use |
 * |---|---|
 * | `version` | `1` (the envelope version) |
 * | `from`, `to` | sender and recipient; `from` must be the Noise-authenticated peer, `to` this node |
 * | `service` | the message type: initiator `request`, `approve`, `reject`, `revoke`, `invite`, `succession`; reply `pending`, `approve`, `ok`, `error` |
 * | `kind` | initiator `REQUEST`; reply `RESPONSE`, `ERROR` for `error` |
 * | `id` | a fresh UUID in every message |
 * | `in_reply_to` | in a reply, the `id` of the message answered (empty in an error reply to a frame that failed its checks or was not read: `RateLimited`, `Busy`); empty in initiators |
 * | `nonce`, `timestamp` | as for agent messages (16 random bytes, ms) |
 * | `ttl`, `token` | empty |
 * | `content_type`, `body` | `request`: the justification (≤ 1024 UTF-8 bytes, no control characters but TAB/LF, no bidi overrides); `reject`, `revoke`: an optional reason; `invite`: the code; `succession`: the record — each as `text/plain; charset=utf-8`, empty body and content type when absent. `error`: `application/json` `{"code","message"}`. Others: empty. |
 *
 * A received frame is checked in this order, the first failure answering an
 * `error` with its code: the eight envelope checks of `openEnvelope`
 * (`MalformedFrame`, `UnsupportedVersion`, `BodyTooLarge`, `SenderMismatch`,
 * `WrongRecipient`, `BadSignature`, `StaleMessage` / `FutureMessage` against
 * `[now − 60 s, now + 30 s]`, `Replay`), then the trust content
 * (`MalformedFrame` for a kind, type, content type or body that does not fit
 * the table, `ReasonTooLong`, `InvalidReason`). Before reading, a per-peer
 * token bucket (5/s, burst 10) answers `RateLimited`, and a cap on
 * concurrent handshakes `Busy`. Replies are checked the same way by the
 * initiator and must carry its `id` in `in_reply_to`.
 *
 * | initiator | responder does | reply |
 * |---|---|---|
 * | `request` | stores `pending-inbound` (one entry per peer, a repeat updates the reason; see *Pending requests*) and emits `pending`; if it had asked the initiator itself (`pending-outbound`), trusts it at once (mutual); if it trusts it already, says so; if it rejected or revoked it, refuses | `pending`, `approve`, or `error` `Refused` / `PendingFull` |
 * | `approve` | trusts the initiator if it had asked it (`pending-outbound`) | `ok`, or `error` `NotRequested` |
 * | `reject` | records `rejected-by-peer` if it had asked | `ok`, or `error` `NotRequested` |
 * | `revoke` | records `revoked-by-peer` if it holds a record of the initiator (a peer it rejected or revoked stays so) | `ok` |
 * | `invite` | checks the code (below), uses it, trusts the initiator | `approve`, or `error` `InviteInvalid` / `InviteExpired` / `InviteUsedUp` / `Refused` |
 * | `succession` | moves the sender's trust to its new key (`src/identity/rotation.ts`) | `ok`, or `error` with a succession code |
 *
 * ## Pending requests
 *
 * A request costs its sender one throwaway key, so the queue is bounded by
 * where requests come from (`pending.ts`): at most `maxPendingPerSource` (50)
 * from one source network — the IPv4 /24 or IPv6 /48 of the connection's
 * remote address, or the relay of a relayed connection — and at most
 * `maxPending` (1,000) in all. When the queue is full, a newcomer from a
 * network with fewer entries than the most-represented one takes the place
 * of that network's oldest request (`trust.request-evicted`); otherwise, and
 * when its own network holds its share, it gets `PendingFull`. A request is
 * dropped `pendingTtlMs` (7 days) after it was first made
 * (`trust.request-expired`; a repeat does not extend it).
 *
 * ## Invite codes
 *
 * ```
 * code      = base64url(invite) without padding (canonical: the one encoding of its bytes)
 * invite    = 0x01
 *          || secret                        16 random bytes
 *          || uvarint(expiresAt)            ms since the epoch
 *          || uvarint(uses)                 1..1000
 *          || uvarint(len(peerId)) || peerId        inviter, multihash bytes (38 for Ed25519)
 *          || uvarint(n) || n × (uvarint(len(addr)) || addr)   n ≤ 8 multiaddrs (binary), without /p2p/<inviter>
 *          || signature                     64 bytes
 * signature = Ed25519 by the inviter over
 *             uvarint(14) || "agentnet-trust" || uvarint(28) || "/agentnet/trust/invite/1.0.0" || uvarint(len(m)) || m
 *             where m = every byte of `invite` before the signature
 * ```
 *
 * uvarints are minimal LEB128, at most 8 bytes. Sizes: 171 characters with
 * no address, 195 with two TCP/IPv4 addresses. The inviter stores `sha256(secret)` with
 * the expiry, uses and uses left. The invitee checks the signature against the
 * peer ID in the code and the expiry, dials the addresses and sends an
 * `invite` message; the inviter checks the signature (its own key), expiry,
 * that it holds the invite and that uses are left, takes one use (durably),
 * trusts the invitee and answers `approve`, on which the invitee trusts the
 * inviter. A peer that already used an invite may present it again without
 * using another use.
 *
 * ## Revocation
 *
 * `revoke(peer)` records `revoked` (the gate refuses the peer from that
 * moment), sends it a signed `revoke` (best effort, 2 s), aborts every
 * connection to it, and calls `onRevoke(peer)` (the node revokes the peer's
 * session tokens there). The revoked node records `revoked-by-peer`, and its
 * {@link TrustService.outboundCheck} throws `RevokedByPeer`.
 *
 * ## Replay protection
 *
 * Trust frames are envelopes, so their nonces go into a `ReplayCache` like
 * agent messages: the node passes its own (`components.replayCache`, the one
 * messaging uses, written to `replay-cache.bin` at a clean stop and subject
 * to the same floor after a crash); a service built without one keeps an
 * in-memory cache of the same class (window 60 s, 1,024 per peer, 100,000 in
 * total).
 *
 * ## Wiring (node assembly)
 *
 * - `messaging.addInboundGate(trust.gate)`; call `trust.outboundCheck(peer)`
 *   before `messaging.send` so agents get `RevokedByPeer` without a round trip.
 * - `onRevoke: peer => tokens.revoke(peer)`; `audit: auditLog`.
 * - strict mode: `connectionGater: createTrustGater(() => trustService, { allowPeers })`
 *   in `createLibp2p`, then construct the service with `strict: true`.
 * - IPC notifications: `trust.on('pending', …)`, `trust.on('changed', …)`.
 *
 * ## Audit
 *
 * Every decision is passed to `components.audit.append(type, data)` after the
 * store is written: `trust.request-received`, `trust.request-sent`,
 * `trust.request-refused`, `trust.approved`, `trust.approved-by-peer`,
 * `trust.rejected`, `trust.rejected-by-peer`, `trust.mutual`, `trust.revoked`,
 * `trust.revoked-by-peer`, `trust.forgotten`, `trust.invite-created`,
 * `trust.invite-used`, `trust.invite-accepted`, `trust.invite-refused`,
 * `trust.invite-cancelled`, `trust.handshake-refused` (frames failing their
 * checks; rate limiting once per episode), `trust.request-evicted`,
 * `trust.request-expired`. `trust.request-received` and
 * `trust.request-refused` carry the `source` network. `data.peer` names the peer.
 *
 * @example
 *
 * ```ts
 * import { trust } from './index.ts'
 *
 * // libp2p, privateKey and a started MessagingService `msg` as in src/node
 * const service = trust({ home: '/tmp/agentnet-b', publicServices: ['card'] })({ libp2p, privateKey, onRevoke: peer => tokens.revoke(peer) })
 * await service.start()
 * msg.addInboundGate(service.gate)              // untrusted peers now get UntrustedPeer
 * service.on('pending', req => console.log(`${req.peerId} asks: ${req.reason}`))
 *
 * // on the other node
 * await other.request(bPeerId, 'I am the weather agent of Alice')   // → { state: 'pending-outbound' }
 * // back on B
 * await service.approve(aPeerId)                 // both trust each other now
 *
 * const { code } = await service.createInvite({ ttlMs: 3_600_000, uses: 1 })
 * // someone else: await trustOfC.acceptInvite(code) → { peerId: B, state: 'trusted' }
 * ```
 */

import type { Clock } from '../utils/clock.ts'
import { TrustService } from './trust.ts'
import type { TrustState, TrustDirection, TrustVia } from './store.ts'
import type { ReplayCache } from '../protocol/index.ts'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'

export { TrustService } from './trust.ts'
export { createTrustGater } from './gater.ts'
export type { TrustGaterOptions } from './gater.ts'
export * from './errors.ts'
export * from './constants.ts'
export {
  checkReason,
  decodeTrustFrame,
  ERROR_CONTENT_TYPE,
  INITIATOR_TYPES,
  openTrustFrame,
  readHandshake,
  sealTrustFrame,
  TEXT_CONTENT_TYPE
} from './codec.ts'
export type { HandshakeFields, HandshakeMessage, HandshakeType, InitiatorType, OpenTrustContext, ReplyType } from './codec.ts'
export { decodeInvite, encodeInvite, INVITE_SIGNATURE_SCHEME } from './invite-code.ts'
export type { Invite } from './invite-code.ts'
export { PendingQueue, sourceOf, UNKNOWN_SOURCE } from './pending.ts'
export type { Admission } from './pending.ts'
export { TRUST_STATES } from './store.ts'
export type { TrustState, TrustDirection, TrustVia, TrustDocument, StoredPeer, StoredInvite } from './store.ts'

export interface TrustInit {
  /** Node home folder; the store is `<home>/trust.json` */
  home: string
  /** Peer IDs trusted without a handshake (config); not written to the store. @default [] */
  staticPeers?: string[]
  /** Services that answer untrusted peers too (never revoked ones). @default [] */
  publicServices?: string[]
  /** Strict mode: {@link TrustService.admitsInbound} (and so {@link createTrustGater}) refuses unknown peers. @default false */
  strict?: boolean
  /** Peers strict mode always admits (bootstrap and relay peers) */
  allowPeers?: () => Iterable<string | PeerId>
  /** In strict mode, admit unknown peers while a live invite exists, so an invitee can present it. @default true */
  strictAdmitsInvitees?: boolean
  /**
   * Most `pending-inbound` requests held. When full, a newcomer from a
   * network with fewer entries replaces the oldest entry of the
   * most-represented network; otherwise it gets `PendingFull`. @default 1000
   */
  maxPending?: number
  /** Most pending requests from one source network (IPv4 /24, IPv6 /48, or one relay); more get `PendingFull`. @default 50 */
  maxPendingPerSource?: number
  /** A pending request is dropped this long after it was first made, ms. @default 604800000 (7 days) */
  pendingTtlMs?: number
  /** Most live invites. @default 1000 */
  maxInvites?: number
  /** Handshake messages accepted per peer per second (token bucket refill). @default 5 */
  ratePerSecond?: number
  /** Token bucket size per peer. @default 10 */
  rateBurst?: number
  /** Peers whose bucket is remembered (least recently used out). @default 10000 */
  maxRateLimitedPeers?: number
  /** Handshakes processed at once, all peers together; more get `Busy`. @default 64 */
  maxConcurrentHandshakes?: number
  /** Handshakes processed at once for one peer; more get `Busy`. @default 4 */
  maxConcurrentPerPeer?: number
  /** Concurrent inbound trust streams per connection (libp2p resets more). @default 16 */
  maxInboundStreams?: number
  /** Timeout of one handshake exchange, dial included, ms. @default 10000 */
  timeoutMs?: number
  /** How long `revoke` waits for the peer to take note before closing its connections, ms. @default 2000 */
  revokeNoticeTimeoutMs?: number
  /** Oldest accepted handshake timestamp, ms before now. @default 60000 */
  replayWindowMs?: number
  /** Newest accepted handshake timestamp, ms after now. @default 30000 */
  maxClockSkewMs?: number
  /** Replay cache bound per peer (own cache only). @default 1024 */
  replayMaxPerPeer?: number
  /** Replay cache bound in total (own cache only). @default 100000 */
  replayMaxTotal?: number
  /** Follow a key-rotation succession record signed by the old key alone (a stolen old key can make one). @default false */
  acceptOldKeyOnlySuccession?: boolean
}

/** Where trust decisions are recorded (the audit log of `src/audit`). */
export interface TrustAuditLog {
  append(type: string, data: Record<string, unknown>): Promise<unknown>
}

export interface TrustComponents {
  /** Wall clock for windows and expiry. @default Date.now */
  clock?: Clock
  /**
   * The node's replay cache (the one agent messages use, persisted with it
   * at a clean stop). Its window must be at least `replayWindowMs`.
   * @default a cache of its own, bounded by `replayMaxPerPeer` / `replayMaxTotal`, not persisted
   */
  replayCache?: ReplayCache
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'hangUp' | 'getConnections' | 'peerId' | 'getMultiaddrs'>
  privateKey: PrivateKey
  logger?: Logger
  /** Told of every trust decision, invite use and refused handshake */
  audit?: TrustAuditLog
  /** Called when this node revokes a peer, after its connections are closed (revoke its session tokens here) */
  onRevoke?: (peer: PeerId) => void | Promise<void>
  /** Called after a trusted peer's key rotation moved its trust to its new ID (re-point petnames here) */
  onSuccession?: (old: string, next: string) => void | Promise<void>
}

/** One peer as {@link TrustService.list} shows it. */
export interface TrustEntry {
  peerId: string
  state: TrustState
  /** ms: when it entered this state */
  since: number
  /** ms: last change */
  updatedAt: number
  /** The justification of the request (theirs or ours), or how trust came about */
  reason: string
  direction: TrustDirection
  via: TrustVia
  /** The reason given with the last reject / revoke, or the other side's justification in a mutual request */
  note?: string
  /** Listed in `staticPeers` */
  static: boolean
}

/** A request waiting for this node's decision. */
export interface PendingRequest {
  peerId: string
  reason: string
  since: number
  updatedAt: number
}

/** Payload of the `changed` event. */
export interface TrustChange {
  peerId: string
  state: TrustState | 'none'
  previous: TrustState | 'none'
  entry: TrustEntry | undefined
}

/** Events of {@link TrustService} (a node `EventEmitter`). */
export interface TrustEvents {
  /** A new pending request, or a repeat with a new reason */
  pending: [PendingRequest]
  /** Any change of a peer's record */
  changed: [TrustChange]
}

export interface TrustAbortOptions {
  signal?: AbortSignal
}

export interface RequestResult {
  peerId: string
  /** `trusted` when the peer approved at once, else `pending-outbound` */
  state: TrustState | 'none'
}

export interface DecisionResult {
  peerId: string
  state: TrustState
  /** Whether the peer acknowledged the signed notice */
  delivered: boolean
  /** Why it was not delivered */
  error?: string
}

export interface CreateInviteOptions {
  /** Lifetime, ms (1 ms .. 1 year). @default 86400000 (one day) */
  ttlMs?: number
  /** Peers that may use it (1..1000). @default 1 */
  uses?: number
  /** Addresses to put in the code (at most 8). @default the node's own addresses (the first 8) */
  addresses?: Array<string | Multiaddr>
}

export interface CreatedInvite {
  code: string
  /** Hex SHA-256 of the secret: the invite's name in the store and the audit log */
  id: string
  expiresAt: number
  uses: number
  addresses: string[]
}

export interface AcceptedInvite {
  /** The inviter, now trusted */
  peerId: string
  state: 'trusted'
  addresses: string[]
}

export interface InviteInfo {
  id: string
  createdAt: number
  expiresAt: number
  uses: number
  usesLeft: number
  usedBy: string[]
}

export interface TrustStats {
  /** Records in the store */
  peers: number
  /** `pending-inbound` records */
  pending: number
  /** Source networks those come from */
  pendingSources: number
  /** Invites in the store (live or used up, not yet expired) */
  invites: number
  /** Peers the rate limiter tracks */
  rateLimitedPeers: number
  /** Nonces (and watermarks) the handshake replay cache holds */
  replayEntries: number
  /** Handshakes being processed */
  inFlight: number
  /** Inbound handshake streams seen */
  handshakes: number
  /** Refused by the rate limiter */
  rateLimited: number
  /** Refused as too many at once */
  busy: number
  /** Refused for any other reason (frame checks, policy) */
  refused: number
}

/** The service factory, libp2p style: `trust(init)(components)`. */
export function trust (init: TrustInit): (components: TrustComponents) => TrustService {
  return (components) => new TrustService(components, init)
}
