/**
 * Registered context: the values an agent holds, compiled into one
 * Aho-Corasick automaton (`modern-ahocorasick`) over their normalised forms,
 * date spellings and partial-run windows, so one pass over a message finds
 * every value whatever their number.
 *
 * Partial runs (documented rule):
 * - words: a value of n ≥ 3 words (with at least one letter) leaks when any
 *   ⌈n·⅔⌉ contiguous words of it appear (and those words hold ≥ 8 letters or
 *   digits): windows of exactly that many words are patterns, any longer run
 *   contains one;
 * - digits: a run of ≥ 12 digits in a value leaks when ≥ 8 contiguous digits
 *   of it appear, bounded in the message (not inside a longer unrelated
 *   number; a joined run of ≥ 12 digits counts even there, since it cannot be
 *   a coincidence and one added digit must not hide a card number): windows
 *   of 8 digits are patterns and touching hits are joined.
 *   So the last four digits of a card alone pass (what PCI DSS allows to be
 *   shown), any 8 of them do not.
 * - order: a value of exactly two words (a name) also matches in reverse
 *   order ("Okonkwo, Ingrid");
 * - dates: a registered date (parsed from the value) matches in every common
 *   format; a day and month without the year does not.
 *
 * @module
 */

import AhoCorasick from 'modern-ahocorasick'
import { dateForms, endOf, isBoundary, normalize, normalizeValue, parseDates, wordsOf } from './normalize.ts'
import { MAX_PARTIAL_WORDS, MIN_PARTIAL_WORD_CHARS } from './constants.ts'
import type { MatchVariant } from './types.ts'

/** A registered value. `value` never leaves this module except to the persistence file. */
export interface Entry {
  id: string
  value: string
  label: string
  category: string
  scope?: string
  expiresAt?: number
  persist: boolean
}

type PatternKind = 'verbatim' | 'date' | 'partial'

interface PatternData { entry: Entry, kind: PatternKind }

/** A registered value found in a text (offsets into that text). */
export interface RegisteredHit {
  entry: Entry
  start: number
  end: number
  variant: MatchVariant
}

/** Tuning of partial-run matching. */
export interface PartialRules {
  minPartialDigits: number
  longNumberDigits: number
  partialWordsFraction: number
}

/** The patterns of one value, deduplicated (a pattern may be both a date form and the value itself). */
export function patternsOf (value: string, rules: PartialRules): Array<{ pattern: string, kind: PatternKind }> {
  const seen = new Set<string>()
  const out: Array<{ pattern: string, kind: PatternKind }> = []
  const add = (pattern: string, kind: PatternKind): void => {
    if (pattern.length === 0 || seen.has(pattern)) return
    seen.add(pattern); out.push({ pattern, kind })
  }
  const full = normalizeValue(value)
  add(full, 'verbatim')
  // binary bodies that are not UTF-8 are screened as latin1 (src/outbox): there a value's UTF-8 bytes read like this
  if (/[^\x00-\x7f]/.test(value)) add(normalizeValue(Buffer.from(value, 'utf8').toString('latin1')), 'verbatim')
  const dates = parseDates(value)
  for (const d of dates) for (const f of dateForms(d)) add(f, 'date')
  if (dates.length > 0) return out
  const words = wordsOf(value).slice(0, MAX_PARTIAL_WORDS)
  // two-word values are mostly names, written "Last, First" as often as "First Last"
  if (words.length === 2 && /\p{L}/u.test(full)) add(`${words[1] as string}${words[0] as string}`, 'verbatim')
  if (words.length >= 3 && /\p{L}/u.test(full)) {
    const k = Math.ceil(words.length * rules.partialWordsFraction)
    for (let i = 0; i + k <= words.length && k < words.length; i++) {
      const w = words.slice(i, i + k).join('')
      if (w.length >= MIN_PARTIAL_WORD_CHARS) add(w, 'partial')
    }
  }
  const w = rules.minPartialDigits
  for (const run of full.match(/\d+/g) ?? []) {
    if (run.length < rules.longNumberDigits) continue
    for (let i = 0; i + w <= run.length; i++) add(run.slice(i, i + w), 'partial')
  }
  return out
}

