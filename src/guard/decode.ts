/**
 * Encoded forms: tokens of a message that decode (base64 / base64url, hex,
 * URL percent-encoding) to readable text are decoded, and the decoded text
 * is inspected like the message itself. Decoding the message rather than
 * precomputing encodings of each value also finds a value inside a larger
 * encoded blob (base64 of a whole sentence), whatever its alignment.
 *
 * @module
 */

import { MIN_ENCODED_TOKEN_CHARS } from './constants.ts'
import type { MatchVariant } from './types.ts'

/** A token of the message and the text it decodes to. */
export interface DecodedToken { start: number, end: number, text: string, variant: MatchVariant }

const HEX = /^[0-9A-Fa-f]{12,}$/
const RUN_SEPARATORS = /[+/_=-]/
const PERCENT_ESCAPE = /%[0-9A-Fa-f]{2}/
// split, not a /[^\s]*%XX[^\s]*/g scan: that one retries from every character of a long token and is quadratic
const URL_SPLIT = /[\s"'<>]+/
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Whether bytes are UTF-8 text that a person could read: no control characters but TAB/LF/CR, mostly printable. */
export function readable (bytes: Uint8Array): string | undefined {
  if (bytes.length < 3) return undefined
  // most candidates are random bytes: reject them on the first control byte, without a throwing decode
  let ascii = true
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number
    if ((b < 32 && b !== 9 && b !== 10 && b !== 13) || b === 0x7f) return undefined
    if (b >= 0x80) ascii = false
  }
  if (ascii) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1')
  let text: string
  try { text = decoder.decode(bytes) } catch { return undefined }
  let bad = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if ((c < 32 && c !== 9 && c !== 10 && c !== 13) || c === 0x7f || c === 0xfffd) bad++
  }
  return bad === 0 ? text : undefined
}

/** The text a base64/base64url token decodes to, if it is readable text. */
export function decodeBase64 (token: string): string | undefined {
  const t = token.replace(/=+$/, '')
  if (t.length < MIN_ENCODED_TOKEN_CHARS || t.length % 4 === 1) return undefined
  // plain words and numbers are not base64 of anything readable worth the decode
  if (!/[0-9+/_-]/.test(t) && !/[a-z][A-Z]/.test(t)) return undefined
  if (!/[A-Za-z]/.test(t)) return undefined // base64 of text always holds letters; numbers are not worth a decode
  if (/^[0-9A-Fa-f]+$/.test(t) && t.length % 2 === 0) return undefined // leave it to hex
  const bytes = Buffer.from(t, 'base64')
  const text = readable(bytes)
  // the decode must be canonical, else random words "decode" to junk that happens to be printable
  if (text === undefined || bytes.toString('base64').replace(/=+$/, '') !== t.replace(/-/g, '+').replace(/_/g, '/')) return undefined
  return text
}

/** Whether a token is base64 of readable text (used to keep encoded text out of the entropy detector). */
export function decodesToText (token: string): boolean {
  return decodeBase64(token) !== undefined
}

/** Text made of runs of another text, and the way back to that text's offsets. */
export interface RunsView {
  text: string
  /** The offset in the original text of character `i` of `text` */
  at: (i: number) => number
}

const PRINTABLE_RUN_SEPARATOR = '\n'

/**
 * The runs of printable ASCII (and TAB, LF, CR) at least `min` long in
 * `text`, joined by a line break: the strings a person could read in a
 * binary body, as `strings(1)` shows them. One regex pass (~1 ms per MiB of
 * bytes with the high bit set, ~3 ms of random bytes).
 */
export function printableRuns (text: string, min: number): RunsView {
  if (!Number.isSafeInteger(min) || min < 1) throw new RangeError('min must be a positive integer')
  const parts: string[] = []
  const joinedStarts: number[] = []
  const originalStarts: number[] = []
  let length = 0
  const re = new RegExp(`[\\t\\n\\r\\x20-\\x7e]{${min},}`, 'g')
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (parts.length > 0) length += PRINTABLE_RUN_SEPARATOR.length
    joinedStarts.push(length)
    originalStarts.push(m.index)
    parts.push(m[0])
    length += m[0].length
  }
  const at = (i: number): number => {
    // the last run starting at or before i (binary search; a separator maps to the end of the run before it)
    let lo = 0
    let hi = joinedStarts.length - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((joinedStarts[mid] as number) <= i) lo = mid
      else hi = mid - 1
    }
    const k = lo
    const offset = Math.min(i - (joinedStarts[k] as number), (parts[k] as string).length - 1)
    return (originalStarts[k] as number) + offset
  }
  return { text: parts.join(PRINTABLE_RUN_SEPARATOR), at }
}

