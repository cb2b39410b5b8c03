/**
 * Defaults of {@link GroupsInit} and the fixed parameters of the MLS protocol
 * on `/agentnet/mls/2.0.0`.
 *
 * @module
 */

/** The libp2p protocol ID of group frames. */
export const MLS_PROTOCOL = '/agentnet/mls/2.0.0'

/** The MLS cipher suite every group uses (RFC 9420 suite 1). */
export const CIPHER_SUITE = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'

/** Version byte that opens every frame body. */
export const BODY_VERSION = 1

/** Largest frame accepted on the wire (a Welcome for a large group is the biggest). */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024

/**
 * How many members, the next ones in succession, receive a commit's Welcome
 * with the commit, so that a successor can still send it if the committer
 * dies before it does. Sending it to every member cost a signature over tens
 * of kB per member at 100 members; losing the committer and these successors
 * together during one add loses that add's Welcome (the joiner is re-added).
 */
export const WELCOME_HOLDERS = 3

/** Name of the folder (inside the node's home) that holds one encrypted file per group. */
export const STATE_DIR = 'groups'

/** Defaults, all in ms unless named otherwise. */
export const DEFAULTS = {
  /** committer → members heartbeat interval */
  heartbeatIntervalMs: 5_000,
  /** silence after which the member whose turn is the next term takes over (the one k terms ahead waits k times this) */
  committerTimeoutMs: 20_000,
  /** how long a committer waits for the acks of one commit before applying it without the missing ones */
  ackTimeoutMs: 5_000,
  /** one request (dial, frame, reply) */
  requestTimeoutMs: 10_000,
  /** a member asks for a fresh leaf (post-compromise security) this often; 0 = never */
  selfUpdateIntervalMs: 3_600_000,
  /** application messages to an unreachable member are retried for this long */
  offlineWindowMs: 600_000,
  /** most undelivered application frames kept per group */
  maxPendingPerGroup: 1_000,
  /** a message for an epoch this node has not reached yet is held this long */
  epochBufferMs: 30_000,
  /** most frames held for a future epoch, per group */
  maxEpochBuffer: 256,
  /** commits kept per group to let members that were offline catch up */
  commitLogSize: 64,
  /** MLS: receiver keys of this many past epochs are kept, then deleted */
  retainEpochs: 4,
  /** largest group body sent or accepted, bytes */
  maxBodyBytes: 1_048_576,
  /** replay window of frames (30 000 .. 300 000) */
  replayWindowMs: 60_000,
  /** key packages handed out and not yet used are forgotten after this */
  keyPackageTtlMs: 600_000,
  /**
   * a member processes a commit it acknowledged this long after the ack, or at once when anything else needs the
   * group: the committer's round waits for every member's ack, and members that share CPU (nodes on one host, the
   * bench's processes of 25 members) spent it on 25 ms of MLS processing each while the last acks were still due
   */
  applyDelayMs: 250,
  /** ratchet advances of application messages are written within this delay (commits at once) */
  saveDelayMs: 250,
  /** inbound frames per second from one peer (burst: 4 ×) */
  framesPerSecond: 1_000,
  /** key package requests per second from one peer (each costs a key generation; burst: 4 ×) */
  keyPackagesPerSecond: 2,
  /** most groups this node takes part in */
  maxGroups: 256,
  /** most members of one group */
  maxMembers: 1_000
} as const
