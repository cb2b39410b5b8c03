/**
 * Errors of the audit log. Each has a stable `code` (also on the class, for
 * `err.code === AuditDataTooLargeError.code` checks).
 */

import { AgentnetError } from '../errors/index.ts'
import type { ErrorCode } from '../errors/index.ts'

export class AuditError extends AgentnetError { override readonly code: ErrorCode = 'AuditError' }

/** A bad argument: an event type that is not a short dotted name, data that is not a JSON object, a bad `n`… */
export class AuditInvalidArgumentError extends AuditError { override readonly code = 'AuditInvalidArgument' }

/** The event's `data`, serialised, is larger than `maxDataBytes` */
export class AuditDataTooLargeError extends AuditError { override readonly code = 'AuditDataTooLarge' }

/** `append` after `close` */
export class AuditLogClosedError extends AuditError { override readonly code = 'AuditLogClosed' }

/** There is no audit log at the given path */
export class AuditLogNotFoundError extends AuditError { override readonly code = 'AuditLogNotFound' }

/**
 * The file system refused an operation (open, write, fsync, head update).
 * `cause` holds the original error. An append that fails with it was not
 * acknowledged; its record may or may not be in the log.
 */
export class AuditIOError extends AuditError { override readonly code = 'AuditIO' }