/** A maximal run of base64-alphabet characters `[A-Za-z0-9+/_=-]`. */
export interface TokenRun { start: number, end: number }

function b64Char (c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 95 || c === 61 || c === 45
}

/**
 * Maximal runs of base64-alphabet characters at least `min` long that could
 * be an encoding or a key — holding a digit, a symbol, or an upper-case
 * letter after a lower-case one (plain words hold none, and base64 or hex of
 * text always does) — by one pass over the text. Shared by the decoders and
 * the entropy detector: regexes such as `/[A-Za-z0-9+/_-]{8,}/g` retry at
 * every character of every shorter word, which costs more than the matcher.
 */
export function tokenRuns (text: string, min: number): TokenRun[] {
  return scanRuns(text, min).runs
}

/**
 * {@link tokenRuns}, and in the same pass whether the text holds a run of
 * ≥ 16 characters of `[A-Za-z0-9_=+-]` with a letter (the token shape of the
 * secretlint prefilter, see `secrets.ts`), so a message is walked once for both.
 */
export function scanRuns (text: string, min: number): { runs: TokenRun[], secretRun: boolean } {
  const runs: TokenRun[] = []
  let start = -1
  let mixed = false
  let prevLower = false
  let secretRun = false
  let prun = 0
  let pletters = false
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 32
    if (b64Char(c)) {
      if (start < 0) { start = i; mixed = false; prevLower = false }
      const lower = c >= 97 && c <= 122
      const letter = lower || (c >= 65 && c <= 90)
      if (!letter) mixed = true
      else if (!lower && prevLower) mixed = true
      prevLower = lower
      if (c === 47) { prun = 0; pletters = false } else { pletters ||= letter; if (++prun >= 16 && pletters) secretRun = true }
    } else {
      prun = 0; pletters = false
      if (start >= 0) {
        if (mixed && i - start >= min) runs.push({ start, end: i })
        start = -1
      }
    }
  }
  return { runs, secretRun }
}

/** Tokens of `text` that decode to readable text, one level deep (`runs`: its `tokenRuns(text, 8)` when already known). */
export function decodeTokens (text: string, runs: TokenRun[] = tokenRuns(text, MIN_ENCODED_TOKEN_CHARS)): DecodedToken[] {
  const out: DecodedToken[] = []
  if (text.length < MIN_ENCODED_TOKEN_CHARS) return out
  for (const r of runs) {
    const token = text.slice(r.start, r.end)
    // hex: the letter/digit parts of the run (hex is bounded by anything but letters and digits)
    if (RUN_SEPARATORS.test(token)) {
      let at = r.start
      for (const part of token.split(/([+/_=-])/)) {
        if (part.length >= 12 && part.length % 2 === 0 && HEX.test(part)) {
          const decoded = readable(Buffer.from(part, 'hex'))
          if (decoded !== undefined) out.push({ start: at, end: at + part.length, text: decoded, variant: 'hex' })
        }
        at += part.length
      }
    } else if (token.length % 2 === 0 && HEX.test(token)) {
      const decoded = readable(Buffer.from(token, 'hex'))
      if (decoded !== undefined) out.push({ start: r.start, end: r.end, text: decoded, variant: 'hex' })
      continue
    }
    const decoded = decodeBase64(token)
    if (decoded !== undefined) out.push({ start: r.start, end: r.end, text: decoded, variant: 'base64' })
  }
  if (text.includes('%')) {
    let at = 0
    for (const token of text.split(URL_SPLIT)) {
      const start = text.indexOf(token, at)
      at = start + token.length
      if (token.length === 0 || !PERCENT_ESCAPE.test(token)) continue
      let decoded: string
      try {
        decoded = decodeURIComponent(token.replace(/\+/g, ' '))
      } catch {
        // a stray % or a broken sequence: decode what can be decoded
        decoded = token.replace(/%([0-9A-Fa-f]{2})/g, (_s, h: string) => String.fromCharCode(parseInt(h, 16)))
      }
      if (decoded !== token) out.push({ start, end: at, text: decoded, variant: 'url' })
    }
  }
  return out
}
