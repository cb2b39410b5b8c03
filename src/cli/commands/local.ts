/**
 * Commands that work on the home folder whether or not the node runs:
 * petnames and the audit log.
 */

import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import { AddressBook } from '../../addressbook/index.ts'
import { AUDIT_LOG_FILE, tailAuditLog, verifyAuditLog } from '../../audit/index.ts'
import { CliError, homeOf, print, SilentExit } from '../common.ts'
import type { GlobalOptions } from '../common.ts'

export async function aliasAdd (name: string, peerId: string, opts: GlobalOptions & { force?: boolean }): Promise<void> {
  const home = homeOf(opts)
  await mkdir(home, { recursive: true, mode: 0o700 })
  const book = new AddressBook(home)
  const existing = (await book.list()).find(a => a.name === name)
  if (existing != null && existing.peerId !== peerId && opts.force !== true) {
    throw new CliError(`petname ${JSON.stringify(name)} already names ${existing.peerId}; add --force to point it at ${peerId}`, 'AliasExists')
  }
  const added = await book.add(name, peerId)
  print(opts.json, added, () => `${added.name} → ${added.peerId}`)
}

export async function aliasList (opts: GlobalOptions): Promise<void> {
  const aliases = await new AddressBook(homeOf(opts)).list()
  print(opts.json, aliases, () => aliases.length === 0 ? 'no petnames' : aliases.map(a => `${a.name}\t${a.peerId}`).join('\n'))
}

export async function aliasRemove (name: string, opts: GlobalOptions): Promise<void> {
  const removed = await new AddressBook(homeOf(opts)).remove(name)
  if (!removed) {
    throw new CliError(`no petname ${JSON.stringify(name)}; see "agentnet alias list"`, 'NoSuchAlias')
  }
  print(opts.json, { name, removed }, () => `removed ${name}`)
}

export async function auditVerify (opts: GlobalOptions): Promise<void> {
  const result = await verifyAuditLog(join(homeOf(opts), AUDIT_LOG_FILE))
  print(opts.json, result, () => result.ok
    ? `audit log ok: ${result.records} records`
    : `audit log damaged at line ${result.firstBad?.line ?? '?'}${result.firstBad?.seq != null ? ` (seq ${result.firstBad.seq})` : ''}: ${result.firstBad?.reason ?? 'unknown'}`)
  if (!result.ok) {
    throw new SilentExit(1)
  }
}

export async function auditTail (opts: GlobalOptions & { lines: number }): Promise<void> {
  const records = await tailAuditLog(join(homeOf(opts), AUDIT_LOG_FILE), opts.lines)
  if (opts.json === true) {
    print(true, records, () => '')
  } else {
    process.stdout.write(records.map(r => `${r.seq}\t${r.time}\t${r.type}\t${JSON.stringify(r.data)}`).join('\n') + (records.length > 0 ? '\n' : ''))
  }
}
