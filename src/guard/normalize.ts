/**
 * Normalisation for matching registered values: keep letters and digits
 * only, lower-cased and without diacritics, with a map from every normalised
 * character back to the original text so findings carry original offsets.
 *
 * Stripping every separator is what makes `4111 1111-1111 1111`,
 * `John.SMITH` and `1 2 3 4` match their registered forms; word boundaries,
 * lost in the process, are checked afterwards on the original text
 * ({@link isBoundary}) so that `ann` does not match inside `planning`.
 *
 * @module
 */

/** A normalised text and, per normalised character, the original span it came from. */
export interface Normalized {
  text: string
  /** Original start offset of each normalised character. */
  starts: Uint32Array
  /** Original end offset (exclusive) of each normalised character; undefined when every one is ASCII (then start + 1), see {@link endOf}. */
  ends: Uint32Array | undefined
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u
const MARKS = /\p{M}/gu
const NOT_LETTER_OR_DIGIT = /[^\p{L}\p{N}]/gu
/**
 * Cyrillic and Greek letters that look like Latin ones (a subset of Unicode's
 * confusables), folded to the Latin letter so `Мarguerite` with a Cyrillic
 * М still matches. Only non-ASCII text pays for this.
 */
const CONFUSABLES = new Map<string, string>(Object.entries({
  а: 'a', в: 'b', е: 'e', ё: 'e', к: 'k', м: 'm', н: 'h', о: 'o', р: 'p', с: 'c', т: 't', у: 'y', х: 'x', ѕ: 's', і: 'i', ї: 'i', ј: 'j', ԁ: 'd', ԛ: 'q', ԝ: 'w', һ: 'h', ӏ: 'l',
  α: 'a', β: 'b', ε: 'e', η: 'n', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x', γ: 'y', ζ: 'z', μ: 'u'
}))
// folded units are whole code points or surrogate pairs kept together, so decoding cannot fail
const UTF16 = new TextDecoder('utf-16le')

/** 0: neither, 1: digit, 2: letter. ASCII on a fast path; other scripts through Unicode properties. */
export function charClass (text: string, i: number): number {
  const c = text.charCodeAt(i)
  if (c >= 48 && c <= 57) return 1
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90)) return 2
  if (c < 128 || Number.isNaN(c)) return 0
  const cp = text.codePointAt(i) ?? 0
  const ch = String.fromCodePoint(cp)
  if (!LETTER_OR_DIGIT.test(ch)) return 0
  return /\p{N}/u.test(ch) ? 1 : 2
}

// scratch buffers reused by `normalize(…, true)`: the guard normalises every outbound message
let scratchCodes = new Uint16Array(4096)
let scratchStarts = new Uint32Array(4096)

/**
 * Lower-case letters and digits of `input`, everything else dropped.
 * Non-ASCII letters and digits are folded (lower-cased; NFKD, so fullwidth
 * and styled forms become plain; marks removed; Cyrillic and Greek Latin
 * look-alikes mapped) so `José` matches `jose` and `４１` matches `41`. Runs
 * on every outbound message, so it allocates nothing per ASCII character;
 * with `reuse` the offset arrays are views of shared scratch buffers, valid
 * until the next `normalize(…, true)` call (the registry uses them
 * synchronously).
 */
export function normalize (input: string, reuse = false): Normalized {
  if (typeof input !== 'string') throw new TypeError('normalize: input must be a string')
  const n = input.length
  let codes = scratchCodes
  let starts = scratchStarts
  if (!reuse || codes.length < n + 8) {
    codes = new Uint16Array(n + 8)
    starts = new Uint32Array(n + 8)
  }
  // only non-ASCII input needs ends of its own (an ASCII character ends one unit after it starts)
  let ends: Uint32Array | undefined
  let k = 0
  for (let i = 0; i < n; i++) {
    const c = input.charCodeAt(i)
    if (c < 128) {
      if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57)) {
        codes[k] = c; starts[k] = i; if (ends !== undefined) ends[k] = i + 1; k++
      } else if (c >= 65 && c <= 90) {
        codes[k] = c + 32; starts[k] = i; if (ends !== undefined) ends[k] = i + 1; k++
      }
      continue
    }
    const cp = input.codePointAt(i) ?? c
    const width = cp > 0xffff ? 2 : 1
    const ch = String.fromCodePoint(cp)
    if (LETTER_OR_DIGIT.test(ch)) {
      if (ends === undefined) {
        ends = new Uint32Array(codes.length)
        for (let j = 0; j < k; j++) ends[j] = (starts[j] as number) + 1
      }
      const lower = ch.toLowerCase()
      // NFKD can yield separators (½ → 1⁄2) and capitals (ℌ → H): keep lower-cased letters and digits
      const folded = CONFUSABLES.get(lower) ?? lower.normalize('NFKD').replace(MARKS, '').replace(NOT_LETTER_OR_DIGIT, '').toLowerCase()
      let e: Uint32Array = ends
      for (let j = 0; j < folded.length; j++) {
        if (k >= codes.length) {
          const c2 = new Uint16Array(codes.length * 2); c2.set(codes); codes = c2
          const s2 = new Uint32Array(starts.length * 2); s2.set(starts); starts = s2
          const e2 = new Uint32Array(e.length * 2); e2.set(e); e = e2
        }
        codes[k] = folded.charCodeAt(j); starts[k] = i; e[k] = i + width; k++
      }
      ends = e
    }
    i += width - 1
  }
  if (reuse && codes.length > scratchCodes.length) { scratchCodes = codes; scratchStarts = starts }
  const s = starts.subarray(0, k)
  return { text: UTF16.decode(codes.subarray(0, k)), starts: s, ends: ends === undefined ? undefined : ends.subarray(0, k) }
}

