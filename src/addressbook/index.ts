/**
 * @packageDocumentation
 *
 * Petnames: a local address book mapping names the user chose to peer IDs,
 * kept in `aliases.json` in the home folder. Names are local only — never
 * published — so nobody else can claim one. Every command and IPC method
 * that takes a peer also takes a petname. The file is read on each lookup
 * (it is small), so the CLI can edit it whether or not the node runs.
 *
 * @example
 *
 * ```ts
 * import { AddressBook } from './index.ts'
 *
 * const book = new AddressBook('/home/me/.agentnet')
 * await book.add('alice', '12D3KooW…')
 * console.log(await book.resolve('alice'))
 * ```
 */

import { stat } from 'node:fs/promises'
import { AgentnetError } from '../errors/index.ts'
import type { ErrorCode } from '../errors/index.ts'
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { isPeerId } from '../node/target.ts'
import { readStateFile, writeFileAtomic } from '../utils/fs.ts'

export const ALIASES_FILE = 'aliases.json'
/** Letters, digits, `_` and `-`, starting with a letter; at most 64 characters */
export const ALIAS_PATTERN = /^[A-Za-z][\w-]{0,63}$/

export class AddressBookError extends AgentnetError {
  override readonly code: ErrorCode
  constructor (code: ErrorCode, message: string) {
    super(message)
    this.name = 'AddressBookError'
    this.code = code
  }
}

interface AliasFile {
  version: 1
  aliases: Record<string, string>
}


/** How often `namesOf` looks for a change made by another process, ms */
const STAT_INTERVAL_MS = 500

export class AddressBook {
  private readonly file: string

  constructor (home: string) {
    this.file = join(home, ALIASES_FILE)
  }

  async list (): Promise<Array<{ name: string, peerId: string }>> {
    const { aliases } = await this.load()
    return Object.entries(aliases).sort(([a], [b]) => a.localeCompare(b)).map(([name, peerId]) => ({ name, peerId }))
  }

  async add (name: string, peerId: string): Promise<{ name: string, peerId: string }> {
    if (!ALIAS_PATTERN.test(name) || isPeerId(name)) {
      throw new AddressBookError('InvalidAlias', `invalid petname ${JSON.stringify(name)}: use letters, digits, _ and -, starting with a letter (at most 64)`)
    }
    if (!isPeerId(peerId)) {
      throw new AddressBookError('InvalidTarget', `not a peer ID: ${JSON.stringify(peerId)}`)
    }
    const data = await this.load()
    data.aliases[name] = peerIdFromString(peerId).toString()
    await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n')
    this.cache = undefined
    return { name, peerId: data.aliases[name] }
  }

  async remove (name: string): Promise<boolean> {
    const data = await this.load()
    if (!Object.hasOwn(data.aliases, name)) {
      return false
    }
    delete data.aliases[name]
    await writeFileAtomic(this.file, JSON.stringify(data, null, 2) + '\n')
    this.cache = undefined
    return true
  }

  private cache: { mtimeMs: number, names: Map<string, string[]> } | undefined
  private checkedAt = 0

  /**
   * The petnames of a peer (for policies written against petnames). Called
   * for every outbound message, so the parsed file is kept until it changes.
   */
  async namesOf (peerId: string): Promise<string[]> {
    // a `stat` per message showed as ~5 % of a busy node's time: this instance's own writes drop the
    // cache at once; a write by another process (the CLI on a stopped node, an editor) is seen within
    // STAT_INTERVAL_MS
    const now = performance.now()
    if (this.cache != null && now - this.checkedAt < STAT_INTERVAL_MS) {
      return this.cache.names.get(peerId) ?? []
    }
    this.checkedAt = now
    const mtimeMs = await stat(this.file).then(s => s.mtimeMs, () => -1)
    if (this.cache?.mtimeMs !== mtimeMs) {
      const names = new Map<string, string[]>()
      for (const { name, peerId: id } of mtimeMs === -1 ? [] : await this.list()) {
        names.set(id, [...(names.get(id) ?? []), name])
      }
      this.cache = { mtimeMs, names }
    }
    return this.cache.names.get(peerId) ?? []
  }

  /** The peer ID a petname stands for; anything else is returned unchanged */
  async resolve (target: string): Promise<string> {
    if (!ALIAS_PATTERN.test(target)) {
      return target
    }
    const { aliases } = await this.load()
    return Object.hasOwn(aliases, target) ? aliases[target] as string : target
  }

  private async load (): Promise<AliasFile> {
    const text = await readStateFile(this.file)
    if (text === undefined) {
      return { version: 1, aliases: {} }
    }
    try {
      const data = JSON.parse(text) as AliasFile
      if (data.version !== 1 || typeof data.aliases !== 'object' || data.aliases === null ||
          !Object.values(data.aliases).every(v => typeof v === 'string')) {
        throw new Error('unexpected shape')
      }
      return { version: 1, aliases: { ...data.aliases } }
    } catch (err) {
      throw new AddressBookError('CorruptAddressBook', `${this.file} is corrupt (${(err as Error).message}); fix or remove it`)
    }
  }
}