/** The set of registered values and its compiled automaton (rebuilt lazily after a change). */
/** A compiled automaton over a set of entries. */
interface Compiled { matcher: AhoCorasick<PatternData[]>, patterns: number, entries: number }

/**
 * The set of registered values and its compiled automata. Compiling 10,000
 * values takes about a second, so a change does not recompile everything:
 * new values go into a small second automaton (rebuilt alone, in
 * milliseconds) and removed ones are skipped at match time until they are
 * a quarter of the main automaton; then, or when the second automaton
 * outgrows an eighth of the main one, both are rebuilt into one.
 */
export class Registry {
  readonly #entries = new Map<string, Entry>()
  readonly #rules: PartialRules
  #main: Compiled | undefined
  #delta: Compiled | undefined
  /** Entries added since the main automaton was built (compiled into `#delta`). */
  readonly #pending = new Set<Entry>()
  #deltaDirty = false
  /** Entries removed that the main automaton still holds. */
  #dead = 0
  /** Cached earliest expiry; null when it must be recomputed (checked before every message, so not O(n) each time). */
  #nextExpiry: number | undefined | null = undefined

  constructor (rules: PartialRules) {
    this.#rules = rules
  }

  get size (): number { return this.#entries.size }
  get patternCount (): number { this.#compile(); return (this.#main?.patterns ?? 0) + (this.#delta?.patterns ?? 0) }

  add (entry: Entry): void {
    const old = this.#entries.get(entry.id)
    if (old !== undefined) this.delete(old.id)
    this.#entries.set(entry.id, entry)
    this.#pending.add(entry)
    this.#deltaDirty = true
    if (entry.expiresAt !== undefined && this.#nextExpiry !== null && (this.#nextExpiry === undefined || entry.expiresAt < this.#nextExpiry)) {
      this.#nextExpiry = entry.expiresAt
    }
  }

  delete (id: string): boolean {
    const e = this.#entries.get(id)
    if (e === undefined) return false
    this.#entries.delete(id)
    if (this.#pending.delete(e)) this.#deltaDirty = true
    else this.#dead++
    if (e.expiresAt !== undefined && e.expiresAt === this.#nextExpiry) this.#nextExpiry = null
    return true
  }

  get (id: string): Entry | undefined { return this.#entries.get(id) }

  values (): IterableIterator<Entry> { return this.#entries.values() }

  /** Drop entries whose `expiresAt` ≤ `now`; the removed ones. */
  sweep (now: number): Entry[] {
    const gone: Entry[] = []
    for (const e of this.#entries.values()) {
      if (e.expiresAt !== undefined && e.expiresAt <= now) gone.push(e)
    }
    for (const e of gone) this.delete(e.id)
    return gone
  }

  /** The earliest expiry of any entry, or undefined. */
  nextExpiry (): number | undefined {
    if (this.#nextExpiry !== null) return this.#nextExpiry
    let next: number | undefined
    for (const e of this.#entries.values()) {
      if (e.expiresAt !== undefined && (next === undefined || e.expiresAt < next)) next = e.expiresAt
    }
    this.#nextExpiry = next
    return next
  }

  /**
   * One automaton pattern per distinct string, carrying every (value, kind)
   * that yields it. Besides saving memory this keeps the automaton on
   * modern-ahocorasick's fast ASCII scan: a state with 32 or more outputs
   * (easily reached when thousands of values share date forms or digit
   * windows) makes it fall back to Intl.Segmenter, ten times slower.
   */
  #build (entries: Iterable<Entry>): Compiled {
    const byPattern = new Map<string, PatternData[]>()
    let count = 0
    for (const entry of entries) {
      count++
      for (const p of patternsOf(entry.value, this.#rules)) {
        const list = byPattern.get(p.pattern)
        if (list === undefined) byPattern.set(p.pattern, [{ entry, kind: p.kind }])
        else list.push({ entry, kind: p.kind })
      }
    }
    return { matcher: new AhoCorasick([...byPattern].map(([pattern, data]) => ({ pattern, data }))), patterns: byPattern.size, entries: count }
  }

  #compile (): void {
    const mainSize = this.#main?.entries ?? 0
    if (this.#main === undefined || this.#dead * 4 > mainSize || this.#pending.size * 8 > Math.max(mainSize, 2048)) {
      this.#main = this.#build(this.#entries.values())
      this.#delta = undefined
      this.#pending.clear()
      this.#dead = 0
      this.#deltaDirty = false
      return
    }
    if (this.#deltaDirty) {
      this.#delta = this.#pending.size === 0 ? undefined : this.#build(this.#pending)
      this.#deltaDirty = false
    }
  }

  /**
   * Whether normalised `text[from, to)` is a run of at least `longNumberDigits`
   * digits: such a run of a registered number is no coincidence, so it counts
   * even inside a longer number (else one extra digit, `41111111111111119`,
   * would hide a card number).
   */
  #longDigits (text: string, from: number, to: number): boolean {
    if (to - from < this.#rules.longNumberDigits) return false
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i)
      if (c < 48 || c > 57) return false
    }
    return true
  }

  /**
   * Registered values in `text`, verbatim (normalised), as dates or partial
   * runs, bounded by word boundaries (except a whole value of ≥
   * `longNumberDigits` letters and digits, and runs of that many digits, see
   * `#longDigits`).
   */
  match (text: string): RegisteredHit[] {
    if (this.#entries.size === 0 || text.length === 0) return []
    this.#compile()
    const norm = normalize(text, true)
    if (norm.text.length === 0) return []
    const out: RegisteredHit[] = []
    // partial hits per entry, joined when they touch, then checked as one span
    const partial = new Map<Entry, Array<[number, number]>>()
    const hits = [...(this.#main?.matcher.iterate(norm.text) ?? []), ...(this.#delta?.matcher.iterate(norm.text) ?? [])]
    for (const hit of hits) {
      for (const data of hit.data ?? []) {
        if (this.#entries.get(data.entry.id) !== data.entry) continue // removed since the automaton was built
        if (data.kind === 'partial') {
          let list = partial.get(data.entry)
          if (list === undefined) { list = []; partial.set(data.entry, list) }
          list.push([hit.start, hit.end])
          continue
        }
        const start = norm.starts[hit.start] as number
        const end = endOf(norm, hit.end - 1)
        // a whole value of 12+ letters/digits inside a longer word is no coincidence either
        const long = (data.kind === 'verbatim' && hit.end - hit.start >= this.#rules.longNumberDigits) || this.#longDigits(norm.text, hit.start, hit.end)
        if (long || (isBoundary(text, start, 'start') && isBoundary(text, end, 'end'))) {
          out.push({ entry: data.entry, start, end, variant: data.kind })
        }
      }
    }
    for (const [entry, spans] of partial) {
      spans.sort((a, b) => a[0] - b[0])
      let cur: [number, number] | undefined
      const flush = (): void => {
        if (cur === undefined) return
        const start = norm.starts[cur[0]] as number
        const end = endOf(norm, cur[1] - 1)
        const covered = out.some(h => h.entry === entry && h.start <= start && h.end >= end)
        if (!covered && (this.#longDigits(norm.text, cur[0], cur[1]) || (isBoundary(text, start, 'start') && isBoundary(text, end, 'end')))) {
          out.push({ entry, start, end, variant: 'partial' })
        }
      }
      for (const s of spans) {
        if (cur !== undefined && s[0] <= cur[1]) cur[1] = Math.max(cur[1], s[1])
        else { flush(); cur = [s[0], s[1]] }
      }
      flush()
    }
    return out
  }
}
