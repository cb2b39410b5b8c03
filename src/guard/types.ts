/**
 * Shared types of the guard (kept apart from `index.ts` so internal modules
 * import them without cycles).
 *
 * @module
 */

/** What a policy does with findings whose category it does not allow. */
export type GuardAction = 'block' | 'redact' | 'warn'

/** Which detector produced a finding. */
export type GuardDetector = 'registered' | 'secretlint' | 'private-key' | 'entropy' | 'email' | 'phone' | 'iban' | 'card' | 'national-id'

/**
 * How a registered value appeared: `verbatim` (after case/separator
 * normalisation), `date` (another format of a registered date), `partial` (a
 * long enough contiguous run), or the encoding it was found under.
 */
export type MatchVariant = 'verbatim' | 'date' | 'partial' | 'base64' | 'hex' | 'url'

/** One thing found in a body: offsets into the body as given (UTF-16, end exclusive), never its text. */
export interface GuardFinding {
  detector: GuardDetector
  category: string
  /** The label of the registered value, for `registered` findings. */
  label?: string
  /** Id of the registered value, for `registered` findings. */
  id?: string
  start: number
  end: number
  variant?: MatchVariant
  /** Whether the policy in force allows this category to this peer (set by `check`). */
  allowed?: boolean
}

/** The decision for one outbound body. */
export interface GuardDecision {
  action: 'pass' | 'redact' | 'block' | 'warn'
  /** The redacted body, when `action` is `redact`. */
  body?: string
  /** Every finding, each with `allowed`. Empty for benign text. */
  findings: GuardFinding[]
  /** The policy that decided (`peer` `*` and no service for the built-in default). */
  policy: GuardPolicy
}

/** A least-privilege policy for a peer (peer ID, petname or `*`), optionally for one service. */
export interface GuardPolicy {
  peer: string
  service?: string
  /** Allowed categories: exact (`pii/email`), prefix (`finance/*`) or `*` (never secrets). */
  allow: string[]
  action: GuardAction
}

/** Input of `protect`. */
export interface ProtectInput {
  value: string
  label: string
  category: string
  scope?: string
  ttlMs?: number
  persist?: boolean
}

/** What `list` shows of a registered value: never the value. */
export interface ProtectedInfo {
  id: string
  label: string
  category: string
  scope?: string
  expiresAt?: number
  persist?: boolean
}

/** Input of `setPolicy`. */
export interface PolicyInput {
  peer: string
  service?: string
  allow: string[]
  action?: GuardAction
}

/** Options of `enforce` */
export interface EnforceOptions {
  /** Called with every decision before `enforce` returns or throws (awaited) */
  onDecision?: (decision: GuardDecision) => void | Promise<void>
}

/** Input of `check`. */
export interface CheckInput {
  /** The peer ID first, then any petnames the local address book has for it. */
  peerNames: string[]
  service?: string
  body: string
  /**
   * `body` is the latin1 reading (one character per byte) of binary content
   * that is not UTF-8: registered values are matched over every byte, the
   * other detectors look at its runs of printable ASCII only (a MiB of
   * random bytes holds a few hundred; scanning all of it cost more than
   * moving it)
   */
  binary?: boolean
}

/** A known prompt-injection marker found in an inbound body. */
export interface InjectionFinding {
  marker: string
  start: number
  end: number
}

/** Inbound screening result; `screenInbound` returns it only when something was found. */
export interface Screening {
  /** Own registered values echoed back (labels and categories only). */
  ownValues: Array<{ label: string, category: string, start: number, end: number }>
  /** Categories of secrets found. */
  secrets: string[]
  injection: InjectionFinding[]
}


