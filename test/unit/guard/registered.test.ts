import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { createGuard } from '../../../src/guard/index.ts'
import { dateForms, endOf, isBoundary, normalize, parseDates } from '../../../src/guard/normalize.ts'
import { patternsOf } from '../../../src/guard/registry.ts'

interface Positive { body: string, variant: string, match?: string }
interface Value { value: string, label: string, positive: Positive[], negative: string[] }

const { values } = JSON.parse(readFileSync(new URL('../../fixtures/guard/registered.json', import.meta.url), 'utf8')) as { values: Value[] }
const RULES = { minPartialDigits: 8, longNumberDigits: 12, partialWordsFraction: 2 / 3 }

describe('registered values (test/fixtures/guard/registered.json)', () => {
  for (const v of values) {
    describe(v.label, () => {
      const guard = createGuard({ secretScan: false })
      guard.protect({ value: v.value, label: v.label, category: 'private/test' })
      for (const p of v.positive) {
        it(`${p.variant}: ${JSON.stringify(p.body.slice(0, 60))}`, async () => {
          const findings = (await guard.inspect(p.body)).filter(f => f.detector === 'registered')
          const hit = findings.find(f => f.variant === p.variant)
          assert.ok(hit, `no ${p.variant} finding; got ${JSON.stringify(findings.map(f => f.variant))}`)
          assert.equal(hit.label, v.label)
          assert.equal(hit.category, 'private/test')
          if (p.match !== undefined) {
            assert.equal(p.body.slice(hit.start, hit.end), p.match)
          }
        })
      }
      for (const body of v.negative) {
        it(`passes ${JSON.stringify(body)}`, async () => {
          const findings = (await guard.inspect(body)).filter(f => f.detector === 'registered')
          assert.deepEqual(findings, [])
        })
      }
    })
  }
})

describe('normalisation', () => {
  it('keeps letters and digits, lower-cased, folded, with offsets', () => {
    const n = normalize('A-b 1É!')
    assert.equal(n.text, 'ab1e')
    assert.deepEqual([...n.starts], [0, 2, 4, 5])
    assert.deepEqual([0, 1, 2, 3].map(k => endOf(n, k)), [1, 3, 5, 6])
    assert.equal(normalize('ab').ends, undefined)
  })
  it('folds fullwidth, styled and look-alike characters', () => {
    assert.equal(normalize('４１ℌé½Мх').text, '41he12mx')
  })
  it('maps astral characters to both their UTF-16 units', () => {
    const n = normalize('x𝟙y')
    assert.equal(n.starts[1], 1)
    assert.equal(endOf(n, 1), 3)
  })
  it('word boundaries: same-class neighbours are not boundaries', () => {
    assert.equal(isBoundary('planning', 2, 'start'), false)
    assert.equal(isBoundary('pl ann', 3, 'start'), true)
    assert.equal(isBoundary('card4111', 4, 'start'), true)
    assert.equal(isBoundary('41112', 4, 'end'), false)
  })
  it('parses registered dates, both readings when ambiguous', () => {
    assert.deepEqual(parseDates('1995-04-12'), [{ year: 1995, month: 4, day: 12 }])
    assert.deepEqual(parseDates('12.04.1995'), [{ year: 1995, month: 4, day: 12 }])
    assert.equal(parseDates('12/04/1995').length, 2)
    assert.deepEqual(parseDates('13/04/1995'), [{ year: 1995, month: 4, day: 13 }])
    assert.deepEqual(parseDates('April 12th, 1995'), [{ year: 1995, month: 4, day: 12 }])
    assert.deepEqual(parseDates('12 Sept 1995'), [{ year: 1995, month: 9, day: 12 }])
    assert.deepEqual(parseDates('1995-02-30'), [])
    assert.deepEqual(parseDates('hello'), [])
  })
  it('date forms cover the common spellings', () => {
    const forms = dateForms({ year: 1995, month: 4, day: 12 })
    for (const f of ['19950412', '12041995', '04121995', 'april121995', 'apr121995', '12april1995', '12thofapril1995', '120495']) {
      assert.ok(forms.includes(f), f)
    }
  })
  it('partial windows: ⅔ of the words, 8-digit runs of 12+ digit numbers only', () => {
    const words = patternsOf('alpha bravo charlie delta echo foxtrot', RULES).filter(p => p.kind === 'partial').map(p => p.pattern)
    assert.deepEqual(words, ['alphabravocharliedelta', 'bravocharliedeltaecho', 'charliedeltaechofoxtrot'])
    assert.deepEqual(patternsOf('12345678901', RULES).filter(p => p.kind === 'partial'), [])
    assert.equal(patternsOf('123456789012', RULES).filter(p => p.kind === 'partial').length, 5)
    assert.deepEqual(patternsOf('1995-04-12', RULES).filter(p => p.kind === 'partial'), [])
  })
})

describe('registry updates between checks (main automaton + delta + removed entries skipped)', () => {
  it('finds values added after the first compile and forgets removed ones, through every rebuild', async () => {
    const g = createGuard({ secretScan: false, entropyScan: false })
    const ids: string[] = []
    for (let i = 0; i < 300; i++) ids.push(g.protect({ value: `codename zulu ${1000 + i} omega`, label: `v${i}`, category: 'x/y' }).id)
    const find = async (i: number): Promise<string[]> => (await g.inspect(`about codename zulu ${1000 + i} omega today`)).map(f => f.label as string)
    assert.deepEqual(await find(5), ['v5'])
    const late = g.protect({ value: 'late arrival value', label: 'late', category: 'x/y' })
    assert.deepEqual((await g.inspect('the late arrival value')).map(f => f.label), ['late'])
    g.unprotect({ id: late.id })
    assert.deepEqual(await g.inspect('the late arrival value'), [])
    g.unprotect({ id: ids[5] as string })
    assert.deepEqual(await find(5), [])
    assert.deepEqual(await find(6), ['v6'])
    // remove more than a quarter: forces a full rebuild
    for (let i = 10; i < 120; i++) g.unprotect({ id: ids[i] as string })
    assert.deepEqual(await find(50), [])
    assert.deepEqual(await find(200), ['v200'])
    // add many: the delta outgrows its share and is merged
    for (let i = 0; i < 400; i++) g.protect({ value: `second batch item ${i} sierra`, label: `w${i}`, category: 'x/y' })
    assert.deepEqual((await g.inspect('second batch item 399 sierra')).map(f => f.label), ['w399'])
    assert.deepEqual(await find(200), ['v200'])
    g.protect({ value: `codename zulu ${1005} omega`, label: 'again', category: 'x/y' })
    assert.deepEqual(await find(5), ['again'])
  })
})
