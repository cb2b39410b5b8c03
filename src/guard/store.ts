/**
 * Persistence of `persist: true` values: one JSON file (mode 0600), replaced
 * atomically (temporary file, fsync, rename, fsync of the folder). A file
 * that cannot be read as a store fails the load with
 * `CorruptGuardStoreError` and is never overwritten by this process.
 *
 * ```
 * {"version": 1, "values": [{"id", "value", "label", "category", "scope"?, "expiresAt"?}]}
 * ```
 *
 * @module
 */

import { chmod } from 'node:fs/promises'
import { readStateFile, writeFileAtomic } from '../utils/fs.ts'
import { CorruptGuardStoreError } from './errors.ts'
import { STORE_VERSION } from './constants.ts'
import type { Entry } from './registry.ts'

/** Entries of the store at `file` (none when it does not exist). Throws `CorruptGuardStoreError`. */
export async function loadStore (file: string): Promise<Entry[]> {
  const text = await readStateFile(file)
  if (text === undefined) return []
  let doc: unknown
  try { doc = JSON.parse(text) } catch { throw new CorruptGuardStoreError(file, 'not JSON') }
  if (doc === null || typeof doc !== 'object' || (doc as { version?: unknown }).version !== STORE_VERSION || !Array.isArray((doc as { values?: unknown }).values)) {
    throw new CorruptGuardStoreError(file, `not a version ${STORE_VERSION} guard store`)
  }
  const out: Entry[] = []
  for (const [i, raw] of ((doc as { values: unknown[] }).values).entries()) {
    const v = raw as Record<string, unknown>
    const ok = v !== null && typeof v === 'object' &&
      typeof v.id === 'string' && typeof v.value === 'string' && typeof v.label === 'string' && typeof v.category === 'string' &&
      (v.scope === undefined || typeof v.scope === 'string') &&
      (v.expiresAt === undefined || (typeof v.expiresAt === 'number' && Number.isFinite(v.expiresAt)))
    if (!ok) throw new CorruptGuardStoreError(file, `entry ${i} is malformed`)
    const entry: Entry = { id: v.id as string, value: v.value as string, label: v.label as string, category: v.category as string, persist: true }
    if (v.scope !== undefined) entry.scope = v.scope as string
    if (v.expiresAt !== undefined) entry.expiresAt = v.expiresAt as number
    out.push(entry)
  }
  return out
}

/** Replace the store at `file` with `entries` (mode 0600). */
export async function saveStore (file: string, entries: Iterable<Entry>): Promise<void> {
  const values = []
  for (const e of entries) {
    if (!e.persist) continue
    values.push({ id: e.id, value: e.value, label: e.label, category: e.category, scope: e.scope, expiresAt: e.expiresAt })
  }
  await writeFileAtomic(file, JSON.stringify({ version: STORE_VERSION, values }), 0o600)
  // an umask cannot widen 0600, but a file that existed with another mode keeps its inode's mode on some systems
  await chmod(file, 0o600)
}
