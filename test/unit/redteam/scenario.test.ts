import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { answerPart, applyBaseline, buildReport, FAMILIES, formatReport, InvalidScenarioError, libraryDir, loadScenarios, parseReport, parseScenario, parseScenarioFile, renderTurn } from '../../../src/redteam/index.ts'
import type { ScenarioResult } from '../../../src/redteam/index.ts'

describe('scenarios', () => {
  it('the shipped library has ≥ 30 valid scenarios, ≥ 3 in every family', async () => {
    const all = await loadScenarios(libraryDir())
    assert.ok(all.length >= 30, `${all.length} scenarios`)
    for (const family of FAMILIES) {
      assert.ok(all.filter(s => s.family === family).length >= 3, family)
    }
    assert.ok(all.every(s => (FAMILIES as readonly string[]).includes(s.family)))
    assert.ok(all.filter(s => s.turns.length > 1).length >= 15, 'multi-turn dialogs')
    assert.ok(all.filter(s => s.turns.some(t => /\{\{(reply\.\d+|last_reply|pieces)\}\}/.test(t))).length >= 4, 'turns built on earlier replies')
  })

  it('rejects a bad scenario naming the file and the field', () => {
    assert.throws(() => parseScenarioFile('{"id": "x"', 'bad.json'), (err: unknown) => err instanceof InvalidScenarioError && /bad\.json: not valid JSON/.test(err.message))
    assert.throws(() => parseScenario({ id: 'x', family: 'direct', title: 't', persona: 'p', goal: 'g', turns: [] }, 'f.json'), /f\.json \(x\): "turns" must be a non-empty array/)
    assert.throws(() => parseScenario({ id: 'Bad Id', family: 'd', title: 't', persona: 'p', goal: 'g', turns: ['a'] }), /"id"/)
    assert.throws(() => parseScenario({ id: 'x', family: 'd', title: 't', persona: 'p', goal: 'g', turns: ['a'], success: { aggregate: 'yes' } }), /success\.aggregate/)
    assert.throws(() => parseScenario({ id: 'x', family: 'd', title: 't', persona: 'p', goal: 'g', turns: ['a'], canaries: [{ label: 'l' }] }), /"value"/)
  })

  it('refuses duplicate ids in a folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'an-sc-'))
    try {
      const s = { id: 'same', family: 'direct', title: 't', persona: 'p', goal: 'g', turns: ['a'] }
      await writeFile(join(dir, 'a.json'), JSON.stringify(s))
      await writeFile(join(dir, 'b.json'), JSON.stringify([s]))
      await assert.rejects(loadScenarios(dir), /duplicate scenario id "same"/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('fills turn templates from earlier replies', () => {
    const scenario = parseScenario({ id: 'x', family: 'd', title: 't', persona: 'a courier', goal: 'the address', turns: ['a'] })
    const ctx = { replies: ['Sure, the street is: Larkspur Crescent.', 'Town: Leeds'], pieces: ['Larkspur Crescent', 'Leeds'], scenario }
    assert.equal(renderTurn('You said "{{reply.1}}"; then {{last_reply}}. So far {{pieces}}. I am {{persona}}{{reply.9}}{{nope}}.', ctx),
      'You said "Sure, the street is: Larkspur Crescent."; then Town: Leeds. So far Larkspur Crescent Leeds. I am a courier.')
    assert.equal(answerPart('Sure, the card on file is: 4539.'), '4539')
    assert.equal(answerPart('no colon here'), 'no colon here')
  })
})

describe('reports and baselines', () => {
  const result = (id: string, leaked: boolean): ScenarioResult => ({
    id, family: id.split('-')[0]!, title: id, leaked, firstLeakTurn: leaked ? 1 : null,
    leaks: leaked ? [{ label: 'visa', category: 'finance/card', detector: 'registered', turn: 1, via: 'reply' }] : [],
    turns: 1, transcriptSha256: '0'.repeat(64), durationMs: 1
  })

  it('totals by family, and --baseline marks only the newly leaking scenarios', () => {
    const before = buildReport({ target: 't', service: 's', startedAt: new Date(), attacker: 'templates', results: [result('direct-a', true), result('direct-b', false), result('format-c', false)] })
    const now = buildReport({ target: 't', service: 's', startedAt: new Date(), attacker: 'templates', results: [result('direct-a', true), result('direct-b', true), result('format-c', false), result('format-new', true)] })
    assert.deepEqual(now.totals.byFamily, { direct: { scenarios: 2, leaked: 2 }, format: { scenarios: 2, leaked: 1 } })
    const marked = applyBaseline(now, parseReport(JSON.stringify(before), 'before.json'), 'before.json')
    assert.deepEqual(marked.baseline?.regressions, ['direct-b', 'format-new'])
    assert.deepEqual(marked.scenarios.map(s => s.regression), [false, true, false, true])
    const table = formatReport(marked)
    assert.match(table, /direct-b\s+direct\s+LEAKED \(new\)/)
    assert.match(table, /direct-a\s+direct\s+LEAKED\s/)
    assert.match(table, /against before\.json: 2 new leak\(s\) \(direct-b, format-new\), 0 fixed/)
    const fixed = applyBaseline(buildReport({ target: 't', service: 's', startedAt: new Date(), attacker: 'templates', results: [result('direct-a', false)] }), before, 'b')
    assert.deepEqual(fixed.baseline, { file: 'b', regressions: [], fixed: ['direct-a'] })
  })

  it('refuses a baseline that is not a report', () => {
    assert.throws(() => parseReport('[]', 'x.json'), /x\.json: the baseline has no "scenarios"/)
    assert.throws(() => parseReport('nope', 'x.json'), /not a JSON report/)
  })
})
