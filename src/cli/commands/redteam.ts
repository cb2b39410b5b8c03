/**
 * `agentnet redteam` and `agentnet audit-dialogs`. The red team plays
 * scenario dialogs against a target agent's service from a fresh ephemeral
 * node (its own temporary home, started with `start --detach` and stopped at
 * the end) or from an existing node (`--identity HOME`), and reports what
 * leaked by label and category, never the values.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { connectClient } from '../../client/index.ts'
import { isErrorCode, errorCodeOf } from '../../errors/index.ts'
import { CliError, pidAlive, SilentExit } from '../common.ts'
import type { AgentnetClient } from '../../client/index.ts'
import { DEFAULT_CANARY_CATEGORY } from '../../redteam/constants.ts'
import type { Canary, Scenario, ScenarioResult } from '../../redteam/index.ts'

interface RedteamOptions {
  target: string
  service: string
  scenarios?: string
  only?: string[]
  canary?: string[]
  canaryFile?: string[]
  turns?: number
  json?: boolean
  report?: string
  baseline?: string
  identity?: string
  invite?: string
  connect?: string[]
  bootstrap?: string[]
  attackerLlm?: string
  model?: string
  timeout?: number
  freshPerScenario?: boolean
}

const BIN = fileURLToPath(new URL('../../../bin/agentnet.js', import.meta.url))

/** `--canary VALUE` or `--canary LABEL=VALUE` */
export function canaryArg (arg: string, index: number): Canary {
  const m = /^([A-Za-z][A-Za-z0-9_-]{0,31})=(.+)$/s.exec(arg)
  return m != null ? { label: m[1]!, category: DEFAULT_CANARY_CATEGORY, value: m[2]! } : { label: `canary-${index + 1}`, category: DEFAULT_CANARY_CATEGORY, value: arg }
}

/** A canary file: JSON (`[{label, category?, value}]`, `{values: [...]}` or `{label: value}`) or lines (`value` or `label<TAB>category<TAB>value`). */
export function parseCanaryFile (text: string, file: string): Canary[] {
  const trimmed = text.trim()
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let data: unknown
    try {
      data = JSON.parse(trimmed)
    } catch {
      throw new CliError(`${file}: not valid JSON`, 'UsageError', 2)
    }
    const list = Array.isArray(data) ? data : Array.isArray((data as { values?: unknown }).values) ? (data as { values: unknown[] }).values : undefined
    const entries = list ?? Object.entries(data as Record<string, unknown>).map(([label, v]) => typeof v === 'string' ? { label, value: v } : { label, ...(v as object) })
    return entries.map((e, i) => {
      const o = e as Record<string, unknown>
      if (typeof o.value !== 'string' || o.value === '') throw new CliError(`${file}: entry ${i + 1} has no "value"`, 'UsageError', 2)
      return { label: typeof o.label === 'string' ? o.label : `canary-${i + 1}`, category: typeof o.category === 'string' ? o.category : DEFAULT_CANARY_CATEGORY, value: o.value }
    })
  }
  return trimmed.split(/\r?\n/).filter(l => l.trim() !== '' && !l.startsWith('#')).map((line, i) => {
    const parts = line.split('\t')
    return parts.length >= 3 ? { label: parts[0]!, category: parts[1]!, value: parts.slice(2).join('\t') } : { label: `canary-${i + 1}`, category: DEFAULT_CANARY_CATEGORY, value: line }
  })
}

async function readText (file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, 'FileError')
  }
}

/** Start a throw-away node: its own temporary home and identity, guard off (its messages are probes). */
async function startEphemeral (bootstrap: string[]): Promise<{ home: string, client: AgentnetClient, close: () => Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'agentnet-redteam-'))
  const config = join(home, 'redteam-config.json')
  await writeFile(config, JSON.stringify({ guard: { enabled: false } }))
  const args = [BIN, 'start', '--detach', '--home', home, '--config', config, '--listen', '/ip4/127.0.0.1/tcp/0', ...bootstrap.flatMap(b => ['--bootstrap', b]), '--json']
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { out += d.toString() })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  if (code !== 0) {
    await rm(home, { recursive: true, force: true })
    throw new CliError(`the ephemeral red-team node did not start: ${out.trim().split('\n').pop() ?? ''}`, 'StartFailed')
  }
  const client = await connectClient({ home })
  return {
    home,
    client,
    close: async () => {
      const stopped = await client.stopNode().catch(() => undefined)
      client.close()
      // wait (up to 10 s) until the node's process exited, then the home goes
      for (let i = 0; stopped != null && pidAlive(stopped.pid) && i < 200; i++) {
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      await rm(home, { recursive: true, force: true })
    }
  }
}

