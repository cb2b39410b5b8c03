/**
 * @packageDocumentation
 *
 * The one error model of agentnet: every error the node, the SDK or the CLI
 * throws is an {@link AgentnetError} with a `code`, and every code is listed
 * once, with its meaning, in {@link ERROR_CODES}. The README's error table is
 * generated from (and checked against) this table by a test.
 *
 * The code is checked at compile time: a subclass declaring
 * `readonly code = 'Typo'` does not type-check, because the base declares
 * `code` as an {@link ErrorCode}. The only codes outside the table are the
 * ones another party chose (a remote service's own error code, a local
 * agent's `msg.reply` error code); they are marked with {@link foreignCode}
 * and carried by the few classes that relay them.
 *
 * @example
 *
 * ```TypeScript
 * import { AgentnetError, errorCodeOf } from './src/errors/index.ts'
 *
 * class InvalidTargetError extends AgentnetError {
 *   override readonly code = 'InvalidTarget'
 * }
 * try {
 *   throw new InvalidTargetError('not a peer ID')
 * } catch (err) {
 *   console.log(errorCodeOf(err)) // InvalidTarget
 * }
 * ```
 */

/**
 * Every agentnet error code and what it means. Wire codes (sent to peers in
 * `error` envelopes and trust replies) and local codes share one namespace.
 */
