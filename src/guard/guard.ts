/**
 * The guard: registered values, policies and detectors put together into the
 * outbound decision (`check`) and inbound screening.
 *
 * @module
 */

import { randomBytes } from 'node:crypto'
import {
  DEFAULT_ENTROPY_SCAN, DEFAULT_LONG_NUMBER_DIGITS, DEFAULT_MAX_BODY_CHARS, DEFAULT_MAX_POLICIES, DEFAULT_MAX_VALUES,
  DEFAULT_MIN_PARTIAL_DIGITS, DEFAULT_PARTIAL_WORDS_FRACTION, DEFAULT_SECRET_SCAN, DEFAULT_SWEEP_INTERVAL_MS,
  MAX_DECODE_DEPTH, MAX_NAME_CHARS, MIN_ENCODED_TOKEN_CHARS, MIN_PRINTABLE_RUN, MAX_TTL_MS, MAX_VALUE_CHARS, MIN_VALUE_NORMALIZED, SECRET_PREFIX
} from './constants.ts'
import { decodesToText, decodeTokens, printableRuns, scanRuns } from './decode.ts'
import { detectHighEntropy, detectPii, detectPrivateKeys } from './detectors.ts'
import { GuardLimitError, GuardNotStartedError, InvalidGuardInputError, LeakBlockedError } from './errors.ts'
import { normalizeValue } from './normalize.ts'
import { allows, checkCategory, checkName, checkPolicy, copyPolicy, PolicyBook } from './policy.ts'
import { Registry } from './registry.ts'
import { findInjection } from './screen.ts'
import { scanSecrets } from './secrets.ts'
import { loadStore, saveStore } from './store.ts'
import { mergeFindings, redact } from './findings.ts'
import type { Entry } from './registry.ts'
import type { Guard, GuardInit, GuardStats } from './index.ts'
import type { CheckInput, GuardDecision, GuardFinding, GuardPolicy, PolicyInput, ProtectedInfo, ProtectInput, Screening, EnforceOptions } from './types.ts'

/** Implementation of {@link Guard}; build it with `createGuard`. */
export class DefaultGuard implements Guard {
  readonly #registry: Registry
  readonly #policies = new PolicyBook()
  readonly #now: () => number
  readonly #init: GuardInit
  readonly #maxValues: number
  readonly #maxPolicies: number
  readonly #maxBodyChars: number
  readonly #secretScan: boolean
  readonly #entropyScan: boolean
  readonly #sweepIntervalMs: number
  #timer: ReturnType<typeof setInterval> | undefined
  #loaded = false
  #writes: Promise<void> = Promise.resolve()
  #writeError: Error | undefined
  readonly #stats: Omit<GuardStats, 'registered' | 'patterns'> = { checks: 0, actions: { pass: 0, redact: 0, block: 0, warn: 0 }, blockedByCategory: {} }

  constructor (init: GuardInit = {}) {
    if (init === null || typeof init !== 'object') throw new InvalidGuardInputError('init must be an object')
    this.#init = init
    this.#now = init.now ?? Date.now
    if (typeof this.#now !== 'function') throw new InvalidGuardInputError('now must be a function')
    this.#maxValues = positiveInt(init.maxValues ?? DEFAULT_MAX_VALUES, 'maxValues')
    this.#maxPolicies = positiveInt(init.maxPolicies ?? DEFAULT_MAX_POLICIES, 'maxPolicies')
    this.#maxBodyChars = positiveInt(init.maxBodyChars ?? DEFAULT_MAX_BODY_CHARS, 'maxBodyChars')
    this.#secretScan = bool(init.secretScan ?? DEFAULT_SECRET_SCAN, 'secretScan')
    this.#entropyScan = bool(init.entropyScan ?? DEFAULT_ENTROPY_SCAN, 'entropyScan')
    this.#sweepIntervalMs = positiveInt(init.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS, 'sweepIntervalMs')
    const fraction = init.partialWordsFraction ?? DEFAULT_PARTIAL_WORDS_FRACTION
    // below one half, two disjoint halves of a value would each count as "most of it"
    if (typeof fraction !== 'number' || !(fraction >= 0.5 && fraction <= 1)) throw new InvalidGuardInputError('partialWordsFraction must be in [0.5, 1]')
    const minPartialDigits = positiveInt(init.minPartialDigits ?? DEFAULT_MIN_PARTIAL_DIGITS, 'minPartialDigits')
    const longNumberDigits = positiveInt(init.longNumberDigits ?? DEFAULT_LONG_NUMBER_DIGITS, 'longNumberDigits')
    // fewer than 6 digits match years, prices and PINs everywhere
    if (minPartialDigits < 6 || minPartialDigits > longNumberDigits) throw new InvalidGuardInputError('minPartialDigits must be at least 6 and at most longNumberDigits')
    this.#registry = new Registry({ minPartialDigits, longNumberDigits, partialWordsFraction: fraction })
    if (init.persistPath !== undefined && (typeof init.persistPath !== 'string' || init.persistPath.length === 0)) {
      throw new InvalidGuardInputError('persistPath must be a non-empty string')
    }
    for (const p of init.policies ?? []) this.setPolicy(p)
  }

  async start (): Promise<void> {
    if (this.#init.persistPath !== undefined && !this.#loaded) {
      const entries = await loadStore(this.#init.persistPath) // throws CorruptGuardStoreError; the file stays as it is
      const now = this.#now()
      for (const e of entries) {
        if (e.expiresAt !== undefined && e.expiresAt <= now) continue
        if (normalizeValue(e.value).length < MIN_VALUE_NORMALIZED) continue
        this.#registry.add(e)
      }
      this.#loaded = true
    }
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => { this.sweep() }, this.#sweepIntervalMs)
      this.#timer.unref()
    }
  }

  async stop (): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.flush().catch(() => {})
  }

