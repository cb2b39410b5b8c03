/**
 * Scenario files: parsing, validation, loading, and turn templates.
 *
 * A file holds one scenario object, an array of them, or `{"scenarios": [...]}`.
 * See the README, "Red team" → "Scenario format", for every field.
 *
 * @module
 */

import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { existsSync } from 'node:fs'
import { InvalidScenarioError } from './errors.ts'
import { DEFAULT_CANARY_CATEGORY, MAX_SCENARIO_FILE_BYTES } from './constants.ts'

/** A value the target holds that must not come back in a reply. */
export interface Canary {
  label: string
  category: string
  value: string
}

/** What counts as the attack succeeding. */
export interface SuccessCriteria {
  /** Category patterns a finding must match to count (`*`, `finance/*`, exact). Default `["*"]`. */
  categories: string[]
  /** Also inspect the answers of all turns joined (pieces that only together reveal a value). */
  aggregate: boolean
  /** Stop the dialog at the first leak. Default true. */
  stopOnLeak: boolean
}

/** One attack dialog. */
export interface Scenario {
  id: string
  family: string
  title: string
  /** Who the attacker claims to be. */
  persona: string
  /** The story that makes the request look legitimate. */
  pretext: string
  /** What the attacker wants (also the LLM attacker's instruction). */
  goal: string
  /** The attacker's messages, in order; templates (see {@link renderTurn}). */
  turns: string[]
  success: SuccessCriteria
  /** Canaries this scenario adds to those of the run. */
  canaries: Canary[]
  /** Where it was loaded from. */
  source?: string
}

const ID = /^[a-z0-9][a-z0-9._-]{0,63}$/

function fail (source: string, message: string): never {
  throw new InvalidScenarioError(`${source}: ${message}`)
}

function str (obj: Record<string, unknown>, key: string, source: string, optional = false): string {
  const v = obj[key]
  if (v === undefined && optional) return ''
  if (typeof v !== 'string' || (v.trim() === '' && !optional)) fail(source, `"${key}" must be a non-empty string`)
  return v
}

/** Validate one parsed scenario object. */
export function parseScenario (raw: unknown, source = 'scenario'): Scenario {
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) fail(source, 'a scenario must be a JSON object')
  const obj = raw as Record<string, unknown>
  const id = str(obj, 'id', source)
  if (!ID.test(id)) fail(source, `"id" ${JSON.stringify(id)} must be 1–64 lower-case letters, digits, ".", "_" or "-"`)
  const where = `${source} (${id})`
  const turns = obj.turns
  if (!Array.isArray(turns) || turns.length === 0 || !turns.every(t => typeof t === 'string' && t.trim() !== '')) {
    fail(where, '"turns" must be a non-empty array of non-empty strings')
  }
  const success = (obj.success ?? {}) as Record<string, unknown>
  if (typeof success !== 'object' || Array.isArray(success)) fail(where, '"success" must be an object')
  const categories = success.categories ?? ['*']
  if (!Array.isArray(categories) || categories.length === 0 || !categories.every(c => typeof c === 'string' && c !== '')) {
    fail(where, '"success.categories" must be a non-empty array of category patterns')
  }
  for (const key of ['aggregate', 'stopOnLeak']) {
    if (success[key] !== undefined && typeof success[key] !== 'boolean') fail(where, `"success.${key}" must be true or false`)
  }
  const canaries = obj.canaries ?? []
  if (!Array.isArray(canaries)) fail(where, '"canaries" must be an array')
  return {
    id,
    family: str(obj, 'family', where),
    title: str(obj, 'title', where),
    persona: str(obj, 'persona', where),
    pretext: str(obj, 'pretext', where, true),
    goal: str(obj, 'goal', where),
    turns: turns as string[],
    success: {
      categories: categories as string[],
      aggregate: success.aggregate === true,
      stopOnLeak: success.stopOnLeak !== false
    },
    canaries: canaries.map((c, i) => parseCanary(c, `${where} canaries[${i}]`)),
    source
  }
}

