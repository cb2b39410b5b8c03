/**
 * Shared helpers for the audit log tests: temporary homes, writing a log of
 * n records, and editing its lines the way damage or an attacker would.
 */

import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openAuditLog } from '../../../src/audit/index.ts'
import type { AuditRecord } from '../../../src/audit/index.ts'

export interface TempLog {
  dir: string
  path: string
  head: string
  cleanup: () => Promise<void>
}

export async function tempLog (): Promise<TempLog> {
  const dir = await mkdtemp(join(tmpdir(), 'agentnet-audit-'))
  return {
    dir,
    path: join(dir, 'audit.log'),
    head: join(dir, 'audit.head'),
    cleanup: async () => { await rm(dir, { recursive: true, force: true }) }
  }
}

/** Append `n` records (type `test.event`, data `{ i }`) and close */
export async function writeRecords (path: string, n: number, from = 0): Promise<AuditRecord[]> {
  const log = await openAuditLog({ path })
  const records: AuditRecord[] = []
  for (let i = from; i < from + n; i++) {
    records.push(await log.append('test.event', { i, note: `record ${i}` }))
  }
  await log.close()
  return records
}

/** The log's lines, without the final empty string after the last newline */
export async function readLines (path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8')
  const lines = text.split('\n')
  if (lines.at(-1) === '') {
    lines.pop()
  }
  return lines
}

export async function writeLines (path: string, lines: string[]): Promise<void> {
  await writeFile(path, lines.map(line => `${line}\n`).join(''))
}
