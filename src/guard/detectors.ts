/**
 * Pattern detectors for PII and secrets that need no dictionary: e-mail,
 * phone, IBAN (checksum via `ibantools`), card numbers (Luhn), national IDs
 * (US SSN and UK NINO format rules, Spanish DNI/NIE check letter, German
 * tax ID ISO 7064 check digit), PEM private keys and high-entropy tokens.
 * Each returns offsets and a category, never the matched text.
 *
 * Phone numbers are the noisy one: a bare run of digits is far more often an
 * order number, amount or date than a phone number, so a candidate counts
 * only with an international `+` prefix, a phone word just before it
 * ("call", "tel", "mobile", …), or the North American `(555) 123-4567` /
 * `555-123-4567` shape; never after a currency sign or an order/invoice word.
 *
 * @module
 */

import { countrySpecs, isValidIBAN } from 'ibantools'
import { BINARY_EMAIL_MIN_CHARS, MIN_ENTROPY_BITS, MIN_ENTROPY_TOKEN_CHARS } from './constants.ts'
import type { TokenRun } from './decode.ts'
import type { GuardDetector } from './types.ts'

/** A detector finding before policy: offsets into the scanned text. */
export interface DetectorHit { detector: GuardDetector, category: string, start: number, end: number }

const EMAIL = /[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b/g
const FILE_TLD = /\.(?:png|jpe?g|gif|svg|webp|ico|bmp|tiff?|js|mjs|cjs|ts|css|json|md|html?|txt|pdf|zip|gz)$/i
const CARD = /(?<![\d.,])(?:\d[ -]?){12,18}\d(?![\d]|[.,]\d)/g
const IBAN = /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/gi
const PHONE = /(?<![\w$€£¥.,/#-])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{1,4}){1,5}(?![\w$€£¥%/]|[.,-]\d)/g
const PHONE_WORD = /\b(?:phone|tel|telephone|mobile|cell|call|ring|text|whatsapp|fax|my number|number is|reach)(?:\s+(?:me|us|him|her|them))?(?:\s+(?:on|at|is|under))?\W{0,12}$/i
const NOT_PHONE_WORD = /\b(?:order|invoice|ref|reference|ticket|booking|confirmation|tracking|account|acct|id|no|total|amount|price|usd|eur|gbp|iban|card|ssn|#)\W{0,12}$/i
const NANP = /^(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}$/
const SSN = /\b(\d{3})[- ](\d{2})[- ](\d{4})\b/g
const NINO = /\b([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])\b/gi
const DNI = /\b([XYZ]?)(\d{7,8})-?([A-Z])\b/gi
const STEUER_ID = /\b(\d{2}) ?(\d{3}) ?(\d{3}) ?(\d{3})\b/g
const STEUER_WORD = /(?:steuer|steuerid|steuer-id|idnr|identifikationsnummer|tax id|tin)\W{0,16}$/i
const PEM = /-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|$)/g
const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE'

/** Luhn check of a digit string. */
export function luhn (digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false
  let sum = 0
  let dbl = false
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48
    if (dbl) { d *= 2; if (d > 9) d -= 9 }
    sum += d
    dbl = !dbl
  }
  return sum % 10 === 0
}

/** Card-number prefixes of the major networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro). */
function cardPrefix (d: string): boolean {
  return /^(?:4|5[1-5]|2[2-7]|3[47]|3[068]|35|6011|64[4-9]|65|62|5018|5020|5038|6304|67)/.test(d)
}

/** German tax ID: 11 digits, no leading 0, one digit repeated (2 or 3 times) in the first 10, ISO 7064 MOD 11,10 check digit. */
export function steuerIdValid (d: string): boolean {
  if (!/^[1-9]\d{10}$/.test(d)) return false
  const counts = new Map<string, number>()
  for (const c of d.slice(0, 10)) counts.set(c, (counts.get(c) ?? 0) + 1)
  const repeated = [...counts.values()].filter(n => n > 1)
  if (repeated.length !== 1 || (repeated[0] as number) > 3) return false
  let product = 10
  for (let i = 0; i < 10; i++) {
    let sum = (Number(d[i]) + product) % 10
    if (sum === 0) sum = 10
    product = (sum * 2) % 11
  }
  let check = 11 - product
  if (check === 10) check = 0
  return check === Number(d[10])
}

/** Spanish DNI/NIE check letter. */
export function dniValid (prefix: string, digits: string, letter: string): boolean {
  const p = prefix.toUpperCase()
  const n = Number((p === '' ? '' : String('XYZ'.indexOf(p))) + digits)
  if (p === '' && digits.length !== 8) return false
  if (p !== '' && digits.length !== 7) return false
  return DNI_LETTERS[n % 23] === letter.toUpperCase()
}

/** US SSN format rules: area not 000, 666 or 9xx; group not 00; serial not 0000. */
export function ssnValid (area: string, group: string, serial: string): boolean {
  return area !== '000' && area !== '666' && area[0] !== '9' && group !== '00' && serial !== '0000'
}

/**
 * Length of the longest valid IBAN at the start of `candidate` (spaces
 * allowed between characters), or 0. The candidate regex is greedy and may
 * run into the next word ("…0130 00 please"), so shorter prefixes are tried.
 */
function ibanEnd (candidate: string): number {
  const ends: number[] = []
  let compact = ''
  for (let i = 0; i < candidate.length; i++) {
    if (candidate[i] === ' ') continue
    compact += (candidate[i] as string).toUpperCase()
    ends.push(i + 1)
  }
  // an IBAN has its country's fixed length (isValidIBAN checks it): only that prefix can be one
  const n = countrySpecs[compact.slice(0, 2)]?.chars
  if (n == null || n < 15 || n > 34 || n > compact.length) return 0
  return isValidIBAN(compact.slice(0, n)) ? ends[n - 1] as number : 0
}

/**
 * How often neighbouring characters change class (lower, upper, digit,
 * other). Random base62 changes about 62 % of the time; identifiers such as
 * `uint8ClampedArrayEncoder`, made of words, about 30 %: below 40 % a token
 * is taken for a name, not a key (a random 24-character key falls below
 * with a probability of about 1 %).
 */
export function classChanges (s: string): number {
  let changes = 0
  let prev = -1
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const k = c >= 97 && c <= 122 ? 0 : c >= 65 && c <= 90 ? 1 : c >= 48 && c <= 57 ? 2 : 3
    if (prev >= 0 && k !== prev) changes++
    prev = k
  }
  return changes
}

/** Shannon entropy of a string, bits per character. */
export function entropy (s: string): number {
  const counts = new Map<string, number>()
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1)
  let h = 0
  for (const n of counts.values()) { const p = n / s.length; h -= p * Math.log2(p) }
  return h
}

