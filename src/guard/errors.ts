/**
 * Errors of the guard. Each class has a stable `code` from `src/errors`. No
 * message, field or finding of these errors ever holds a registered value or
 * matched text: findings carry offsets, labels and categories only.
 *
 * @module
 */

import { AgentnetError } from '../errors/index.ts'
import type { GuardFinding } from './types.ts'

/** Every `code` of a {@link GuardError}. */
export type GuardErrorCode = 'LeakBlocked' | 'InvalidParams' | 'CorruptGuardStore' | 'GuardLimit' | 'GuardNotStarted'

/** Common base: `err instanceof GuardError` catches every error of this module. */
export abstract class GuardError extends AgentnetError {
  abstract override readonly code: GuardErrorCode
}

/** The policy blocks this message: nothing was sent. `findings` lists what was found (never the text). */
export class LeakBlockedError extends GuardError {
  override readonly code = 'LeakBlocked'
  readonly findings: GuardFinding[]

  constructor (findings: GuardFinding[], message?: string) {
    const blocked = findings.filter(f => f.allowed !== true)
    const what = [...new Set(blocked.map(f => f.label ?? f.category))].join(', ')
    super(message ?? `message blocked by the leakage guard: ${blocked.length} finding(s) not allowed for this peer (${what})`)
    this.findings = findings
  }
}

/** An argument is missing, of the wrong type, or out of range. The message names the field, never its content. */
export class InvalidGuardInputError extends GuardError { override readonly code = 'InvalidParams' }

/** The persisted-values file cannot be read as a guard store. It is left untouched and never overwritten. */
export class CorruptGuardStoreError extends GuardError {
  override readonly code = 'CorruptGuardStore'
  readonly file: string

  constructor (file: string, reason: string) {
    super(`guard store ${file} is unreadable (${reason}); it was left untouched`)
    this.file = file
  }
}

/** `maxValues` or `maxPolicies` reached. */
export class GuardLimitError extends GuardError { override readonly code = 'GuardLimit' }

/** A `persist: true` value before the store was loaded by `start()`, or after a failed load. */
export class GuardNotStartedError extends GuardError { override readonly code = 'GuardNotStarted' }
