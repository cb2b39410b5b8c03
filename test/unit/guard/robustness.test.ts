/**
 * Adversarial bodies: every detector and decoder must stay linear. Each body
 * is ~100,000 characters; a quadratic regex takes tens of seconds on these,
 * a linear pass well under a second (the bound leaves room for a loaded machine).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createGuard } from '../../../src/guard/index.ts'

const N = 100_000
const fill = (unit: string): string => unit.repeat(Math.ceil(N / unit.length)).slice(0, N)
const BODIES: Record<string, string> = {
  'digits': fill('1'),
  'spaced digits': fill('1 '),
  'dashed digits': fill('12-'),
  'plus and digits': fill('+1 '),
  'parenthesised digits': fill('(1)'),
  'at signs': fill('a@'),
  'dotted words': fill('a.') + '@',
  'base64 alphabet': fill('Ab1+'),
  'hex': fill('ab'),
  'bad percent escapes': fill('%zz'),
  'good percent escapes': fill('%41'),
  'scheme then colons': '://' + fill(':'),
  'schemes': fill('://a:'),
  'iban-like': fill('DE89 '),
  'nino-like': fill('AB 12 '),
  'pem without end': '-----BEGIN PRIVATE KEY-----' + fill('a'),
  'pem headers': fill('-----BEGIN A '),
  'markers': fill('ignore previous '),
  'letters': fill('a'),
  'non-ASCII letters': fill('é'),
  'astral letters': fill('𝒜'),
  'mixed case run': fill('aB'),
  'tax words and digits': fill('tax id 12 '),
  'card separators': fill('4 -')
}

describe('guard robustness: linear time on adversarial bodies', () => {
  const guard = createGuard()
  guard.protect({ value: '4111 1111 1111 1111', label: 'card', category: 'finance/card' })
  guard.protect({ value: 'alpha bravo charlie delta', label: 'phrase', category: 'x/y' })
  for (const [name, body] of Object.entries(BODIES)) {
    it(`${name} (${body.length} chars)`, async () => {
      const t = performance.now()
      await guard.check({ peerNames: ['p'], body })
      await guard.screenInbound(body)
      const ms = performance.now() - t
      assert.ok(ms < 4000, `${name}: ${ms.toFixed(0)} ms`)
    })
  }
})
