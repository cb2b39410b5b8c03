/**
 * Recommended bounds, thresholds and file names of the posture review. Each
 * threshold is a default of {@link ReviewOptions}.
 *
 * @module
 */

import { signatureScheme } from '../protocol/index.ts'

/** The signed baseline, in the home folder (0600) */
export const BASELINE_FILE = 'posture-baseline.json'
/** Version of the baseline format */
export const BASELINE_VERSION = 1
/**
 * Signature scheme of baselines (libp2p signed-envelope input, like the
 * project's other signed objects): a baseline signature is never valid as a
 * message, token, card or trust signature, nor the reverse.
 */
export const BASELINE_SIGNATURE_SCHEME = signatureScheme('agentnet-posture', '/agentnet/posture/baseline/1.0.0')
/** Guard policies, when the guard keeps them in the home folder */
export const GUARD_POLICIES_FILE = 'guard-policies.json'
/** Largest baseline file read, bytes */
export const MAX_BASELINE_BYTES = 4 * 1024 * 1024

const DAY = 24 * 3600 * 1000

/** Replay window above this is wider than needed (ms); default 60 s */
export const DEFAULT_MAX_REPLAY_WINDOW_MS = 120_000
/** Future clock skew above this is too tolerant (ms); default 30 s */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 60_000
/** Token lifetimes above five minutes give a stolen token too long */
export const DEFAULT_MAX_TOKEN_LIFETIME_MS = 5 * 60_000
/** Keys older than this should be rotated */
export const DEFAULT_MAX_KEY_AGE_MS = 365 * DAY
/** Trusted peers not seen (or, lacking data, trusted) for this long are reviewed */
export const DEFAULT_STALE_PEER_MS = 90 * DAY
/** Invites open longer than this are reviewed */
export const DEFAULT_MAX_INVITE_AGE_MS = 7 * DAY
/** Pending requests older than this are reviewed */
export const DEFAULT_MAX_PENDING_AGE_MS = 7 * DAY
/** Audit records further apart than this are reported as a gap */
export const DEFAULT_AUDIT_GAP_MS = 30 * DAY
/** How long `doctor` waits for the running node's socket */
export const DEFAULT_LIVE_TIMEOUT_MS = 3_000

/** Files of the home that hold secrets or decisions: group/other access is high severity */
export const SENSITIVE_FILES: readonly string[] = ['identity.key', 'identity.old.key', 'identity.next.key', 'succession.json', 'trust.json', 'trust-pending.jsonl', 'tokens.json', 'audit.log', 'audit.head', 'replay-cache.bin', 'agentnet.sock', BASELINE_FILE, GUARD_POLICIES_FILE]
/** A running node reviews its own posture (metrics, dashboard, `node.posture`) at most this often, ms */
export const POSTURE_MAX_AGE_MS = 5 * 60_000
/** How long a scrape or `node.posture` waits for a review in progress before answering with the previous counts, ms */
export const POSTURE_WAIT_MS = 2_000