export const ERROR_CODES = {
  // frames and envelopes (inbound checks, in order)
  MalformedFrame: 'a frame or payload that is not a canonical encoding (truncated, bad varint, unknown field, bad nonce or signature size)',
  UnsupportedVersion: 'a protocol version this node does not speak',
  BodyTooLarge: 'a body over `messaging.maxBodyBytes`',
  FrameTooLarge: 'a length prefix over the frame limit; the stream is reset',
  SenderMismatch: 'the envelope\'s `from` is not the peer the secure channel authenticated',
  WrongRecipient: 'the envelope is addressed to another node',
  BadSignature: 'the Ed25519 signature does not verify',
  UnsupportedKey: 'the sender\'s peer ID does not embed an Ed25519 key',
  StaleMessage: 'the timestamp is older than the replay window',
  FutureMessage: 'the timestamp is further in the future than the allowed clock skew',
  Replay: 'a nonce already seen from this sender inside the window, or a timestamp at or below its watermark',
  RestartedAt: 'the receiver restarted without a clean-stop snapshot and refuses timestamps at or below its floor (the signed error names it); the sending node retries once past the floor',
  ClockSkew: 'the peer refused the message because the two clocks differ by more than its window; the message names the measured offset',
  // gates
  UntrustedPeer: 'the sender is not trusted and the service is not public (run `agentnet trust request <peer>` or use an invite)',
  RevokedByPeer: 'the peer revoked its trust in this node',
  TokenRequired: 'the service is protected and the message carries no session token',
  TokenInvalid: 'the session token is malformed, forged or issued by another node',
  TokenExpired: 'the session token has expired',
  TokenAudience: 'the session token was issued to another peer',
  TokenScope: 'the session token does not cover this service',
  TokenRevoked: 'the session token was issued before its peer\'s revocation',
  LeakBlocked: 'the outbound guard refused the message: it carries registered context, secrets or PII the policy does not allow for this peer',
  CorruptGuardStore: '`guard-values.json` is damaged; the node does not start and leaves it untouched',
  GuardLimit: 'too many registered values or guard policies',
  GuardNotStarted: 'a `persist: true` value before the guard store was loaded',
  InboundRefused: 'the service refuses inbound messages that echo its agent\'s protected values, carry secrets or injection markers (`guard.inbound.refuse`)',
  // messaging
  NoSuchService: 'no local agent registered the addressed service',
  ServiceTaken: 'the service name is held by another local connection',
  ServiceTimeout: 'the local agent did not answer a request within 60 s',
  ServiceUnavailable: 'the local agent serving the service disconnected',
  AgentNotReading: 'the local agent serving the service has not read its socket while the node holds `ipc.maxClientBufferBytes` for it; the message was refused, not delivered',
  ServiceError: 'the service failed without an error code of its own',
  RemoteError: 'the peer answered with an error body that could not be read',
  RequestTimeout: 'no answer arrived within the request\'s timeout, retries included',
  DeadlineExceeded: 'a request arrived after its sender stopped waiting (`timestamp + ttl` has passed); it was not run',
  Busy: 'too much in flight (requests from one peer, queued bytes, pending handshakes); retry later',
  PeerUnreachable: 'no connection to the peer could be opened (not found in the peer store or the DHT, or every address failed)',
  StreamClosed: 'the stream to the peer closed before the frame was written',
  Stopped: 'the node is stopping',
  UnknownDelivery: '`msg.reply` for a delivery that was answered already, timed out, or was one-way',
  InvalidId: 'a request ID that is too long',
  InvalidBody: 'a body given as neither text, JSON nor valid base64, or as both `body` and `bodyBase64`',
  InvalidTarget: 'not a multiaddr, peer ID, petname or agentnet URL',
  // trust
  ReasonTooLong: 'a trust justification over 1 KiB',
  InvalidReason: 'a trust justification with control characters or bidi overrides',
  PendingFull: 'the peer holds too many pending trust requests, in all or from your network',
  RateLimited: 'too many trust handshakes or token requests from this peer',
  Refused: 'the peer rejected the trust request',
  NotRequested: 'an approval or rejection for a request that was never made',
  NotPending: 'no pending trust request from this peer',
  InviteExpired: 'the invite has expired',
  InviteUsedUp: 'the invite has no uses left',
  InviteInvalid: 'the invite code is forged, altered or unknown',
  InviteLimit: 'too many open invites',
  HandshakeRefused: 'the peer refused a trust message with a frame-check code',
  NotStarted: 'the service was used before it started',
  // groups (MLS)
  UnknownGroup: 'no group with this ID on this node',
  NotMember: 'the peer is not a member of the group',
  NotCommitter: 'a commit or committer-only request from a member that is not the group\'s committer',
  StaleTerm: 'a frame from a committer term older than the highest seen',
  WrongEpoch: 'a commit or message for another epoch than the member\'s current one',
  WelcomeBeforeCommit: 'a Welcome that arrived before its commit was settled',
  UnexpectedWelcome: 'a Welcome this node did not ask to join with',
  BadCredential: 'an MLS credential that does not name the sending peer or is not bound to its key',
  InvalidCommit: 'a commit MLS refuses to process',
  MalformedGroupFrame: 'a group frame that does not decode',
  GroupTimeout: 'the committer or members did not answer in time',
  GroupRefused: 'a peer refused a group request',
  TooManyGroups: 'the node holds as many groups as `groups.maxGroups` allows',
  CorruptGroupState: 'a group state file cannot be decrypted or decoded',
  Removed: 'this node was removed from the group',
  // cards
  CardNotFound: 'no agent card for this peer in the DHT',
  InvalidCard: 'an agent card that is forged, oversized or malformed',
  StaleCard: 'an agent card older than the one already held',
  InvalidAgentCard: 'an A2A agent card whose JWS does not verify against the peer ID it claims, or that is malformed',
  InvalidDid: 'not an Ed25519 `did:key`, or a peer ID that does not embed an Ed25519 key',
  CardUnreadable: 'the agent card file given to `card verify` cannot be read',
  // key rotation (succession records)
  MalformedSuccession: 'a succession record that is not a canonical, well-formed record',
  SameKey: 'a succession record whose old and new peer IDs are the same',
  NewKeySignatureMissing: 'a succession record signed by the old key only, and the policy does not accept that (a stolen old key could have made it)',
  StaleSuccession: 'a succession record older than the age a peer acts on',
  FutureSuccession: 'a succession record dated in the future',
  RotationInProgress: '`identity rotate` while a rotation is still in its grace period',
  CorruptSuccessionState: '`succession.json` is damaged; the rotation cannot resume',
  Moved: 'this peer ID was rotated to a new one; the message carries the succession record',
  RotationRestartFailed: 'a live key rotation wrote the new key but the node on it did not start; the node stops, and its next start completes the rotation',
  // red team and dialog audit
  InvalidScenario: 'a red-team scenario file that is not valid JSON or misses a field; the message names the file and field',
  AttackerLlmFailed: 'the attacker LLM endpoint timed out, answered an HTTP error, or sent a malformed chat-completions reply',
  InvalidDialogLog: 'a line of a dialog log that is not a JSON object with sender, recipient and text',
  // local state and set-up
  InvalidArgument: 'a caller passed a value out of range',
  CorruptSnapshot: 'the replay-cache snapshot is damaged',
  CorruptTrustStore: '`trust.json` is damaged; the node does not start rather than forget trust decisions',
  CorruptTokenState: '`tokens.json` is damaged; the node does not start rather than forget revocations',
  CorruptAddressBook: '`aliases.json` is damaged',
  MalformedBaseline: 'the posture baseline cannot be encoded or read',
  InvalidAlias: 'a petname that is not 1–64 letters, digits, `_` or `-` starting with a letter',
  NoSuchAlias: 'no petname of that name',
  IdentityError: 'the identity key could not be read or written',
  IdentityExists: '`init` on a home that already has an identity',
  MissingIdentity: 'the home has no identity key',
  IdentityLost: 'the home has trust or audit state but no `identity.key`: the node refuses to start as a different peer (restore the key, or start with `--new-identity`)',
  InsecureKeyFile: 'the key file is readable by group or others',
  CorruptKey: 'the key file is not a valid Ed25519 key',
  ConfigError: 'the configuration is invalid; the message names the key',
  NodeAlreadyRunning: 'a node already runs on this home',
  AuditError: 'the audit log failed',
  AuditInvalidArgument: 'a bad audit event type or data',
  AuditDataTooLarge: 'audit data over the record limit',
  AuditLogClosed: 'an append after the audit log was closed',
  AuditLogNotFound: 'no audit log at the given path',
  AuditIO: 'the file system refused an audit log operation',
  StateWriteFailed: 'a state file (e.g. `trust.json`) could not be written (disk full or another I/O failure); the change was not applied and nothing stored was lost',
  // local API and SDK
  ParseError: 'an IPC line that is not JSON',
  InvalidRequest: 'an IPC line that is not a JSON-RPC 2.0 request object',
  MethodNotFound: 'an unknown IPC method',
  InvalidParams: 'bad IPC params; the message names the param',
  LineTooLong: 'an IPC line over `ipc.maxLineBytes`; the connection is closed',
  TooManyClients: 'the IPC socket already serves `ipc.maxConnections` clients; this connection is closed after the error line',
  NodeNotRunning: 'no node answers on the home\'s socket (run `agentnet start`)',
  ConnectionClosed: 'the connection to the node closed before the answer',
  UsageError: 'a CLI command used wrongly',
  FileError: 'a file the CLI was given cannot be read or written',
  Starting: 'the node is still starting (wait with `agentnet wait`)',
  Timeout: 'the node was not ready, or not stopped, within the time given',
  StartFailed: 'a node started with `--detach` exited before it was ready (see `<home>/agentnet.log`)',
  AliasExists: 'the petname already names another peer (`alias add --force` repoints it)',
  ExecFailed: 'the command run by `listen --exec` exited with a non-zero status',
  NotImplemented: 'the listener does not answer requests',
  MetricsDisabled: 'the node serves no metrics: set `metrics.listen` (e.g. `/ip4/127.0.0.1/tcp/9464`) and restart it',
  InternalError: 'a bug: please report it'
} as const satisfies Record<string, string>

