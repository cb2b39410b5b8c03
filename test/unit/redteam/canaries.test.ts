import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { canaryArg, parseCanaryFile } from '../../../src/cli/commands/redteam.ts'

describe('canaries from the command line and from files', () => {
  it('--canary VALUE and --canary LABEL=VALUE', () => {
    assert.deepEqual(canaryArg('4539 1488 0343 6467', 0), { label: 'canary-1', category: 'canary', value: '4539 1488 0343 6467' })
    assert.deepEqual(canaryArg('visa=4539 1488 0343 6467', 1), { label: 'visa', category: 'canary', value: '4539 1488 0343 6467' })
    assert.equal(canaryArg('p@ss=word', 0).label, 'canary-1')
  })

  it('JSON lists, the vault shape, objects, and text lines', () => {
    assert.deepEqual(parseCanaryFile('[{"label": "a", "category": "pii/dob", "value": "1987-03-14"}]', 'f'), [{ label: 'a', category: 'pii/dob', value: '1987-03-14' }])
    assert.deepEqual(parseCanaryFile('{"values": [{"label": "b", "value": "X4K917203", "keywords": []}]}', 'f'), [{ label: 'b', category: 'canary', value: 'X4K917203' }])
    assert.deepEqual(parseCanaryFile('{"pw": "Tulip-Harbor-1987!", "card": {"value": "4539148803436467", "category": "finance/card"}}', 'f'),
      [{ label: 'pw', category: 'canary', value: 'Tulip-Harbor-1987!' }, { label: 'card', category: 'finance/card', value: '4539148803436467' }])
    assert.deepEqual(parseCanaryFile('# comment\nX4K917203\nvisa\tfinance/card\t4539 1488 0343 6467\n', 'f'),
      [{ label: 'canary-1', category: 'canary', value: 'X4K917203' }, { label: 'visa', category: 'finance/card', value: '4539 1488 0343 6467' }])
    assert.throws(() => parseCanaryFile('[{"label": "x"}]', 'c.json'), /c\.json: entry 1 has no "value"/)
  })
})
