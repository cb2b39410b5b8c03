/**
 * Errors of the audit log. Each has a stable `code` (also on the class, for
 * `err.code === AuditDataTooLargeError.code` checks).
 */

import { AgentnetError } from '../errors/index.ts'
import type { ErrorCode } from '../errors/index.ts'

export class AuditError extends AgentnetError {
  static override readonly code: ErrorCode = 'AuditError'
  override readonly code: ErrorCode = 'AuditError'
  override name = 'AuditError'
}

/** A bad argument: an event type that is not a short dotted name, data that is not a JSON object, a bad `n`… */
export class AuditInvalidArgumentError extends AuditError {
  static override readonly code = 'AuditInvalidArgument'
  override readonly code = 'AuditInvalidArgument'
  override name = 'AuditInvalidArgumentError'
}

/** The event's `data`, serialised, is larger than `maxDataBytes` */
export class AuditDataTooLargeError extends AuditError {
  static override readonly code = 'AuditDataTooLarge'
  override readonly code = 'AuditDataTooLarge'
  override name = 'AuditDataTooLargeError'
}

/** `append` after `close` */
export class AuditLogClosedError extends AuditError {
  static override readonly code = 'AuditLogClosed'
  override readonly code = 'AuditLogClosed'
  override name = 'AuditLogClosedError'
}

/** There is no audit log at the given path */
export class AuditLogNotFoundError extends AuditError {
  static override readonly code = 'AuditLogNotFound'
  override readonly code = 'AuditLogNotFound'
  override name = 'AuditLogNotFoundError'
}

/**
 * The file system refused an operation (open, write, fsync, head update).
 * `cause` holds the original error. An append that fails with it was not
 * acknowledged; its record may or may not be in the log.
 */
export class AuditIOError extends AuditError {
  static override readonly code = 'AuditIO'
  override readonly code = 'AuditIO'
  override name = 'AuditIOError'
}
