/**
 * `agentnet guard …` and `agentnet dashboard`: thin clients of the running
 * node. Guard commands never print a registered value back.
 */

import { readFile } from 'node:fs/promises'
import { CliError, homeOf, print, withClient } from '../common.ts'
import type { GuardCheckResult, GuardPolicyEntry, ProtectedEntry } from '../../client/index.ts'
import type { GlobalOptions } from '../common.ts'

interface ProtectOptions extends GlobalOptions {
  label: string
  category: string
  scope?: string
  ttl?: number
  persist?: boolean
  valueFile?: string
}

/** The value from the argument, `-` (stdin) or `--value-file`: a secret on the command line is visible to `ps` */
async function valueOf (value: string | undefined, opts: ProtectOptions): Promise<string> {
  if (opts.valueFile != null) return (await readFile(opts.valueFile, 'utf8')).replace(/\r?\n$/, '')
  if (value === '-' || value == null) {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
  }
  return value
}

export async function guardProtect (value: string | undefined, opts: ProtectOptions): Promise<void> {
  const params = {
    value: await valueOf(value, opts),
    label: opts.label,
    category: opts.category,
    ...(opts.scope == null ? {} : { scope: opts.scope }),
    ...(opts.ttl == null ? {} : { ttlMs: opts.ttl }),
    ...(opts.persist === true ? { persist: true } : {})
  }
  const result = await withClient(opts, async client => client.guardProtect(params))
  print(opts.json, result, () => `protected as ${result.id} (${opts.label}, ${opts.category})`)
}

export async function guardUnprotect (id: string | undefined, opts: GlobalOptions & { scope?: string }): Promise<void> {
  if ((id == null) === (opts.scope == null)) {
    throw new CliError('give either an id or --scope', 'UsageError', 2)
  }
  const result = await withClient(opts, async client => client.guardUnprotect(id != null ? { id } : { scope: opts.scope as string }))
  print(opts.json, result, () => `removed ${result.removed}`)
}

export async function guardList (opts: GlobalOptions & { scope?: string }): Promise<void> {
  const list: ProtectedEntry[] = await withClient(opts, async client => client.guardList(opts.scope == null ? {} : { scope: opts.scope }))
  print(opts.json, list, () => list.length === 0 ? 'nothing protected' : list.map(v => `${v.id}\t${v.label}\t${v.category}${v.scope != null ? `\tscope ${v.scope}` : ''}${v.expiresAt != null ? `\texpires ${new Date(v.expiresAt).toISOString()}` : ''}`).join('\n'))
}

export async function guardPolicySet (peer: string, opts: GlobalOptions & { allow?: string[], service?: string, action?: 'block' | 'redact' | 'warn' }): Promise<void> {
  const policy = await withClient(opts, async client => client.guardPolicySet({ peer, allow: opts.allow ?? [], ...(opts.service == null ? {} : { service: opts.service }), ...(opts.action == null ? {} : { action: opts.action }) }))
  print(opts.json, policy, () => `${policy.peer}${policy.service != null ? `/${policy.service}` : ''}: allow ${policy.allow.length === 0 ? 'nothing' : policy.allow.join(', ')}, otherwise ${policy.action}`)
}

export async function guardPolicyGet (peer: string | undefined, opts: GlobalOptions): Promise<void> {
  const policies: GuardPolicyEntry[] = await withClient(opts, async client => client.guardPolicyGet(peer == null ? {} : { peer }))
  print(opts.json, policies, () => policies.length === 0 ? 'no policies (nothing registered or detected may leave)' : policies.map(p => `${p.peer}${p.service != null ? `/${p.service}` : ''}\tallow ${p.allow.join(', ') || 'nothing'}\t${p.action}`).join('\n'))
}

export async function guardCheck (to: string, text: string, opts: GlobalOptions & { service?: string }): Promise<void> {
  const result: GuardCheckResult = await withClient(opts, async client => client.guardCheck({ to, body: text, ...(opts.service == null ? {} : { service: opts.service }) }))
  print(opts.json, result, () => [
    `action: ${result.action}`,
    ...result.findings.map(f => `  ${f.category}${f.label != null ? ` (${f.label})` : ''} at ${f.start}–${f.end}${f.allowed === true ? ' allowed' : ''}`),
    ...(result.body != null ? [`sent as: ${result.body}`] : [])
  ].join('\n'))
}

export async function dashboard (opts: GlobalOptions & { port?: number }): Promise<void> {
  const { startDashboard } = await import('../../dashboard/index.ts')
  const controller = new AbortController()
  process.once('SIGINT', () => { controller.abort() })
  process.once('SIGTERM', () => { controller.abort() })
  const started = await startDashboard({ home: homeOf(opts), port: opts.port, signal: controller.signal })
  print(opts.json, { url: started.url, port: started.port }, () => `dashboard: open ${started.url} (Ctrl-C to stop)`)
  await new Promise(resolve => { controller.signal.addEventListener('abort', resolve, { once: true }) })
  await started.close()
}
