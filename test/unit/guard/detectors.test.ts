import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { createGuard } from '../../../src/guard/index.ts'
import { dniValid, entropy, luhn, ssnValid, steuerIdValid } from '../../../src/guard/detectors.ts'
import { categoryOf, mightHoldSecret } from '../../../src/guard/secrets.ts'

interface Positive { body: string, match: string }
interface Fixture { positive: Positive[], negative: string[] }

const fixtures = JSON.parse(readFileSync(new URL('../../fixtures/guard/detectors.json', import.meta.url), 'utf8')) as Record<string, Fixture | string>
const guard = createGuard()

describe('guard detectors (test/fixtures/guard/detectors.json)', () => {
  for (const [category, fx] of Object.entries(fixtures)) {
    if (typeof fx === 'string') continue
    describe(category, () => {
      for (const p of fx.positive) {
        it(`finds it in ${JSON.stringify(p.body.slice(0, 50))}`, async () => {
          const at = p.body.indexOf(p.match)
          assert.ok(at >= 0, 'fixture: match must occur in body')
          const findings = await guard.inspect(p.body)
          const hit = findings.find(f => f.category === category && f.start < at + p.match.length && f.end > at)
          assert.ok(hit, `no ${category} finding; got ${JSON.stringify(findings.map(f => f.category))}`)
        })
      }
      for (const body of fx.negative) {
        it(`passes ${JSON.stringify(body.slice(0, 50))}`, async () => {
          const findings = await guard.inspect(body)
          assert.deepEqual(findings.filter(f => f.category === category), [])
        })
      }
    })
  }
})

describe('checksums and scores', () => {
  it('luhn', () => {
    assert.equal(luhn('4111111111111111'), true)
    assert.equal(luhn('4111111111111112'), false)
    assert.equal(luhn('79927398713'), true)
    assert.equal(luhn('12a4'), false)
  })
  it('German tax ID check digit and digit rule', () => {
    assert.equal(steuerIdValid('86095742719'), true)
    assert.equal(steuerIdValid('86095742718'), false)
    assert.equal(steuerIdValid('06095742719'), false)
    assert.equal(steuerIdValid('12345678903'), false) // no repeated digit
  })
  it('Spanish DNI/NIE letter', () => {
    assert.equal(dniValid('', '12345678', 'Z'), true)
    assert.equal(dniValid('', '12345678', 'z'), true)
    assert.equal(dniValid('X', '1234567', 'L'), true)
    assert.equal(dniValid('', '12345678', 'A'), false)
    assert.equal(dniValid('', '1234567', 'Z'), false)
  })
  it('SSN format rules', () => {
    assert.equal(ssnValid('123', '45', '6789'), true)
    for (const [a, g, s] of [['000', '12', '3456'], ['666', '12', '3456'], ['912', '12', '3456'], ['123', '00', '4567'], ['123', '45', '0000']]) {
      assert.equal(ssnValid(a as string, g as string, s as string), false)
    }
  })
  it('entropy', () => {
    assert.equal(entropy('aaaa'), 0)
    assert.equal(entropy('abcd'), 2)
  })
})

describe('secretlint prefilter', () => {
  it('lets through every shape a preset rule needs', () => {
    for (const s of ['AKIAZ7Q3LMNOPQRSTUV2', 'https://u:p@h.io', 'postgres://a:b@c', '-----BEGIN PRIVATE KEY', '//registry.npmjs.org/:_authToken=x', 'aws_account_id = 1234-5678-9012', 'xoxb-1-2', 'SG.a.b', 'ghs_1_a.b.c', 'tskey-api-x-y',
      'https://hooks.slack.com/services/T1/B2/x', 'secret_access_key = x', 'glc_a/b+c', 'ops_eyJ', '"private_key_id": "1"', 'mongodb://u:p@h/db']) {
      assert.equal(mightHoldSecret(s), true, s)
    }
  })
  it('skips plain prose', () => {
    assert.equal(mightHoldSecret('Hello Bob, the meeting moved to Tuesday at 10:30. Bring the slides, please.'), false)
    assert.equal(mightHoldSecret('See https://docs.example.org/guides/rollout-plan/version-2.4.1 and card 4111-1111-1111-1111.'), false)
  })
  it('maps rule ids to categories', () => {
    assert.equal(categoryOf('@secretlint/secretlint-rule-aws', 'AWSAccessKeyID'), 'secret/aws-access-key')
    assert.equal(categoryOf('@secretlint/secretlint-rule-privatekey', 'PRIVATE_KEY'), 'secret/private-key')
    assert.equal(categoryOf('@secretlint/secretlint-rule-openai', 'OPENAI_TOKEN'), 'secret/openai')
  })
})
