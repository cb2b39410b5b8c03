/**
 * Errors of the red-team harness. No message holds a canary, a reply or a
 * matched value.
 *
 * @module
 */

import { AgentnetError } from '../errors/index.ts'

/** A scenario file that does not parse or misses a field. */
export class InvalidScenarioError extends AgentnetError { override readonly code = 'InvalidScenario' }

/** The attacker LLM failed: timeout, HTTP error, malformed reply. */
export class AttackerLlmError extends AgentnetError { override readonly code = 'AttackerLlmFailed' }

/** A dialog-log line that is not `{sender, recipient, text}`. */
export class InvalidDialogLogError extends AgentnetError { override readonly code = 'InvalidDialogLog' }