function before (text: string, at: number, n = 32): string {
  return text.slice(Math.max(0, at - n), at)
}

const LOWER_EMAIL = /^[a-z0-9._%+-]+@[a-z0-9.-]+$/
const LOWER_DOMAIN = /@[a-z0-9.-]+$/

/** Whether an address found in binary content looks written rather than spelled by random bytes (see BINARY_EMAIL_MIN_CHARS). */
function writtenEmail (address: string): boolean {
  return (address.length >= BINARY_EMAIL_MIN_CHARS.lowerCaseChars && LOWER_EMAIL.test(address)) ||
    (address.length >= BINARY_EMAIL_MIN_CHARS.mixedCaseChars && LOWER_DOMAIN.test(address))
}

/** PII findings in `text`; `binary`: `text` is the printable runs of a binary body (stricter e-mail rule). */
export function detectPii (text: string, options: { binary?: boolean } = {}): DetectorHit[] {
  const out: DetectorHit[] = []
  if (text.includes('@')) {
    for (const m of text.matchAll(EMAIL)) {
      // `logo@2x.png` is a file name, not an address
      if (FILE_TLD.test(m[0])) continue
      if (options.binary === true && !writtenEmail(m[0])) continue
      out.push({ detector: 'email', category: 'pii/email', start: m.index, end: m.index + m[0].length })
    }
  }
  for (const m of text.matchAll(CARD)) {
    const d = m[0].replace(/\D/g, '')
    if (d.length >= 13 && d.length <= 19 && cardPrefix(d) && luhn(d)) out.push({ detector: 'card', category: 'pii/card', start: m.index, end: m.index + m[0].length })
  }
  for (const m of text.matchAll(IBAN)) {
    const end = ibanEnd(m[0])
    if (end > 0) out.push({ detector: 'iban', category: 'pii/iban', start: m.index, end: m.index + end })
  }
  for (const m of text.matchAll(SSN)) {
    if (ssnValid(m[1] as string, m[2] as string, m[3] as string)) out.push({ detector: 'national-id', category: 'pii/national-id', start: m.index, end: m.index + m[0].length })
  }
  for (const m of text.matchAll(NINO)) {
    const prefix = (m[1] as string).toUpperCase()
    if (!['BG', 'GB', 'NK', 'KN', 'TN', 'NT', 'ZZ'].includes(prefix)) out.push({ detector: 'national-id', category: 'pii/national-id', start: m.index, end: m.index + m[0].length })
  }
  for (const m of text.matchAll(DNI)) {
    if (dniValid(m[1] as string, m[2] as string, m[3] as string)) out.push({ detector: 'national-id', category: 'pii/national-id', start: m.index, end: m.index + m[0].length })
  }
  for (const m of text.matchAll(STEUER_ID)) {
    const d = m.slice(1).join('')
    // 11 bare digits pass the check digit one time in ten: ask for grouping or a tax-ID word too
    if (steuerIdValid(d) && (m[0].includes(' ') || STEUER_WORD.test(before(text, m.index)))) {
      out.push({ detector: 'national-id', category: 'pii/national-id', start: m.index, end: m.index + m[0].length })
    }
  }
  for (const m of text.matchAll(PHONE)) {
    const s = m[0].trim()
    const digits = s.replace(/\D/g, '')
    if (digits.length < 7 || digits.length > 15) continue
    const prior = before(text, m.index)
    if (NOT_PHONE_WORD.test(prior) && !PHONE_WORD.test(prior)) continue
    if (/^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$/.test(s)) continue // a date
    const intl = s.startsWith('+') && digits.length >= 8
    if (intl || PHONE_WORD.test(prior) || NANP.test(s)) out.push({ detector: 'phone', category: 'pii/phone', start: m.index, end: m.index + m[0].length })
  }
  return out
}

