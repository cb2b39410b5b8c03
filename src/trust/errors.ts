/**
 * Errors of the trust layer. Each class has a stable `code` (also static:
 * `UntrustedPeerError.code`). The codes marked *wire* also travel in the
 * `error` replies of the handshake protocol, and a node that receives one
 * throws the class of that code (with `remote` set to the peer that refused).
 * Frame-check failures of handshake messages reuse the protocol layer's
 * classes (`MalformedFrameError`, `BadSignatureError`, `ReplayError`, …) and
 * codes; a remote refusal with such a code arrives as {@link HandshakeRefusedError}.
 *
 * @module
 */

import { AgentnetError, BusyError } from '../errors/index.ts'

export { BusyError, PeerUnreachableError } from '../errors/index.ts'

/** Every `code` of a {@link TrustError}. */
export type TrustErrorCode =
  | 'UntrustedPeer'
  | 'RevokedByPeer'
  | 'ReasonTooLong'
  | 'InvalidReason'
  | 'PendingFull'
  | 'RateLimited'
  | 'Busy'
  | 'Refused'
  | 'NotRequested'
  | 'NotPending'
  | 'InviteExpired'
  | 'InviteUsedUp'
  | 'InviteInvalid'
  | 'InviteLimit'
  | 'CorruptTrustStore'
  | 'PeerUnreachable'
  | 'HandshakeRefused'
  | 'NotStarted'

/** Common base: `err instanceof TrustError` catches every error of this module. */
export abstract class TrustError extends AgentnetError {
  abstract override readonly code: TrustErrorCode
}

/**
 * Local gate: the sender is not trusted and the service is not public, or the
 * sender revoked us or we revoked it.
 */
export class UntrustedPeerError extends TrustError { override readonly code = 'UntrustedPeer' }

/** Outbound check: the peer revoked its trust in us; do not send to it. */
export class RevokedByPeerError extends TrustError { override readonly code = 'RevokedByPeer' }

/** *Wire.* A justification longer than 1 KiB (UTF-8). */
export class ReasonTooLongError extends TrustError { override readonly code = 'ReasonTooLong' }

/** *Wire.* A justification holding control or bidirectional-override characters, or not a string. */
export class InvalidReasonError extends TrustError { override readonly code = 'InvalidReason' }

/** *Wire.* The recipient holds its maximum of pending requests, in all or from the sender's network, and no older request of a more-represented network can make room. */
export class PendingFullError extends TrustError { override readonly code = 'PendingFull' }

/** *Wire.* Too many handshake messages from this peer (token bucket). */
export class RateLimitedError extends TrustError { override readonly code = 'RateLimited' }

/** *Wire.* The recipient rejected or revoked us and refuses requests from us. */
export class RefusedError extends TrustError { override readonly code = 'Refused' }

/** *Wire.* An approval or rejection for a request the recipient never sent. */
export class NotRequestedError extends TrustError { override readonly code = 'NotRequested' }

/** Local: `approve`/`reject` of a peer that has no pending request. */
export class NotPendingError extends TrustError { override readonly code = 'NotPending' }

/** *Wire.* The invite's expiry has passed. */
export class InviteExpiredError extends TrustError { override readonly code = 'InviteExpired' }

/** *Wire.* The invite has no uses left. */
export class InviteUsedUpError extends TrustError { override readonly code = 'InviteUsedUp' }

/**
 * *Wire.* The invite code is malformed, altered, not signed by the peer it
 * names, not issued by the recipient, unknown to it, or withdrawn.
 */
export class InviteInvalidError extends TrustError { override readonly code = 'InviteInvalid' }

/** Local: this node already holds its maximum of live invites. */
export class InviteLimitError extends TrustError { override readonly code = 'InviteLimit' }

/** Local: `trust.json` cannot be read as a trust store. It is left untouched. */
export class CorruptTrustStoreError extends TrustError {
  override readonly code = 'CorruptTrustStore'
  /** The file that failed to load. */
  readonly file: string

  constructor (file: string, message: string) {
    super(message)
    this.file = file
  }
}

/**
 * Local: the peer refused a handshake message with a code that has no class
 * here (a frame-check code such as `Replay`, `BadSignature` or `StaleMessage`,
 * or `Internal`), or answered with something that is not a valid reply.
 */
export class HandshakeRefusedError extends TrustError {
  override readonly code = 'HandshakeRefused'
  /** The code the peer sent (`InvalidReply` when its answer was unusable). */
  readonly remoteCode: string

  constructor (remoteCode: string, message: string) {
    super(message)
    this.remoteCode = remoteCode
  }
}

/** Local: the service is not started (or is stopping). */
export class NotStartedError extends TrustError { override readonly code = 'NotStarted' }

type WireErrorClass = new (message: string) => TrustError | BusyError

const WIRE_ERRORS: ReadonlyMap<string, WireErrorClass> = new Map<string, WireErrorClass>([
  ['ReasonTooLong', ReasonTooLongError],
  ['InvalidReason', InvalidReasonError],
  ['PendingFull', PendingFullError],
  ['RateLimited', RateLimitedError],
  ['Busy', BusyError],
  ['Refused', RefusedError],
  ['NotRequested', NotRequestedError],
  ['InviteExpired', InviteExpiredError],
  ['InviteUsedUp', InviteUsedUpError],
  ['InviteInvalid', InviteInvalidError],
  ['UntrustedPeer', UntrustedPeerError]
])

/** The error to throw for an `error` reply with `code` from `remote`. */
export function errorFromWire (code: string, message: string, remote: string): TrustError | BusyError {
  const Class = WIRE_ERRORS.get(code)
  const err = Class === undefined
    ? new HandshakeRefusedError(code, `${remote} refused: ${code}: ${message}`)
    : new Class(`${remote} refused: ${message}`)
  err.remote = remote
  return err
}
