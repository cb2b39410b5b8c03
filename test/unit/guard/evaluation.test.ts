/**
 * Runs the evaluation set (test/fixtures/guard/eval.json, made by
 * generate-eval.ts beside it) through `check` and prints and asserts:
 * - leak rate: forbidden messages that pass (action `pass` or `warn`);
 * - over-block rate: allowed and benign messages blocked or redacted;
 * overall and by variant (`hard-*` variants, beyond the documented reach of
 * the matcher, are printed apart and not counted). Targets: leak ≤ 1 %, over-block ≤ 2 %. Bodies the
 * guard redacted are checked again and must then pass.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { createGuard } from '../../../src/guard/index.ts'
import type { EvalSet } from '../../fixtures/guard/generate-eval.ts'

const load = (name: string): EvalSet => JSON.parse(readFileSync(new URL(`../../fixtures/guard/${name}`, import.meta.url), 'utf8')) as EvalSet

interface Row { n: number, bad: number, examples: string[] }

async function evaluate (file: string, minPersonas: number, minMessages: number): Promise<void> {
  {
    const set = load(file)
    assert.ok(set.personas.length >= minPersonas, `at least ${minPersonas} personas`)
    assert.ok(set.messages.length >= minMessages, `at least ${minMessages} messages`)
    const byVariant = new Map<string, Row>()
    const redacted: Row = { n: 0, bad: 0, examples: [] }
    const total = { forbidden: { n: 0, bad: 0 }, clean: { n: 0, bad: 0 }, hard: { n: 0, bad: 0 } }
    for (const p of set.personas) {
      const guard = createGuard()
      for (const v of p.vault) guard.protect({ ...v, scope: p.id })
      guard.setPolicy({ peer: p.peer.name, allow: p.policy.allow, action: p.policy.action })
      for (const m of set.messages.filter(x => x.persona === p.id)) {
        const d = await guard.check({ peerNames: ['12D3KooWEvalPeerIdPlaceholder', p.peer.name], body: m.body })
        if (d.action === 'redact') {
          // what a redacting peer receives must itself pass: nothing of the value left behind
          redacted.n++
          const again = await guard.check({ peerNames: ['12D3KooWEvalPeerIdPlaceholder', p.peer.name], body: d.body as string })
          if (again.action !== 'pass') { redacted.bad++; redacted.examples.push(m.id) }
        }
        const forbidden = m.expect === 'forbidden'
        const bad = forbidden ? (d.action === 'pass' || d.action === 'warn') : (d.action === 'block' || d.action === 'redact')
        const t = m.variant.startsWith('hard-') ? total.hard : forbidden ? total.forbidden : total.clean
        t.n++; if (bad) t.bad++
        let row = byVariant.get(m.variant)
        if (row === undefined) { row = { n: 0, bad: 0, examples: [] }; byVariant.set(m.variant, row) }
        row.n++
        if (bad) { row.bad++; row.examples.push(`${m.id} ${d.action} ${JSON.stringify(d.findings.map(f => f.category))}`) }
      }
    }
    const pct = (a: number, b: number): string => b === 0 ? '-' : `${(100 * a / b).toFixed(2)} %`
    const lines = ['', `guard evaluation (${file}): variant | messages | failures | rate (leak for forbidden, over-block otherwise)`]
    for (const [variant, row] of [...byVariant].sort()) lines.push(`  ${variant.padEnd(16)} ${String(row.n).padStart(5)} ${String(row.bad).padStart(5)}  ${pct(row.bad, row.n)}`)
    lines.push(`  leak rate:       ${total.forbidden.bad}/${total.forbidden.n} = ${pct(total.forbidden.bad, total.forbidden.n)}`)
    lines.push(`  over-block rate: ${total.clean.bad}/${total.clean.n} = ${pct(total.clean.bad, total.clean.n)}`)
    lines.push(`  hard-* (outside the targets) passing: ${total.hard.bad}/${total.hard.n} = ${pct(total.hard.bad, total.hard.n)}`)
    lines.push(`  redacted bodies that still hold a finding: ${redacted.bad}/${redacted.n} ${redacted.examples.slice(0, 5).join(' ')}`)
    for (const [variant, row] of byVariant) if (!variant.startsWith('hard-')) for (const e of row.examples.slice(0, 5)) lines.push(`  failure: ${e}`)
    console.log(lines.join('\n'))
    assert.ok(total.forbidden.bad / total.forbidden.n <= 0.01, `leak rate ${pct(total.forbidden.bad, total.forbidden.n)} > 1 %`)
    assert.equal(redacted.bad, 0, 'redaction leaves nothing behind')
    assert.ok(total.clean.bad / total.clean.n <= 0.02, `over-block rate ${pct(total.clean.bad, total.clean.n)} > 2 %`)
  }
}

describe('guard evaluation', () => {
  it('generated set (eval.json): leak ≤ 1 %, over-block ≤ 2 %, overall and by variant', async () => {
    await evaluate('eval.json', 20, 500)
  })
  it('hand-written set (handwritten.json): the same targets', async () => {
    await evaluate('handwritten.json', 1, 50)
  })
})
