/**
 * Errors of the messaging layer. Each has a stable `code`, the string that
 * travels in `error` envelopes and in JSON-RPC `data.code`.
 */

import { CodedError } from '../errors/index.ts'

export { BusyError } from '../errors/index.ts'
import type { ErrorCode, ForeignCode } from '../errors/index.ts'
import type { GuardedText } from '../outbox/index.ts'

/** A messaging failure; `RemoteMessageError` and `ServiceError` relay another party's code */
export class MessagingError extends CodedError {
  constructor (code: ErrorCode | ForeignCode, message: string) {
    super(code, message)
    this.name = 'MessagingError'
  }
}

/** No local agent registered the addressed service */
export class NoSuchServiceError extends MessagingError {
  constructor (service: string) {
    super('NoSuchService', `no service ${JSON.stringify(service)} is registered on this node`)
    this.name = 'NoSuchServiceError'
  }
}

/** The service name is already held by another local connection */
export class ServiceTakenError extends MessagingError {
  constructor (service: string) {
    super('ServiceTaken', `service ${JSON.stringify(service)} is already registered by another client`)
    this.name = 'ServiceTakenError'
  }
}

/** No answer arrived within the request's timeout, retries included */
export class RequestTimeoutError extends MessagingError {
  constructor (message: string) {
    super('RequestTimeout', message)
    this.name = 'RequestTimeoutError'
  }
}

/** The remote node answered with an `error` envelope */
export class RemoteMessageError extends MessagingError {
  declare remote: string
  /** Fields of the error body other than `code` and `message` (e.g. a `Moved` answer's `addresses`); never shown to agents */
  declare details: Record<string, unknown>
  constructor (code: ErrorCode | ForeignCode, message: string, remote: string, details: Record<string, unknown> = {}) {
    super(code, message)
    this.name = 'RemoteMessageError'
    this.remote = remote
    this.details = details
  }
}

/** A local service handler failed, or answered with an error */
export class ServiceError extends MessagingError {
  constructor (code: ErrorCode | ForeignCode, message: string) {
    super(code, message)
    this.name = 'ServiceError'
  }
}

/**
 * A local agent answered a request with an error of its own. Its text is
 * agent-authored, so it must have passed the outbox.
 */
export class AgentReplyError extends MessagingError {
  constructor (code: ErrorCode | ForeignCode, message: GuardedText) {
    super(code, message)
    this.name = 'AgentReplyError'
  }
}
