/**
 * Reports: per scenario and per family, JSON and a human table, and the
 * comparison with an earlier report (`--baseline`). A report holds labels,
 * categories, counts and hashes: never a canary, a reply or an attack text.
 *
 * @module
 */

import { REPORT_VERSION } from './constants.ts'
import { InvalidScenarioError } from './errors.ts'
import type { ScenarioResult } from './runner.ts'

export interface FamilyTotals {
  scenarios: number
  leaked: number
}

export interface ScenarioReport extends ScenarioResult {
  /** Leaks now, not in the baseline (absent without `--baseline`). */
  regression?: boolean
}

export interface RedteamReport {
  version: number
  target: string
  service: string
  startedAt: string
  finishedAt: string
  attacker: 'templates' | 'llm'
  scenarios: ScenarioReport[]
  totals: FamilyTotals & { leakRate: number, byFamily: Record<string, FamilyTotals> }
  /** With `--baseline`: ids leaking now and not then, and fixed ones. */
  baseline?: { file: string, regressions: string[], fixed: string[] }
}

export interface ReportInput {
  target: string
  service: string
  startedAt: Date
  attacker: RedteamReport['attacker']
  results: ScenarioResult[]
}

export function buildReport (input: ReportInput): RedteamReport {
  const byFamily: Record<string, FamilyTotals> = {}
  for (const r of input.results) {
    const f = byFamily[r.family] ?? (byFamily[r.family] = { scenarios: 0, leaked: 0 })
    f.scenarios++
    if (r.leaked) f.leaked++
  }
  const leaked = input.results.filter(r => r.leaked).length
  return {
    version: REPORT_VERSION,
    target: input.target,
    service: input.service,
    startedAt: input.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    attacker: input.attacker,
    scenarios: input.results.map(r => ({ ...r })),
    totals: {
      scenarios: input.results.length,
      leaked,
      leakRate: input.results.length === 0 ? 0 : leaked / input.results.length,
      byFamily
    }
  }
}

/** Parse an earlier report (`--baseline`). */
export function parseReport (text: string, file: string): RedteamReport {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch {
    throw new InvalidScenarioError(`${file}: the baseline is not a JSON report of agentnet redteam --json`)
  }
  const scenarios = (data as { scenarios?: unknown } | null)?.scenarios
  if (!Array.isArray(scenarios) || !scenarios.every(s => s != null && typeof s.id === 'string' && typeof s.leaked === 'boolean')) {
    throw new InvalidScenarioError(`${file}: the baseline has no "scenarios" list of {id, leaked}`)
  }
  return data as RedteamReport
}

/** Mark regressions (leaking now, not leaking or absent then) and list fixes. */
export function applyBaseline (report: RedteamReport, baseline: RedteamReport, file: string): RedteamReport {
  const before = new Map(baseline.scenarios.map(s => [s.id, s.leaked]))
  const regressions: string[] = []
  const fixed: string[] = []
  for (const s of report.scenarios) {
    s.regression = s.leaked && before.get(s.id) !== true
    if (s.regression) regressions.push(s.id)
    if (!s.leaked && before.get(s.id) === true) fixed.push(s.id)
  }
  report.baseline = { file, regressions, fixed }
  return report
}

function pad (s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length)
}

/** The human table. */
export function formatReport (report: RedteamReport): string {
  const rows = report.scenarios.map(s => [
    s.id,
    s.family,
    s.leaked ? (s.regression === true ? 'LEAKED (new)' : 'LEAKED') : (s.error != null ? 'error' : 'held'),
    s.firstLeakTurn == null ? '-' : String(s.firstLeakTurn),
    s.leaks.length === 0 ? (s.error ?? '') : [...new Set(s.leaks.map(l => `${l.label} (${l.category}${l.variant != null && l.variant !== 'verbatim' ? `, ${l.variant}` : ''}${l.via === 'aggregate' ? ', aggregated' : ''})`))].join('; '),
    s.transcriptSha256.slice(0, 12)
  ])
  const head = ['scenario', 'family', 'result', 'turn', 'what leaked', 'transcript']
  const widths = head.map((h, i) => Math.min(48, Math.max(h.length, ...rows.map(r => r[i]!.length))))
  const line = (r: string[]): string => r.map((c, i) => i === r.length - 1 ? c : pad(c, widths[i]!)).join('  ').trimEnd()
  const out = [line(head), ...rows.map(line), '']
  out.push('family          scenarios  leaked')
  for (const [family, t] of Object.entries(report.totals.byFamily)) {
    out.push(`${pad(family, 16)}${pad(String(t.scenarios), 11)}${t.leaked}`)
  }
  out.push(`${pad('total', 16)}${pad(String(report.totals.scenarios), 11)}${report.totals.leaked} (${(report.totals.leakRate * 100).toFixed(1)} %)`)
  if (report.baseline != null) {
    out.push(`against ${report.baseline.file}: ${report.baseline.regressions.length} new leak(s)${report.baseline.regressions.length > 0 ? ` (${report.baseline.regressions.join(', ')})` : ''}, ${report.baseline.fixed.length} fixed`)
  }
  return out.join('\n')
}
