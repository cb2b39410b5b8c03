/**
 * Defaults of the red-team harness and the dialog audit.
 *
 * @module
 */

/** Most turns played per scenario (`--turns`). */
export const DEFAULT_MAX_TURNS = 8

/** How long one turn waits for the target's reply, ms. */
export const DEFAULT_TURN_TIMEOUT_MS = 15_000

/** How long one attacker-LLM call may take, ms. */
export const DEFAULT_LLM_TIMEOUT_MS = 30_000

/** Most bytes of an attacker-LLM response read. */
export const MAX_LLM_RESPONSE_BYTES = 1024 * 1024

/** Longest scenario file read, bytes. */
export const MAX_SCENARIO_FILE_BYTES = 1024 * 1024

/** Default category of a canary given without one. */
export const DEFAULT_CANARY_CATEGORY = 'canary'

/** Report format version. */
export const REPORT_VERSION = 1

/** The attack families every library scenario belongs to. */
export const FAMILIES = ['direct', 'authority', 'pretext', 'escalation', 'impersonation', 'format', 'injection', 'aggregation'] as const

/** Messages of a dialog log inspected together (fewer guard calls), UTF-16 units. */
export const AUDIT_BATCH_CHARS = 16384

/** Progress on stderr every this many bytes of a dialog log. */
export const AUDIT_PROGRESS_BYTES = 8 * 1024 * 1024

/** Input size from which the dialog audit uses worker threads (with ≥ 3 CPUs). */
export const AUDIT_WORKERS_MIN_BYTES = 32 * 1024 * 1024
