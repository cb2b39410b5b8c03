/**
 * @packageDocumentation
 *
 * Key rotation with succession, above the layers it drives (`src/trust`,
 * `src/messaging`, `src/cards`, `src/groups`, `src/node`); `src/identity`
 * keeps the pure parts (the succession record, the key files). Only the
 * composition root (`src/agent`), the daemon and the CLI import this module.
 *
 * - {@link rotateHome} / {@link migrateHome}: the rotation on disk (keys,
 *   then what the home keeps under the node key), resumable after a crash;
 * - {@link SuccessorService}: the old ID during the grace period (tells
 *   trusted peers, answers `Moved`, points its DHT card to the new ID);
 * - {@link SuccessionFollower}: the peer side, following a peer's rotation
 *   from its notice or from a `Moved` answer to a message.
 *
 * @example
 *
 * ```ts
 * import { rotateHome } from './index.ts'
 *
 * // the node on this home is stopped; its next start tells the trusted peers
 * const state = await rotateHome('/tmp/agentnet-a', { graceMs: 24 * 3600_000 })
 * console.log(`${state.old} → ${state.new}`)
 * ```
 */

export { finishRotation, migrateHome, OLD_GROUPS_DIR, rotateHome } from './migrate.ts'
export { DEFAULT_ANNOUNCE_RETRY_MS, SuccessorService } from './successor.ts'
export type { RotationStatus, SuccessorComponents, SuccessorInit } from './successor.ts'
export { groupMembership, repointPetnames, SuccessionFollower, swapGroupMember } from './follow.ts'
export type { FollowerComponents, GroupMembership } from './follow.ts'
