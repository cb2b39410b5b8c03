/**
 * Protocol identifiers, limits and the defaults of every {@link TrustInit}
 * option.
 *
 * @module
 */

/**
 * The libp2p protocol of the trust handshake. 2.0.0: the frames are
 * agent-protocol envelopes (1.0.0 had a JSON frame of its own).
 */
export const TRUST_PROTOCOL = '/agentnet/trust/2.0.0'
/** The trust store, in the node's home folder (mode 0600). */
export const TRUST_FILE = 'trust.json'
/** Version of the `trust.json` format. */
export const TRUST_FILE_VERSION = 1

/** Version byte that opens every invite code. */
export const INVITE_VERSION = 1
/** Payload type of invite signatures (domain `agentnet-trust`). */
export const INVITE_PAYLOAD_TYPE = '/agentnet/trust/invite/1.0.0'

/** Largest justification (`reason`) accepted, in UTF-8 bytes: 1 KiB. */
export const MAX_REASON_BYTES = 1024
/** Largest handshake frame body (after the length prefix) accepted or sent, bytes. */
export const MAX_FRAME_BYTES = 16 * 1024
/** Largest invite code accepted, in base64url characters. */
export const MAX_INVITE_CODE_CHARS = 4096
/** Most addresses an invite carries. */
export const MAX_INVITE_ADDRESSES = 8
/** Largest single address in an invite, bytes. */
export const MAX_INVITE_ADDRESS_BYTES = 255
/** Most uses one invite may allow. */
export const MAX_INVITE_USES = 1000
/** Longest invite lifetime, ms (one year). */
export const MAX_INVITE_TTL_MS = 365 * 24 * 3600 * 1000
/** Bytes of the random secret in an invite. */
export const INVITE_SECRET_BYTES = 16
/** Longest `message` text of an `error` reply, characters. */
export const MAX_ERROR_MESSAGE_CHARS = 512

/** Default {@link TrustInit.publicServices}. */
export const DEFAULT_PUBLIC_SERVICES: readonly string[] = []
/** Default {@link TrustInit.strict}. */
export const DEFAULT_STRICT = false
/** Default {@link TrustInit.strictAdmitsInvitees}. */
export const DEFAULT_STRICT_ADMITS_INVITEES = true
/** Default {@link TrustInit.maxPending}. */
export const DEFAULT_MAX_PENDING = 1000
/** Default {@link TrustInit.maxPendingPerSource}. */
export const DEFAULT_MAX_PENDING_PER_SOURCE = 50
/** Default {@link TrustInit.pendingTtlMs}: seven days. */
export const DEFAULT_PENDING_TTL_MS = 7 * 24 * 3600 * 1000
/** The pending-request journal, beside {@link TRUST_FILE} (mode 0600, appended). */
export const PENDING_FILE = 'trust-pending.jsonl'
/** Default {@link TrustInit.maxInvites}. */
export const DEFAULT_MAX_INVITES = 1000
/** Default {@link TrustInit.ratePerSecond}. */
export const DEFAULT_RATE_PER_SECOND = 5
/** Default {@link TrustInit.rateBurst}. */
export const DEFAULT_RATE_BURST = 10
/** Default {@link TrustInit.maxRateLimitedPeers}. */
export const DEFAULT_MAX_RATE_LIMITED_PEERS = 10_000
/** Default {@link TrustInit.maxConcurrentHandshakes}. */
export const DEFAULT_MAX_CONCURRENT_HANDSHAKES = 64
/** Default {@link TrustInit.maxConcurrentPerPeer}. */
export const DEFAULT_MAX_CONCURRENT_PER_PEER = 4
/** Default {@link TrustInit.maxInboundStreams}. */
export const DEFAULT_MAX_INBOUND_STREAMS = 16
/** Default {@link TrustInit.timeoutMs}. */
export const DEFAULT_TIMEOUT_MS = 10_000
/** Default {@link TrustInit.replayWindowMs} (at most the replay cache's window). */
export const DEFAULT_REPLAY_WINDOW_MS = 60_000
/** Default {@link TrustInit.maxClockSkewMs}. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 30_000
/** Default {@link TrustInit.replayMaxPerPeer}. */
export const DEFAULT_REPLAY_MAX_PER_PEER = 1024
/** Default {@link TrustInit.replayMaxTotal}. */
export const DEFAULT_REPLAY_MAX_TOTAL = 100_000
/** Default {@link CreateInviteOptions.ttlMs}: one day. */
export const DEFAULT_INVITE_TTL_MS = 24 * 3600 * 1000
/** Default {@link CreateInviteOptions.uses}. */
export const DEFAULT_INVITE_USES = 1
/** How long {@link TrustService.revoke} waits for the peer to take note before closing, ms. */
export const DEFAULT_REVOKE_NOTICE_TIMEOUT_MS = 2_000