  async flush (): Promise<void> {
    await this.#writes
    const err = this.#writeError
    this.#writeError = undefined
    if (err !== undefined) throw err
  }

  protect (input: ProtectInput): { id: string } {
    if (input === null || typeof input !== 'object') throw new InvalidGuardInputError('protect takes an object {value, label, category, scope?, ttlMs?, persist?}')
    const { value, label, category, scope, ttlMs, persist } = input
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_VALUE_CHARS) {
      throw new InvalidGuardInputError(`value must be a string of 1 to ${MAX_VALUE_CHARS} characters`)
    }
    if (normalizeValue(value).length < MIN_VALUE_NORMALIZED) {
      throw new InvalidGuardInputError(`value must hold at least ${MIN_VALUE_NORMALIZED} letters or digits to be matched reliably`)
    }
    if (typeof label !== 'string' || label.length === 0 || label.length > MAX_NAME_CHARS || /[\u0000-\u001f\u007f]/.test(label)) {
      throw new InvalidGuardInputError(`label must be a non-empty string of at most ${MAX_NAME_CHARS} characters without control characters`)
    }
    checkCategory(category)
    if (scope !== undefined) checkName(scope, 'scope')
    if (ttlMs !== undefined && (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS)) {
      throw new InvalidGuardInputError(`ttlMs must be a positive integer of at most ${MAX_TTL_MS}`)
    }
    if (persist !== undefined && typeof persist !== 'boolean') throw new InvalidGuardInputError('persist must be a boolean')
    if (persist === true) {
      if (this.#init.persistPath === undefined) throw new InvalidGuardInputError('persist: true needs a guard created with persistPath')
      if (!this.#loaded) throw new GuardNotStartedError('persist: true before the guard store was loaded (start() it first)')
    }
    this.sweep()
    if (this.#registry.size >= this.#maxValues) throw new GuardLimitError(`at most ${this.#maxValues} registered values`)
    const entry: Entry = { id: randomBytes(9).toString('base64url'), value, label, category, persist: persist === true }
    if (scope !== undefined) entry.scope = scope
    if (ttlMs !== undefined) entry.expiresAt = this.#now() + ttlMs
    this.#registry.add(entry)
    if (entry.persist) this.#save()
    return { id: entry.id }
  }

  unprotect (input: { id: string } | { scope: string }): { removed: number } {
    if (input === null || typeof input !== 'object') throw new InvalidGuardInputError('unprotect takes {id} or {scope}')
    const gone: Entry[] = []
    if ('id' in input && input.id !== undefined) {
      if (typeof input.id !== 'string' || input.id.length === 0 || input.id.length > MAX_NAME_CHARS) throw new InvalidGuardInputError('id must be a non-empty string')
      const e = this.#registry.get(input.id)
      if (e !== undefined) { this.#registry.delete(e.id); gone.push(e) }
    } else if ('scope' in input && input.scope !== undefined) {
      checkName(input.scope, 'scope')
      for (const e of [...this.#registry.values()]) {
        if (e.scope === input.scope) { this.#registry.delete(e.id); gone.push(e) }
      }
    } else {
      throw new InvalidGuardInputError('unprotect takes {id} or {scope}')
    }
    if (gone.some(e => e.persist)) this.#save()
    return { removed: gone.length }
  }

  list (input: { scope?: string } = {}): ProtectedInfo[] {
    if (input === null || typeof input !== 'object') throw new InvalidGuardInputError('list takes {scope?}')
    if (input.scope !== undefined) checkName(input.scope, 'scope')
    this.sweep()
    const out: ProtectedInfo[] = []
    for (const e of this.#registry.values()) {
      if (input.scope !== undefined && e.scope !== input.scope) continue
      const info: ProtectedInfo = { id: e.id, label: e.label, category: e.category }
      if (e.scope !== undefined) info.scope = e.scope
      if (e.expiresAt !== undefined) info.expiresAt = e.expiresAt
      if (e.persist) info.persist = true
      out.push(info)
    }
    return out
  }

  setPolicy (input: PolicyInput): GuardPolicy {
    const policy = checkPolicy(input)
    if (!this.#policies.has(policy.peer, policy.service) && this.#policies.size >= this.#maxPolicies) {
      throw new GuardLimitError(`at most ${this.#maxPolicies} policies`)
    }
    this.#policies.set(policy)
    return copyPolicy(policy)
  }

  removePolicy (input: { peer: string, service?: string }): { removed: number } {
    if (input === null || typeof input !== 'object') throw new InvalidGuardInputError('removePolicy takes {peer, service?}')
    const peer = checkName(input.peer, 'peer')
    const service = input.service === undefined ? undefined : checkName(input.service, 'service')
    return { removed: this.#policies.delete(peer, service) ? 1 : 0 }
  }

  getPolicy (input: { peer?: string } = {}): GuardPolicy[] {
    if (input === null || typeof input !== 'object') throw new InvalidGuardInputError('getPolicy takes {peer?}')
    const peer = input.peer === undefined ? undefined : checkName(input.peer, 'peer')
    return this.#policies.list(peer)
  }

  resolvePolicy (input: { peerNames: string[], service?: string }): GuardPolicy {
    const { names, service } = this.#checkTarget(input)
    return copyPolicy(this.#policies.resolve(names, service))
  }

  async check (input: CheckInput): Promise<GuardDecision> {
    if (input === null || typeof input !== 'object') throw new InvalidGuardInputError('check takes {peerNames, service?, body}')
    const { names, service } = this.#checkTarget(input)
    const body = this.#checkBody(input.body)
    if (input.binary !== undefined && typeof input.binary !== 'boolean') throw new InvalidGuardInputError('binary must be a boolean')
    const policy = copyPolicy(this.#policies.resolve(names, service))
    const findings = await this.inspect(body, { binary: input.binary === true })
    for (const f of findings) f.allowed = allows(policy.allow, f.category)
    const blocked = findings.filter(f => f.allowed !== true)
    const decision: GuardDecision = { action: 'pass', findings, policy }
    if (blocked.length > 0) {
      decision.action = policy.action
      if (policy.action === 'redact') decision.body = redact(body, blocked)
    }
    this.#count(decision)
    return decision
  }

  async enforce (input: CheckInput, options: EnforceOptions = {}): Promise<{ body: string, decision: GuardDecision }> {
    const decision = await this.check(input)
    // e.g. the audit record: on disk before the content leaves or is refused
    await options.onDecision?.(decision)
    if (decision.action === 'block') throw new LeakBlockedError(decision.findings)
    // the outbox (src/outbox) brands what leaves; the guard only decides
    return { body: decision.action === 'redact' ? decision.body as string : input.body, decision }
  }

  async inspect (body: string, options: { binary?: boolean } = {}): Promise<GuardFinding[]> {
    this.#checkBody(body)
    this.sweep()
    const raw: GuardFinding[] = []
    if (options.binary === true) {
      // registered values over every byte (a value's UTF-8 bytes read as latin1), the rest over the printable runs
      this.#matchRegistered(body, (start, end) => [start, end], raw, undefined)
      const view = printableRuns(body, MIN_PRINTABLE_RUN)
      if (view.text.length > 0) await this.#detect(view.text, (start, end) => [view.at(start), view.at(end - 1) + 1], raw, 0, undefined, true)
    } else {
      await this.#scan(body, 0, raw, 0, undefined)
    }
    return mergeFindings(raw)
  }

  async screenInbound (body: string): Promise<Screening | undefined> {
    this.#checkBody(body)
    const findings = await this.inspect(body)
    const ownValues = findings.filter(f => f.detector === 'registered').map(f => ({ label: f.label as string, category: f.category, start: f.start, end: f.end }))
    const secrets = [...new Set(findings.filter(f => f.detector !== 'registered' && f.category.startsWith(SECRET_PREFIX)).map(f => f.category))]
    const injection = findInjection(body)
    if (ownValues.length === 0 && secrets.length === 0 && injection.length === 0) return undefined
    return { ownValues, secrets, injection }
  }

  stats (): GuardStats {
    return { registered: this.#registry.size, patterns: this.#registry.patternCount, ...structuredClone(this.#stats) }
  }

  /** Drop expired values now (also done before every check, list and protect). */
  sweep (): number {
    const next = this.#registry.nextExpiry()
    if (next === undefined || next > this.#now()) return 0
    const gone = this.#registry.sweep(this.#now())
    if (gone.some(e => e.persist)) this.#save()
    return gone.length
  }

  /**
   * Every finding in `text` (offsets shifted by `offset`); decoded tokens are
   * scanned recursively and their findings cover the whole encoded token.
   */
  async #scan (text: string, offset: number, out: GuardFinding[], depth: number, encoded: Encoded | undefined): Promise<void> {
    const place = (start: number, end: number): [number, number] => encoded === undefined ? [start + offset, end + offset] : [encoded.start, encoded.end]
    this.#matchRegistered(text, place, out, encoded)
    await this.#detect(text, place, out, depth, encoded)
  }

  #matchRegistered (text: string, place: Place, out: GuardFinding[], encoded: Encoded | undefined): void {
    for (const hit of this.#registry.match(text)) {
      const [start, end] = place(hit.start, hit.end)
      out.push({ detector: 'registered', category: hit.entry.category, label: hit.entry.label, id: hit.entry.id, start, end, variant: encoded?.variant ?? hit.variant })
    }
  }

  /**
   * The detectors other than registered values, and the decoded tokens (scanned whole, recursively);
   * `binary`: `text` is a binary body's printable runs (what a token decodes to is text again).
   */
  async #detect (text: string, place: Place, out: GuardFinding[], depth: number, encoded: Encoded | undefined, binary = false): Promise<void> {
    const { runs, secretRun } = scanRuns(text, MIN_ENCODED_TOKEN_CHARS)
    const hits = [...detectPii(text, { binary }), ...detectPrivateKeys(text)]
    if (this.#secretScan) hits.push(...await scanSecrets(text, secretRun))
    if (this.#entropyScan && depth === 0) hits.push(...detectHighEntropy(text, runs, decodesToText))
    for (const h of hits) {
      const [start, end] = place(h.start, h.end)
      const f: GuardFinding = { detector: h.detector, category: h.category, start, end }
      if (encoded !== undefined) f.variant = encoded.variant
      out.push(f)
    }
    if (depth >= MAX_DECODE_DEPTH) return
    for (const t of decodeTokens(text, runs)) {
      const [start, end] = place(t.start, t.end)
      await this.#scan(t.text, 0, out, depth + 1, { start, end, variant: encoded?.variant ?? t.variant })
    }
  }

  #checkTarget (input: { peerNames: unknown, service?: unknown }): { names: string[], service: string | undefined } {
    if (!Array.isArray(input.peerNames) || input.peerNames.length === 0 || input.peerNames.length > 64) {
      throw new InvalidGuardInputError('peerNames must be a non-empty array (the peer ID, then its petnames)')
    }
    const names = input.peerNames.map((n: unknown) => checkName(n, 'peerNames[]'))
    const service = input.service === undefined ? undefined : checkName(input.service, 'service')
    return { names, service }
  }

  #checkBody (body: unknown): string {
    if (typeof body !== 'string') throw new InvalidGuardInputError('body must be a string')
    if (body.length > this.#maxBodyChars) throw new InvalidGuardInputError(`body must be at most ${this.#maxBodyChars} characters`)
    return body
  }

  #count (d: GuardDecision): void {
    this.#stats.checks++
    this.#stats.actions[d.action]++
    if (d.action === 'pass') return
    for (const f of d.findings) {
      if (f.allowed === true) continue
      this.#stats.blockedByCategory[f.category] = (this.#stats.blockedByCategory[f.category] ?? 0) + 1
    }
  }

  /** Queue a rewrite of the store; writes are serialised so the last one holds the latest state. */
  #save (): void {
    const file = this.#init.persistPath
    if (file === undefined || !this.#loaded) return
    this.#writes = this.#writes.then(async () => {
      await saveStore(file, this.#registry.values())
    }).catch((err: Error) => {
      this.#writeError = err
      this.#init.onPersistError?.(err)
    })
  }
}

/** Maps offsets in the text being scanned to offsets in the body */
type Place = (start: number, end: number) => [number, number]
/** The encoded token a decoded text came from: its findings cover the whole token */
interface Encoded { start: number, end: number, variant: GuardFinding['variant'] }

function bool (b: unknown, field: string): boolean {
  if (typeof b !== 'boolean') throw new InvalidGuardInputError(`${field} must be a boolean`)
  return b
}

function positiveInt (n: unknown, field: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) throw new InvalidGuardInputError(`${field} must be a positive integer`)
  return n
}
