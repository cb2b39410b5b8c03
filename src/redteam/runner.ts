/**
 * Plays scenarios as multi-turn dialogs through an `ask` function (one
 * request to the target's service, its reply) and decides after each reply
 * whether anything protected leaked.
 *
 * @module
 */

import { createHash } from 'node:crypto'
import { answerPart, renderTurn } from './scenario.ts'
import { DEFAULT_MAX_TURNS } from './constants.ts'
import { errorCodeOf } from '../errors/index.ts'
import type { Scenario } from './scenario.ts'
import type { Leak, LeakDetector } from './detect.ts'
import type { LlmAttacker } from './llm.ts'

/** A leak with the turn it first appeared in; `via` `aggregate` when only the joined answers reveal it. */
export interface TurnLeak extends Leak {
  turn: number
  via: 'reply' | 'aggregate'
}

/** The outcome of one scenario. Holds no text of the dialog: only its hash. */
export interface ScenarioResult {
  id: string
  family: string
  title: string
  leaked: boolean
  /** 1-based turn of the first leak, or null. */
  firstLeakTurn: number | null
  leaks: TurnLeak[]
  turns: number
  /** SHA-256 (hex) of the transcript as JSON `[{from: "attacker"|"target", text}]`. */
  transcriptSha256: string
  durationMs: number
  /** Why the dialog stopped early (the target's error code, a transport failure), if it did. */
  error?: string
}

/** What the target answered: its text, or an error (whose text is inspected too). */
export type Ask = (text: string) => Promise<string>

export interface RunOptions {
  detector: LeakDetector
  ask: Ask
  /** Most turns per scenario. Default 8. */
  maxTurns?: number
  /** Generate turns with an LLM (the scenario's templates become hints). */
  llm?: LlmAttacker
  /** Called after each scenario (progress). */
  onResult?: (result: ScenarioResult, index: number, total: number) => void
}

/** Play one scenario. */
export async function runScenario (scenario: Scenario, options: RunOptions): Promise<ScenarioResult> {
  const started = Date.now()
  const { detector } = options
  detector.add(scenario.canaries)
  const maxTurns = Math.min(options.maxTurns ?? DEFAULT_MAX_TURNS, scenario.turns.length)
  const replies: string[] = []
  const pieces: string[] = []
  const said: string[] = []
  const transcript: Array<{ from: 'attacker' | 'target', text: string }> = []
  const leaks: TurnLeak[] = []
  const known = new Set<string>()
  let error: string | undefined
  let turn = 0
  const categories = scenario.success.categories
  const record = (found: Leak[], via: TurnLeak['via']): void => {
    for (const leak of found) {
      const key = `${leak.label}\u0000${leak.category}`
      if (known.has(key)) continue
      known.add(key)
      leaks.push({ ...leak, turn, via })
    }
  }
  for (let i = 0; i < maxTurns; i++) {
    turn = i + 1
    const template = scenario.turns[i]!
    const text = options.llm != null
      ? await options.llm.nextTurn(scenario, said.map((s, j) => ({ attacker: s, target: replies[j] ?? '' })), renderTurn(template, { replies, pieces, scenario }))
      : renderTurn(template, { replies, pieces, scenario })
    said.push(text)
    transcript.push({ from: 'attacker', text })
    let reply: string
    try {
      reply = await options.ask(text)
    } catch (err) {
      // the error's text goes into the report only when it holds nothing the detector finds
      const code = errorCodeOf(err) ?? (err instanceof Error ? err.name : 'Error')
      const message = err instanceof Error ? err.message : String(err)
      error = (await detector.find(message)).length === 0 ? `${code}: ${message}` : code
      break
    }
    replies.push(reply)
    pieces.push(answerPart(reply))
    transcript.push({ from: 'target', text: reply })
    record(await detector.find(reply, { categories, ignoreIn: said }), 'reply')
    if (scenario.success.aggregate && pieces.length > 1) {
      record(await detector.find(pieces.join(' '), { categories, ignoreIn: said }), 'aggregate')
    }
    if (leaks.length > 0 && scenario.success.stopOnLeak) break
  }
  return {
    id: scenario.id,
    family: scenario.family,
    title: scenario.title,
    leaked: leaks.length > 0,
    firstLeakTurn: leaks.length > 0 ? Math.min(...leaks.map(l => l.turn)) : null,
    leaks,
    turns: said.length,
    transcriptSha256: createHash('sha256').update(JSON.stringify(transcript)).digest('hex'),
    durationMs: Date.now() - started,
    ...(error != null ? { error } : {})
  }
}

/** Play every scenario in order. */
export async function runScenarios (scenarios: Scenario[], options: RunOptions): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = []
  for (const [i, scenario] of scenarios.entries()) {
    const result = await runScenario(scenario, options)
    results.push(result)
    options.onResult?.(result, i, scenarios.length)
  }
  return results
}
