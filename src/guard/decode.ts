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

const B64_TOKEN = /[A-Za-z0-9+/_-]{8,}={0,2}/g
const HEX_TOKEN = /(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}){6,}(?![0-9A-Za-z])/g
const URL_TOKEN = /[^\s"'<>]*%[0-9A-Fa-f]{2}[^\s"'<>]*/g
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Whether bytes are UTF-8 text that a person could read: no control characters but TAB/LF/CR, mostly printable. */
export function readable (bytes: Uint8Array): string | undefined {
  if (bytes.length < 3) return undefined
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

/** Tokens of `text` that decode to readable text, one level deep. */
export function decodeTokens (text: string): DecodedToken[] {
  const out: DecodedToken[] = []
  if (text.length < MIN_ENCODED_TOKEN_CHARS) return out
  for (const m of text.matchAll(HEX_TOKEN)) {
    const decoded = readable(Buffer.from(m[0], 'hex'))
    if (decoded !== undefined) out.push({ start: m.index, end: m.index + m[0].length, text: decoded, variant: 'hex' })
  }
  for (const m of text.matchAll(B64_TOKEN)) {
    const decoded = decodeBase64(m[0])
    if (decoded !== undefined) out.push({ start: m.index, end: m.index + m[0].length, text: decoded, variant: 'base64' })
  }
  if (text.includes('%')) {
    for (const m of text.matchAll(URL_TOKEN)) {
      let decoded: string
      try {
        decoded = decodeURIComponent(m[0].replace(/\+/g, ' '))
      } catch {
        // a stray % or a broken sequence: decode what can be decoded
        decoded = m[0].replace(/%([0-9A-Fa-f]{2})/g, (_s, h: string) => String.fromCharCode(parseInt(h, 16)))
      }
      if (decoded !== m[0]) out.push({ start: m.index, end: m.index + m[0].length, text: decoded, variant: 'url' })
    }
  }
  return out
}
