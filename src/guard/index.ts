/**
 * @packageDocumentation
 *
 * The outbound leakage guard: screens every message an agent sends against
 * the agent's registered private context, secrets and PII, under a
 * least-privilege policy per peer, and screens inbound messages for echoes of
 * that context and for prompt-injection markers.
 *
 * - **Registered context** (`protect`): values with a label, a category
 *   (`finance/card`), an optional scope and TTL. Matched through case,
 *   spacing, punctuation and digit grouping, as dates in common formats, as
 *   long enough partial runs, and under base64, hex and URL encoding, by one
 *   Aho-Corasick automaton over all values. Values live in memory only unless
 *   `persist: true` (then in a 0600 file); they are never logged, thrown or
 *   returned: findings carry offsets, labels and categories.
 * - **Detectors**: secretlint's recommended preset (behind a prefilter), PEM
 *   private keys, high-entropy tokens (`secret/…`); e-mail, phone, IBAN,
 *   card (Luhn) and national IDs (`pii/…`).
 * - **Policy** per peer ID, petname or `*`, optionally per service: allowed
 *   category patterns and the action for the rest (`block`, `redact`,
 *   `warn`). No policy: nothing found may leave.
 *
 * @example
 *
 * ```ts
 * import { createGuard, LeakBlockedError } from './src/guard/index.ts'
 *
 * const guard = createGuard()
 * guard.protect({ value: '4111 1111 1111 1111', label: 'visa', category: 'finance/card', scope: 'trip-42' })
 * guard.setPolicy({ peer: 'travel-agent', allow: ['travel/*'], action: 'redact' })
 *
 * const d = await guard.check({ peerNames: ['12D3KooW…', 'travel-agent'], body: 'card 4111-1111-1111-1111 please' })
 * // d.action === 'redact', d.body === 'card [REDACTED:visa] please'
 *
 * try {
 *   await guard.enforce({ peerNames: ['12D3KooWother…'], body: 'my visa is 4111111111111111' })
 * } catch (err) {
 *   if (err instanceof LeakBlockedError) console.log(err.findings) // [{detector: 'registered', category: 'finance/card', label: 'visa', start: 11, end: 27, …}]
 * }
 * guard.unprotect({ scope: 'trip-42' }) // { removed: 1 }
 * ```
 */

import { DefaultGuard } from './guard.ts'
import type { CheckInput, GuardDecision, GuardFinding, GuardPolicy, PolicyInput, ProtectedInfo, ProtectInput, Screening, EnforceOptions } from './types.ts'

export * from './types.ts'
export * from './errors.ts'
export * from './constants.ts'
export { INJECTION_MARKERS, warmInjectionMatcher } from './screen.ts'
export { mightHoldSecret, warmSecretScanner } from './secrets.ts'
export { DEFAULT_POLICY, allows } from './policy.ts'
export { auditRecord } from './audit.ts'
export type { GuardAuditRecord } from './audit.ts'

/** Options of {@link createGuard}; every one has a default (see `constants.ts`). */
export interface GuardInit {
  /** Clock for TTL expiry, ms since the epoch. Default `Date.now`. */
  now?: () => number
  /** File for `persist: true` values (mode 0600). Without it `persist: true` is refused. */
  persistPath?: string
  /** Called when a background write of the store fails (also reported by `flush()`). */
  onPersistError?: (err: Error) => void
  /** Policies to install at creation (e.g. from config `guard.policies`). */
  policies?: PolicyInput[]
  /** Most registered values held at once. Default 100,000. */
  maxValues?: number
  /** Most policies. Default 10,000. */
  maxPolicies?: number
  /** Longest body checked, UTF-16 units; longer is `InvalidParams`. Default 1,048,576. */
  maxBodyChars?: number
  /** Interval of the expiry sweep while started, ms. Default 30,000. */
  sweepIntervalMs?: number
  /** Contiguous digits of a long registered number that count as a leak. Default 8. */
  minPartialDigits?: number
  /** A digit run of a value this long is also matched in part. Default 12. */
  longNumberDigits?: number
  /** Share of a ≥ 3-word value's words that, contiguous, count as a leak. Default ⅔. */
  partialWordsFraction?: number
  /** Run secretlint's recommended preset. Default true. */
  secretScan?: boolean
  /** Flag high-entropy tokens. Default true. */
  entropyScan?: boolean
}

/** Counters for metrics: decisions by action, blocked/redacted/warned findings by category. */
export interface GuardStats {
  /** Registered values held. */
  registered: number
  /** Distinct patterns in the compiled automaton (values × spellings, windows, date forms). */
  patterns: number
  checks: number
  actions: Record<GuardDecision['action'], number>
  blockedByCategory: Record<string, number>
}

/** The guard. */
export interface Guard {
  /** Load persisted values (throws `CorruptGuardStoreError`, leaving the file as it is) and start the expiry sweep. */
  start: () => Promise<void>
  /** Stop the sweep and wait for pending store writes. */
  stop: () => Promise<void>
  /** Wait for pending store writes; throws the last write error, if any. */
  flush: () => Promise<void>
  /** Register a value; `{id}`. */
  protect: (input: ProtectInput) => { id: string }
  /** Remove one value by id or every value of a scope. */
  unprotect: (input: { id: string } | { scope: string }) => { removed: number }
  /** Registered values (never the values themselves), optionally of one scope. */
  list: (input?: { scope?: string }) => ProtectedInfo[]
  /** Set (replace) the policy for (peer, service); the stored policy. */
  setPolicy: (input: PolicyInput) => GuardPolicy
  /** Remove the policy for (peer, service). */
  removePolicy: (input: { peer: string, service?: string }) => { removed: number }
  /** Policies set, all or those of one peer name. */
  getPolicy: (input?: { peer?: string }) => GuardPolicy[]
  /** The policy in force for a peer (peer ID first, then petnames) and service. */
  resolvePolicy: (input: { peerNames: string[], service?: string }) => GuardPolicy
  /** The decision `msg.send` takes. `peerNames`: the peer ID plus any petnames the local address book has for it. */
  check: (input: CheckInput) => Promise<GuardDecision>
  /**
   * `check`, then: `block` throws `LeakBlockedError`; otherwise the body to
   * send (the redacted one for `redact`; the outbox brands it), and the
   * decision (for the audit record of a `redact` or `warn`). `onDecision`
   * sees every decision first.
   */
  enforce: (input: CheckInput, options?: EnforceOptions) => Promise<{ body: string, decision: GuardDecision }>
  /** Every finding in a body, without policy (`binary`: as in {@link CheckInput}). */
  inspect: (body: string, options?: { binary?: boolean }) => Promise<GuardFinding[]>
  /** Own values echoed back, secrets, injection markers in an inbound body; undefined when none. */
  screenInbound: (body: string) => Promise<Screening | undefined>
  /** Drop expired values now; how many. */
  sweep: () => number
  /** Decision counters. */
  stats: () => GuardStats
}

/** A guard with `init` (see {@link GuardInit} for defaults). Call `start()` when using `persistPath`. */
export function createGuard (init: GuardInit = {}): Guard {
  return new DefaultGuard(init)
}