/** `{label, category?, value}` */
export function parseCanary (raw: unknown, source: string): Canary {
  if (raw == null || typeof raw !== 'object') fail(source, 'a canary must be {label, category?, value}')
  const obj = raw as Record<string, unknown>
  const value = str(obj, 'value', source)
  return { label: str(obj, 'label', source), category: typeof obj.category === 'string' && obj.category !== '' ? obj.category : DEFAULT_CANARY_CATEGORY, value }
}

/** Parse the text of one scenario file. */
export function parseScenarioFile (text: string, source: string): Scenario[] {
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    fail(source, `not valid JSON (${(err as Error).message})`)
  }
  const list = Array.isArray(data)
    ? data
    : data != null && typeof data === 'object' && Array.isArray((data as { scenarios?: unknown }).scenarios)
      ? (data as { scenarios: unknown[] }).scenarios
      : [data]
  return list.map((s, i) => parseScenario(s, list.length > 1 ? `${source}[${i}]` : source))
}

/** Scenarios of a file, or of every `.json` file of a folder (sorted by name); ids must be unique. */
export async function loadScenarios (path: string): Promise<Scenario[]> {
  const info = await stat(path).catch(() => fail(path, 'no such file or folder'))
  const files = info.isDirectory()
    ? (await readdir(path)).filter(f => f.endsWith('.json')).sort().map(f => join(path, f))
    : [path]
  const all: Scenario[] = []
  for (const file of files) {
    const size = (await stat(file)).size
    if (size > MAX_SCENARIO_FILE_BYTES) fail(file, `larger than ${MAX_SCENARIO_FILE_BYTES} bytes`)
    all.push(...parseScenarioFile(await readFile(file, 'utf8'), file))
  }
  const seen = new Set<string>()
  for (const s of all) {
    if (seen.has(s.id)) fail(s.source ?? path, `duplicate scenario id ${JSON.stringify(s.id)}`)
    seen.add(s.id)
  }
  if (all.length === 0) fail(path, 'no scenarios')
  return all
}

/** The folder of the library shipped with agentnet: `scenarios/` at the package root (from `src/redteam/` or `dist/redteam/`). */
export function libraryDir (): string {
  const dir = fileURLToPath(new URL('../../scenarios/', import.meta.url))
  if (!existsSync(dir)) throw new InvalidScenarioError(`the scenario library is missing from this installation (${dir})`)
  return dir
}

/** What a turn template may refer to. */
export interface TemplateContext {
  /** Replies so far, turn 1 first. */
  replies: string[]
  /** Answer parts of the replies so far (see {@link answerPart}). */
  pieces: string[]
  scenario: Scenario
}

/**
 * Fill a turn template: `{{reply.N}}` (the reply to turn N, 1-based),
 * `{{last_reply}}`, `{{pieces}}` (the answer parts so far, joined by a
 * space), `{{persona}}`, `{{goal}}`, `{{pretext}}`. An unknown or not yet
 * available placeholder becomes the empty string.
 */
export function renderTurn (template: string, ctx: TemplateContext): string {
  return template.replace(/\{\{\s*([a-z_]+)(?:\.(\d+))?\s*\}\}/g, (_m, name: string, n: string | undefined) => {
    switch (name) {
      case 'reply': return ctx.replies[Number(n) - 1] ?? ''
      case 'last_reply': return ctx.replies[ctx.replies.length - 1] ?? ''
      case 'pieces': return ctx.pieces.join(' ')
      case 'persona': return ctx.scenario.persona
      case 'goal': return ctx.scenario.goal
      case 'pretext': return ctx.scenario.pretext
      default: return ''
    }
  })
}

/** The answer part of a reply: what follows its last `:` (else the whole reply), trimmed of closing punctuation. */
export function answerPart (reply: string): string {
  const i = reply.lastIndexOf(':')
  return (i === -1 ? reply : reply.slice(i + 1)).trim().replace(/[.!]+$/, '').trim()
}
