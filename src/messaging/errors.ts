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

/**
 * The peer refused our message as `StaleMessage`/`FutureMessage` and its
 * signed answer shows our clocks differ by `offsetMs` (the peer's clock minus
 * ours: positive when ours is behind).
 */
export class ClockSkewError extends RemoteMessageError {
  readonly offsetMs: number
  constructor (offsetMs: number, remote: string, detail: string) {
    super('ClockSkew', `the clock of ${remote} differs from this node's by ${offsetMs >= 0 ? '+' : '-'}${(Math.abs(offsetMs) / 1000).toFixed(1)} s (this node's clock is ${offsetMs > 0 ? 'behind' : 'ahead'}, or the peer's is off); it refused the message: ${detail}`, remote)
    this.name = 'ClockSkewError'
    this.offsetMs = offsetMs
  }
}