export async function redteam (opts: RedteamOptions): Promise<void> {
  const rt = await import('../../redteam/index.ts')
  if ((opts.attackerLlm == null) !== (opts.model == null)) {
    throw new CliError('--attacker-llm and --model go together', 'UsageError', 2)
  }
  let scenarios = await rt.loadScenarios(opts.scenarios != null ? resolve(opts.scenarios) : rt.libraryDir())
  if (opts.only != null) {
    const wanted = new Set(opts.only.flatMap(o => o.split(',')))
    scenarios = scenarios.filter(s => wanted.has(s.id) || wanted.has(s.family))
    if (scenarios.length === 0) throw new CliError(`no scenario or family named ${[...wanted].join(', ')}`, 'UsageError', 2)
  }
  const canaries: Canary[] = (opts.canary ?? []).map(canaryArg)
  for (const file of opts.canaryFile ?? []) canaries.push(...parseCanaryFile(await readText(file), file))
  if (canaries.length === 0 && scenarios.every(s => s.canaries.length === 0)) {
    process.stderr.write('agentnet redteam: no canaries given (--canary, --canary-file): only the secret and PII detectors will find leaks\n')
  }
  const baseline = opts.baseline != null ? rt.parseReport(await readText(opts.baseline), opts.baseline) : undefined
  const detector = rt.createLeakDetector(canaries)
  const llm = opts.attackerLlm != null ? rt.createLlmAttacker({ url: opts.attackerLlm, model: opts.model!, apiKey: process.env.AGENTNET_ATTACKER_LLM_KEY }) : undefined

  if (opts.freshPerScenario === true && opts.identity != null) {
    throw new CliError('--fresh-per-scenario starts a new node per scenario: not with --identity', 'UsageError', 2)
  }
  const openSession = async (): Promise<{ client: AgentnetClient, close: () => Promise<void> }> => opts.identity != null
    ? { client: await connectClient({ home: resolve(opts.identity) }).catch(() => { throw new CliError(`no node is running on ${opts.identity}`, 'NodeNotRunning') }), close: async () => {} }
    : await startEphemeral(opts.bootstrap ?? [])
  const timeoutMs = opts.timeout ?? rt.DEFAULT_TURN_TIMEOUT_MS
  /** Play `list` from one identity (`done` scenarios already played, for the progress lines). */
  const play = async (list: Scenario[], done: number): Promise<ScenarioResult[]> => {
    const session = await openSession()
    const client = session.client
    try {
      if (opts.invite != null) await client.inviteAccept(opts.invite)
      for (const ma of opts.connect ?? []) await client.connect(ma)
      let to = opts.target
      if (to.startsWith('/')) to = (await client.connect(to)).peerId
      const ask = async (text: string): Promise<string> => {
        try {
          const res = await client.send({ to, service: opts.service, body: text, timeoutMs })
          if (typeof res.body === 'string') return res.body
          if (res.bodyBase64 != null) return Buffer.from(res.bodyBase64, 'base64').toString('utf8')
          return JSON.stringify(res.body)
        } catch (err) {
          const code = errorCodeOf(err)
          // the agent's own error reply is part of the dialog (its text may leak too); our node's errors end it
          if (code != null && !isErrorCode(code)) return `error ${code}: ${(err as Error).message}`
          throw err
        }
      }
      return await rt.runScenarios(list, {
        detector,
        ask,
        ...(opts.turns != null ? { maxTurns: opts.turns } : {}),
        ...(llm != null ? { llm } : {}),
        onResult: (r, i) => {
          process.stderr.write(`[${done + i + 1}/${scenarios.length}] ${r.id}: ${r.leaked ? `LEAKED at turn ${r.firstLeakTurn}` : r.error != null ? `error (${r.error.split(':')[0]})` : 'held'}\n`)
        }
      })
    } finally {
      await session.close()
    }
  }
  const startedAt = new Date()
  const results: ScenarioResult[] = []
  if (opts.freshPerScenario === true) {
    for (const scenario of scenarios) results.push(...await play([scenario], results.length))
  } else {
    results.push(...await play(scenarios, 0))
  }
  if (results.length > 0 && results.every(r => r.error != null)) {
    const first = results[0]!.error!
    const code = first.split(':')[0]!
    throw new CliError(`every scenario failed; the first: ${first}`, isErrorCode(code) ? code : 'PeerUnreachable')
  }
  let report = rt.buildReport({ target: opts.target, service: opts.service, startedAt, attacker: llm != null ? 'llm' : 'templates', results })
  if (baseline != null) report = rt.applyBaseline(report, baseline, opts.baseline!)
  if (opts.report != null) await writeFile(opts.report, JSON.stringify(report, null, 2) + '\n')
  process.stdout.write(opts.json === true ? JSON.stringify(report) + '\n' : rt.formatReport(report) + '\n')
  if (report.totals.leaked > 0) throw new SilentExit(1)
}

export async function auditDialogs (files: string[], opts: { canary?: string[], canaryFile?: string[], json?: boolean }): Promise<void> {
  const rt = await import('../../redteam/index.ts')
  const canaries: Canary[] = (opts.canary ?? []).map(canaryArg)
  for (const file of opts.canaryFile ?? []) canaries.push(...parseCanaryFile(await readText(file), file))
  const every = Number(process.env.AGENTNET_AUDIT_PROGRESS_BYTES)
  const result = await rt.auditDialogFiles(files, {
    canaries,
    ...(Number.isInteger(every) && every > 0 ? { progressBytes: every } : {}),
    onProgress: p => { process.stderr.write(`${p.file}: ${(p.bytes / 1048576).toFixed(p.bytes < 10485760 ? 1 : 0)} MiB, ${p.messages} messages, ${p.leaks} leaking\n`) }
  })
  process.stdout.write(opts.json === true ? JSON.stringify(result) + '\n' : rt.formatDialogAudit(result) + '\n')
  if (result.leakingMessages > 0) throw new SilentExit(1)
}