/** A code from {@link ERROR_CODES} */
export type ErrorCode = keyof typeof ERROR_CODES

declare const foreign: unique symbol
/**
 * A code another party chose: a remote service's or a local agent's own
 * error code, relayed unchanged. Only {@link foreignCode} makes one.
 */
export type ForeignCode = string & { readonly [foreign]: true }

/** Mark a code received from a peer or an agent (it may or may not be in the table) */
export function foreignCode (code: string): ErrorCode | ForeignCode {
  return code as ErrorCode | ForeignCode
}

/** Is `code` one of agentnet's own codes? */
export function isErrorCode (code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}

export interface AgentnetErrorOptions {
  cause?: unknown
}

/**
 * The base of every agentnet error. Subclasses fix their code with
 * `override readonly code = '…'`; the few that relay another party's code
 * assign a {@link ForeignCode}. `name` is the class name.
 */
export class AgentnetError extends Error {
  readonly code: ErrorCode | ForeignCode = 'InternalError'
  /** The peer (string peer ID) this error came from, when a peer sent it */
  remote?: string

  constructor (message?: string, options?: AgentnetErrorOptions) {
    super(message, options)
    // the class name: `UntrustedPeerError`, `ReplayError`, …
    this.name = new.target.name
  }
}

/** An error whose code is given at construction (a family of related codes, or a relayed one) */
export class CodedError extends AgentnetError {
  override readonly code: ErrorCode | ForeignCode

  constructor (code: ErrorCode | ForeignCode, message: string, options?: AgentnetErrorOptions) {
    super(message, options)
    this.code = code
  }
}

/** A peer could not be reached: not found, or every address failed */
export class PeerUnreachableError extends AgentnetError { override readonly code = 'PeerUnreachable' }

/**
 * A state file could not be written (ENOSPC, EIO, …): the change it was to
 * record was undone in memory too (persist first, then apply)
 */
export class StateWriteError extends AgentnetError { override readonly code = 'StateWriteFailed' }

/** Too much in flight; retry later */
export class BusyError extends AgentnetError { override readonly code = 'Busy' }

/** The code of an agentnet error, or `undefined` for anything else */
export function errorCodeOf (err: unknown): ErrorCode | ForeignCode | undefined {
  return err instanceof AgentnetError ? err.code : undefined
}
