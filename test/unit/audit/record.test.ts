import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { canonicalJson } from '../../../src/audit/index.ts'

describe('audit canonical JSON', () => {
  it('sorts keys at every level by UTF-16 code units, with no whitespace', () => {
    const parsed = JSON.parse('{"b":1,"a":{"d":[3,{"z":0,"y":1}],"c":"x"},"10":true,"2":null,"B":-0.5,"é":"\\u00e9"}') as unknown
    assert.equal(canonicalJson(parsed), '{"10":true,"2":null,"B":-0.5,"a":{"c":"x","d":[3,{"y":1,"z":0}]},"b":1,"é":"é"}')
  })

  it('is stable under JSON round trips and key order', () => {
    const a = { x: 1, y: [1, 'two', { q: false }], '0': 'zero', __proto__x: 1 }
    const b = JSON.parse(JSON.stringify({ y: a.y, '0': 'zero', __proto__x: 1, x: 1 })) as unknown
    assert.equal(canonicalJson(JSON.parse(canonicalJson(a)) as unknown), canonicalJson(a))
    assert.equal(canonicalJson(b), canonicalJson(a))
  })

  it('keeps a "__proto__" key as data', () => {
    const parsed = JSON.parse('{"__proto__":{"polluted":1},"a":1}') as unknown
    assert.equal(canonicalJson(parsed), '{"__proto__":{"polluted":1},"a":1}')
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  it('escapes like JSON.stringify, lone surrogates included', () => {
    assert.equal(canonicalJson({ s: '\u0000\u001f"\\\n\ud800' }), '{"s":"\\u0000\\u001f\\"\\\\\\n\\ud800"}')
  })

  it('refuses values JSON cannot hold', () => {
    assert.throws(() => canonicalJson({ n: Number.NaN }))
    assert.throws(() => canonicalJson({ n: Infinity }))
    assert.throws(() => canonicalJson({ f: () => {} }))
  })
})
