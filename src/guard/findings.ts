/**
 * Merging findings and redacting a body.
 *
 * @module
 */

import type { GuardFinding } from './types.ts'

function sameKind (a: GuardFinding, b: GuardFinding): boolean {
  return a.detector === b.detector && a.category === b.category && a.id === b.id
}

/**
 * One list of findings, sorted by start: a detector finding inside the span
 * of a registered value is dropped (the span takes the registered value's
 * category, so a card the policy allows as `finance/card` is not blocked as
 * `pii/card`), a high-entropy finding overlapping a named secret is dropped,
 * and overlapping or touching findings of the same kind (same
 * detector, category and value) are merged into one.
 */
export function mergeFindings (findings: readonly GuardFinding[]): GuardFinding[] {
  const registered = findings.filter(f => f.detector === 'registered')
  const named = findings.filter(f => f.detector !== 'entropy' && f.category.startsWith('secret/'))
  const kept = findings.filter(f => {
    if (f.detector === 'registered') return true
    if (registered.some(r => r.start <= f.start && r.end >= f.end)) return false
    // a token a named secret rule recognised needs no second, vaguer finding
    return f.detector !== 'entropy' || !named.some(n => n.start < f.end && n.end > f.start)
  })
  kept.sort((a, b) => a.start - b.start || b.end - a.end)
  const out: GuardFinding[] = []
  for (const f of kept) {
    const prev = out.find(o => sameKind(o, f) && f.start <= o.end && f.end >= o.start)
    if (prev !== undefined) {
      prev.start = Math.min(prev.start, f.start)
      prev.end = Math.max(prev.end, f.end)
      continue
    }
    out.push({ ...f })
  }
  return out
}

/**
 * `body` with each blocked span replaced by `[REDACTED:<label or category>]`;
 * overlapping spans are replaced once, named after the registered value among
 * them if any (its label), else the first finding's category.
 */
export function redact (body: string, blocked: readonly GuardFinding[]): string {
  const spans = [...blocked].sort((a, b) => a.start - b.start)
  const groups: Array<{ start: number, end: number, name: string, registered: boolean }> = []
  for (const f of spans) {
    const name = f.label ?? f.category
    const last = groups[groups.length - 1]
    if (last !== undefined && f.start < last.end) {
      last.end = Math.max(last.end, f.end)
      if (!last.registered && f.detector === 'registered') { last.name = name; last.registered = true }
      continue
    }
    groups.push({ start: f.start, end: f.end, name, registered: f.detector === 'registered' })
  }
  let out = ''
  let at = 0
  for (const g of groups) {
    out += body.slice(at, g.start) + `[REDACTED:${g.name.replace(/[[\]]/g, '')}]`
    at = g.end
  }
  return out + body.slice(at)
}
