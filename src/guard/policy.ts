/**
 * Least-privilege policies: which finding categories may go to a peer (by
 * peer ID, petname or `*`), optionally per service, and what happens to the
 * rest.
 *
 * Resolution, most specific first: (peer name, service) > (peer name, any
 * service) > (`*`, service) > (`*`). The peer names are tried in the order
 * given (the peer ID first, then its petnames), within each level. With no
 * policy at all nothing registered or detected may leave: allow nothing,
 * action `block`.
 *
 * Patterns: `finance/card` (exact), `finance/*` (that prefix and below), `*`
 * (everything). Secrets (`secret/…`) are allowed only by a pattern equal to
 * their category: `*` and `secret/*` never let a secret out.
 *
 * @module
 */

import { InvalidGuardInputError } from './errors.ts'
import { MAX_ALLOW_PATTERNS, MAX_CATEGORY_CHARS, MAX_NAME_CHARS, SECRET_PREFIX } from './constants.ts'
import type { GuardAction, GuardPolicy, PolicyInput } from './types.ts'

const CATEGORY = /^[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*$/
const PATTERN = /^(?:\*|[a-z0-9][a-z0-9._-]*(?:\/[a-z0-9][a-z0-9._-]*)*(?:\/\*)?)$/
const NAME = /^[^\s\u0000-\u001f\u007f]+$/
const ACTIONS: readonly string[] = ['block', 'redact', 'warn']

/** The policy in force when none was set. */
export const DEFAULT_POLICY: Readonly<GuardPolicy> = Object.freeze({ peer: '*', allow: [], action: 'block' })

/** Throws unless `category` is a lower-case path such as `finance/card`. */
export function checkCategory (category: unknown, field = 'category'): string {
  if (typeof category !== 'string' || category.length === 0 || category.length > MAX_CATEGORY_CHARS || !CATEGORY.test(category)) {
    throw new InvalidGuardInputError(`${field} must be a lower-case path of [a-z0-9._-] segments joined by "/", at most ${MAX_CATEGORY_CHARS} characters`)
  }
  return category
}

/** Throws unless `name` is a non-empty printable string without spaces, ≤ 128 characters. */
export function checkName (name: unknown, field: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_CHARS || !NAME.test(name)) {
    throw new InvalidGuardInputError(`${field} must be a non-empty string of at most ${MAX_NAME_CHARS} characters without spaces or control characters`)
  }
  return name
}

/** A validated copy of a policy input (defaults applied). */
export function checkPolicy (input: PolicyInput): GuardPolicy {
  if (input === null || typeof input !== 'object') throw new InvalidGuardInputError('policy must be an object')
  const peer = checkName(input.peer, 'peer')
  const service = input.service === undefined ? undefined : checkName(input.service, 'service')
  if (!Array.isArray(input.allow) || input.allow.length > MAX_ALLOW_PATTERNS) {
    throw new InvalidGuardInputError(`allow must be an array of at most ${MAX_ALLOW_PATTERNS} category patterns`)
  }
  const allow: string[] = []
  for (const p of input.allow as unknown[]) {
    if (typeof p !== 'string' || p.length > MAX_CATEGORY_CHARS + 2 || !PATTERN.test(p)) {
      throw new InvalidGuardInputError('allow patterns must be "*", a category such as "pii/email", or a prefix such as "finance/*"')
    }
    if (!allow.includes(p)) allow.push(p)
  }
  const action = input.action ?? 'block'
  if (typeof action !== 'string' || !ACTIONS.includes(action)) throw new InvalidGuardInputError('action must be "block", "redact" or "warn"')
  const policy: GuardPolicy = { peer, allow, action: action as GuardAction }
  if (service !== undefined) policy.service = service
  return policy
}

/** Whether `category` is allowed by any of `patterns` (secrets by an exact pattern only). */
export function allows (patterns: readonly string[], category: string): boolean {
  const secret = category.startsWith(SECRET_PREFIX)
  for (const p of patterns) {
    if (p === category) return true
    if (secret) continue
    if (p === '*') return true
    if (p.endsWith('/*') && category.startsWith(p.slice(0, -1))) return true
  }
  return false
}

function key (peer: string, service: string | undefined): string {
  return service === undefined ? `${peer}\u0000` : `${peer}\u0000${service}`
}

/** The policy table. */
export class PolicyBook {
  readonly #policies = new Map<string, GuardPolicy>()

  get size (): number { return this.#policies.size }

  has (peer: string, service: string | undefined): boolean { return this.#policies.has(key(peer, service)) }

  /** Set (replace) the policy for (peer, service). */
  set (policy: GuardPolicy): void {
    this.#policies.set(key(policy.peer, policy.service), policy)
  }

  /** Remove the policy for (peer, service); whether there was one. */
  delete (peer: string, service: string | undefined): boolean {
    return this.#policies.delete(key(peer, service))
  }

  /** Policies of `peer` (all when undefined), copies. */
  list (peer?: string): GuardPolicy[] {
    const out: GuardPolicy[] = []
    for (const p of this.#policies.values()) {
      if (peer === undefined || p.peer === peer) out.push(copy(p))
    }
    return out
  }

  /** The policy in force for a peer known by `peerNames`, on `service`. */
  resolve (peerNames: readonly string[], service: string | undefined): GuardPolicy {
    const levels: Array<[readonly string[], string | undefined]> = []
    if (service !== undefined) levels.push([peerNames, service])
    levels.push([peerNames, undefined])
    if (service !== undefined) levels.push([['*'], service])
    levels.push([['*'], undefined])
    for (const [names, svc] of levels) {
      for (const name of names) {
        const p = this.#policies.get(key(name, svc))
        if (p !== undefined) return p
      }
    }
    return DEFAULT_POLICY
  }
}

function copy (p: GuardPolicy): GuardPolicy {
  const out: GuardPolicy = { peer: p.peer, allow: [...p.allow], action: p.action }
  if (p.service !== undefined) out.service = p.service
  return out
}

export { copy as copyPolicy }