/** Original end offset (exclusive) of normalised character `k`. */
export function endOf (norm: Normalized, k: number): number {
  return norm.ends === undefined ? (norm.starts[k] as number) + 1 : norm.ends[k] as number
}

/** The normalised form of a value (no offset map needed). */
export function normalizeValue (value: string): string {
  return normalize(value).text
}

/**
 * Whether a match may start (`side` `start`) at original offset `at`, or end
 * just before it (`side` `end`): the neighbouring character is not a letter
 * or digit of the same class. A letter→digit change counts as a boundary, so
 * `card4111…` still matches the card number.
 */
export function isBoundary (text: string, at: number, side: 'start' | 'end'): boolean {
  if (side === 'start') {
    if (at <= 0) return true
    const before = charClass(text, at - 1)
    return before === 0 || before !== charClass(text, at)
  }
  if (at >= text.length) return true
  const after = charClass(text, at)
  return after === 0 || after !== charClass(text, at - 1)
}

const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december']
const MONTH_ABBR = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']

/** A calendar date (month 1–12). */
export interface CalendarDate { year: number, month: number, day: number }

function valid (year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1 || year < 1000 || year > 2999) return false
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate()
}

function monthOf (word: string): number {
  const w = word.toLowerCase().replace(/\.$/, '')
  if (w === 'sept') return 9
  const full = MONTHS.indexOf(w)
  if (full >= 0) return full + 1
  return MONTH_ABBR.indexOf(w) + 1
}

/**
 * The dates a registered value may denote: ISO `1995-04-12` (or `/`, `.`),
 * `April 12, 1995`, `12 April 1995`, `12.04.1995`, and for the ambiguous
 * `12/04/1995` both day-first and month-first readings. Empty when the
 * value is not a date.
 */
export function parseDates (value: string): CalendarDate[] {
  const v = value.trim()
  const out: CalendarDate[] = []
  const push = (year: number, month: number, day: number): void => {
    if (valid(year, month, day) && !out.some(d => d.year === year && d.month === month && d.day === day)) out.push({ year, month, day })
  }
  let m = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$/.exec(v)
  if (m !== null) push(Number(m[1]), Number(m[2]), Number(m[3]))
  m = /^(\d{1,2})([-/.])(\d{1,2})\2(\d{4})$/.exec(v)
  if (m !== null) {
    const a = Number(m[1]); const b = Number(m[3]); const y = Number(m[4])
    if (m[2] === '.') push(y, b, a) // dotted dates are day-first everywhere they are used
    else { push(y, b, a); push(y, a, b) }
  }
  m = /^([A-Za-z]+\.?)\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$/.exec(v)
  if (m !== null && monthOf(m[1] as string) > 0) push(Number(m[3]), monthOf(m[1] as string), Number(m[2]))
  m = /^(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]+\.?),?\s+(\d{4})$/.exec(v)
  if (m !== null && monthOf(m[2] as string) > 0) push(Number(m[3]), monthOf(m[2] as string), Number(m[1]))
  return out
}

function ordinal (day: number): string {
  if (day >= 11 && day <= 13) return `${day}th`
  return `${day}${['th', 'st', 'nd', 'rd'][day % 10] ?? 'th'}`
}

/**
 * Normalised spellings of a date, as `normalize` would turn them out of a
 * message: ISO, day-first and month-first numeric (padded or not, 4- and
 * 2-digit years), month names full and abbreviated, either order, ordinals.
 */
export function dateForms (d: CalendarDate): string[] {
  const dd = String(d.day).padStart(2, '0')
  const mm = String(d.month).padStart(2, '0')
  const yyyy = String(d.year)
  const yy = yyyy.slice(2)
  const names = [MONTHS[d.month - 1] as string, MONTH_ABBR[d.month - 1] as string]
  if (d.month === 9) names.push('sept')
  const days = [String(d.day), dd, ordinal(d.day)]
  const forms = new Set<string>([`${yyyy}${mm}${dd}`, `${yyyy}${d.month}${d.day}`])
  for (const y of [yyyy, yy]) {
    for (const [a, b] of [[dd, mm], [String(d.day), String(d.month)], [mm, dd], [String(d.month), String(d.day)]]) {
      forms.add(`${a}${b}${y}`)
    }
  }
  for (const name of names) {
    for (const day of days) {
      forms.add(`${name}${day}${yyyy}`)
      forms.add(`${day}${name}${yyyy}`)
      forms.add(`${day}of${name}${yyyy}`)
    }
  }
  // 2-digit-year forms shorter than 6 characters (e.g. 1/2/95) match too much
  return [...forms].filter(f => f.length >= 6)
}

/** Words of a value: maximal letter/digit runs, normalised. */
export function wordsOf (value: string): string[] {
  return value.split(/[^\p{L}\p{N}]+/u).map(normalizeValue).filter(w => w.length > 0)
}