/** PEM private keys (a block without its END line still counts: a truncated key is still a key). */
export function detectPrivateKeys (text: string): DetectorHit[] {
  if (!text.includes('PRIVATE KEY')) return []
  return [...text.matchAll(PEM)].map(m => ({ detector: 'private-key' as const, category: 'secret/private-key', start: m.index, end: m.index + m[0].length }))
}

/** libp2p peer IDs and CIDs are public identifiers that agents exchange all the time. */
const PUBLIC_ID = /^(?:12D3KooW[1-9A-HJ-NP-Za-km-z]{44}|Qm[1-9A-HJ-NP-Za-km-z]{44}|bafy[a-z2-7]{50,})$/
/** The same, anywhere in a run (`12D3KooW…-12D3KooW…`: `-` is a token character of base64url) */
const PUBLIC_ID_ANYWHERE = /12D3KooW[1-9A-HJ-NP-Za-km-z]{44}|Qm[1-9A-HJ-NP-Za-km-z]{44}|bafy[a-z2-7]{50,}/g

/** A segment with every embedded peer ID or CID cut out: the pieces around them, with their offsets */
function withoutPublicIds (segment: string, start: number): Array<[string, number]> {
  const pieces: Array<[string, number]> = []
  let last = 0
  for (const m of segment.matchAll(PUBLIC_ID_ANYWHERE)) {
    if (m.index > last) pieces.push([segment.slice(last, m.index), start + last])
    last = m.index + m[0].length
  }
  if (last < segment.length) pieces.push([segment.slice(last), start + last])
  return pieces
}

/**
 * High-entropy tokens: ≥ 24 characters of the base64/base58 alphabet with
 * upper case, lower case and digits, entropy ≥ 4 bits per character, classes
 * mixed like random text ({@link classChanges}), not a
 * peer ID or CID, and not decodable to text (encoded text is decoded and
 * inspected instead). Pure hex (hashes, commit IDs) is not flagged. In a
 * run holding `/` each segment is scored on its own (from 20 characters), so
 * URL paths are not tokens.
 */
export function detectHighEntropy (text: string, runs: readonly TokenRun[], decodesToText: (token: string) => boolean): DetectorHit[] {
  const out: DetectorHit[] = []
  for (const r of runs) {
    if (r.end - r.start < MIN_ENTROPY_TOKEN_CHARS) continue
    const token = text.slice(r.start, r.end)
    if (decodesToText(token)) continue
    // URL paths are runs too (`com/libp2p/js-libp2p/blob/main/doc/CONFIGURATION`): score each
    // '/'-separated segment, and let a segment of a slashed run count from 20 characters, since
    // random base64 has a '/' every 64 characters on average
    const slashed = token.includes('/')
    let at = r.start
    for (const whole of slashed ? token.split('/') : [token]) {
      const wholeStart = at
      at += whole.length + 1
      for (const [segment, start] of withoutPublicIds(whole, wholeStart)) {
        const t = segment.replace(/=+$/, '')
        if (t.length < (slashed ? MIN_ENTROPY_TOKEN_CHARS - 4 : MIN_ENTROPY_TOKEN_CHARS)) continue
        if (!/[a-z]/.test(t) || !/[A-Z]/.test(t) || !/\d/.test(t)) continue
        if (PUBLIC_ID.test(t)) continue
        if (entropy(t) < MIN_ENTROPY_BITS) continue
        if (classChanges(t) < 0.4 * (t.length - 1)) continue
        out.push({ detector: 'entropy', category: 'secret/high-entropy', start, end: start + segment.length })
      }
    }
  }
  return out
}
