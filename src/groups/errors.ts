/**
 * Errors of the groups service. Each has a stable `code`; the codes of
 * rejected inbound frames travel back to the sender in the reply and are
 * reported to the `audit` callback.
 *
 * @module
 */

import { CodedError } from '../errors/index.ts'

export type GroupsErrorCode =
  | 'UnknownGroup'
  | 'NotMember'
  | 'NotCommitter'
  | 'StaleTerm'
  | 'WrongEpoch'
  | 'WelcomeBeforeCommit'
  | 'UnexpectedWelcome'
  | 'BadCredential'
  | 'InvalidCommit'
  | 'MalformedGroupFrame'
  | 'PeerUnreachable'
  | 'GroupTimeout'
  | 'GroupRefused'
  | 'TooManyGroups'
  | 'InvalidArgument'
  | 'NotStarted'
  | 'CorruptGroupState'
  | 'Removed'
  | 'RateLimited'

/** Base class: `err instanceof GroupsError` catches every error of this module. */
export class GroupsError extends CodedError {
  declare readonly code: GroupsErrorCode
  /** Extra fields sent back with a rejection (e.g. the receiver's epoch). */
  meta?: Record<string, unknown>

  constructor (code: GroupsErrorCode, message: string, meta?: Record<string, unknown>) {
    super(code, message)
    if (meta !== undefined) this.meta = meta
  }
}

function named (code: GroupsErrorCode): new (message: string, meta?: Record<string, unknown>) => GroupsError {
  return class extends GroupsError {
    static readonly code = code
    override name = `${code}Error`
    constructor (message: string, meta?: Record<string, unknown>) { super(code, message, meta) }
  }
}

export const UnknownGroupError = named('UnknownGroup')
export const NotMemberError = named('NotMember')
export const NotCommitterError = named('NotCommitter')
export const StaleTermError = named('StaleTerm')
export const WrongEpochError = named('WrongEpoch')
export const WelcomeBeforeCommitError = named('WelcomeBeforeCommit')
export const UnexpectedWelcomeError = named('UnexpectedWelcome')
export const BadCredentialError = named('BadCredential')
export const InvalidCommitError = named('InvalidCommit')
export const MalformedGroupFrameError = named('MalformedGroupFrame')
export const PeerUnreachableError = named('PeerUnreachable')
export const GroupTimeoutError = named('GroupTimeout')
export const GroupRefusedError = named('GroupRefused')
export const TooManyGroupsError = named('TooManyGroups')
export const InvalidArgumentError = named('InvalidArgument')
export const NotStartedError = named('NotStarted')
export const CorruptGroupStateError = named('CorruptGroupState')
export const RemovedError = named('Removed')
export const RateLimitedError = named('RateLimited')

const CODES = new Set<string>(['UnknownGroup', 'NotMember', 'NotCommitter', 'StaleTerm', 'WrongEpoch', 'WelcomeBeforeCommit',
  'UnexpectedWelcome', 'BadCredential', 'InvalidCommit', 'MalformedGroupFrame', 'PeerUnreachable', 'GroupTimeout', 'GroupRefused',
  'TooManyGroups', 'InvalidArgument', 'NotStarted', 'CorruptGroupState', 'Removed', 'RateLimited'])

/** The error a peer reported in a reply, as a local error of the same code (unknown codes become `GroupRefused`). */
export function errorFromWire (code: string, message: string): GroupsError {
  return new GroupsError(CODES.has(code) ? code as GroupsErrorCode : 'GroupRefused', message.slice(0, 300))
}
