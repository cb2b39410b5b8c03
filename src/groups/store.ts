/**
 * Group state at rest: one file per group, `<home>/groups/<groupId hex>.bin`,
 * written atomically (temporary file, fsync, rename, fsync of the folder) and
 * encrypted with AES-256-GCM under a key derived from the node's private key
 * by HKDF-SHA256 (salt `agentnet-groups`, info `state-key/v1`). The file name
 * is authenticated data, so a file cannot be moved to another group's name.
 *
 * ```
 * file = "AGG1" || nonce(12) || tag(16) || AES-256-GCM(key, nonce, aad = "agentnet-groups/v1/" || name, json)
 * ```
 *
 * @module
 */

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'
import { mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { decodeGroupState } from 'ts-mls'
import { fsyncDir, writeFileAtomic } from '../utils/fs.ts'
import { STATE_DIR } from './constants.ts'
import { encodeState as encodeGroupState } from './state-codec.ts'
import { CorruptGroupStateError } from './errors.ts'
import type { PrivateKey } from '@libp2p/interface'
import type { ClientConfig, ClientState } from 'ts-mls'

const MAGIC = Buffer.from('AGG1')

/** One commit kept so that members that missed it can catch up. */
export interface CommitLogEntry {
  /** the epoch the commit applies to (the group is at `epoch + 1` after it) */
  epoch: number
  term: number
  /** hex SHA-256 of the MLSMessage bytes */
  hash: string
  commit: Uint8Array
  at: number
  /** the Welcome of this commit (encrypted to the joiners) and who it is for */
  welcome?: Uint8Array
  welcomeTo?: string[]
}

/** Everything this node knows of one group. */
export interface GroupRecord {
  id: string
  groupId: Uint8Array
  name: string
  creator: string
  term: number
  committer: string
  state: ClientState
  /** the state before `last` was applied: a losing commit can be rolled back once */
  prev?: ClientState
  /** when `prev` is deleted (ms; not persisted: a loaded `prev` lives until the first tick after the timeout) */
  prevUntil?: number
  /** the commit that produced the current epoch */
  last?: { epoch: number, term: number, hash: string }
  log: CommitLogEntry[]
  /** when the committer was last heard from (not persisted: a restart starts the clock again) */
  lastHeartbeat: number
  /** when this member last refreshed its leaf */
  lastUpdate: number
  /**
   * Loaded from a file written while the node ran (it did not stop cleanly):
   * its sending ratchet may be behind what it already used, so it must not
   * send in this epoch (a generation would be reused); cleared by the next epoch.
   */
  unclean?: boolean
}

/** `entry` without its Welcome (only the last commit's can still be needed), itself when it has none. */
export function withoutWelcome (entry: CommitLogEntry): CommitLogEntry {
  if (entry.welcome === undefined && entry.welcomeTo === undefined) return entry
  const { welcome: _welcome, welcomeTo: _welcomeTo, ...rest } = entry
  return rest
}

interface StoredRecord {
  v: 1
  id: string
  name: string
  creator: string
  term: number
  committer: string
  state: string
  prev?: string
  last?: { epoch: number, term: number, hash: string }
  log: Array<{ epoch: number, term: number, hash: string, commit: string, at: number, welcome?: string, welcomeTo?: string[] }>
  lastUpdate: number
  /** written while running (true) or at a clean stop (false) */
  open?: boolean
}

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')

/**
 * base64 of the commits and Welcomes in the commit log, by array: a log entry
 * never changes, and every save writes the whole log again (up to
 * `commitLogSize` commits, ~9 kB each for a remove at 100 members).
 */
const encodedBytes = new WeakMap<Uint8Array, string>()

function b64Once (b: Uint8Array): string {
  let text = encodedBytes.get(b)
  if (text === undefined) {
    text = b64(b)
    encodedBytes.set(b, text)
  }
  return text
}

/**
 * Encoded states (base64): ts-mls never changes a state in place (every
 * operation returns a new one), so a state is encoded once. A save after a
 * commit writes both the new state and `prev`, which the save before it
 * already encoded, and the committer encodes the new state while it waits for
 * the acks (when it stages the record, {@link StateWriter.stage}). The encoding itself reuses the bytes
 * of the trees earlier states already had (`state-codec.ts`).
 */
const encodedStates = new WeakMap<ClientState, string>()

function encodeState (state: ClientState): string {
  let text = encodedStates.get(state)
  if (text === undefined) {
    text = b64(encodeGroupState(state))
    encodedStates.set(state, text)
  }
  return text
}
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'))

function decodeState (text: string, config: ClientConfig): ClientState {
  const decoded = decodeGroupState(unb64(text), 0)
  if (decoded === undefined) throw new CorruptGroupStateError('group state does not decode')
  return { ...decoded[0], clientConfig: config }
}

/**
 * The {@link StoredRecord} JSON of `record`, in parts (encrypted one after the
 * other: the same bytes as their concatenation). The small fields go through
 * JSON.stringify; the base64 texts (the states, the log's commits and
 * Welcomes: ~0.8 MB at 100 members) need no escaping and are put in as they
 * are, which spares JSON.stringify a scan of every character (~2.5 ms a save
 * at 100 members, and every member saves each commit).
 */
function storedJson (record: GroupRecord, open: boolean): string[] {
  const small: Omit<StoredRecord, 'state' | 'prev' | 'log'> = {
    v: 1,
    id: record.id,
    name: record.name,
    creator: record.creator,
    term: record.term,
    committer: record.committer,
    ...(record.last !== undefined ? { last: { epoch: record.last.epoch, term: record.last.term, hash: record.last.hash } } : {}),
    lastUpdate: record.lastUpdate,
    open
  }
  const parts = [JSON.stringify(small).slice(0, -1), ',"state":"', encodeState(record.state), '"']
  if (record.prev !== undefined) parts.push(',"prev":"', encodeState(record.prev), '"')
  parts.push(',"log":[')
  record.log.forEach((e, i) => {
    const fields = JSON.stringify({ epoch: e.epoch, term: e.term, hash: e.hash, at: e.at, ...(e.welcome !== undefined ? { welcomeTo: e.welcomeTo ?? [] } : {}) })
    parts.push((i > 0 ? ',' : '') + fields.slice(0, -1) + ',"commit":"', b64Once(e.commit), '"')
    if (e.welcome !== undefined) parts.push(',"welcome":"', b64Once(e.welcome), '"')
    parts.push('}')
  })
  parts.push(']}')
  return parts
}

/** Encrypted, atomic persistence of {@link GroupRecord}s. */
export class GroupStore {
  private readonly dir: string
  private readonly key: Buffer
  private readonly config: ClientConfig
  private made?: Promise<unknown>

  constructor (home: string, privateKey: PrivateKey, config: ClientConfig) {
    this.dir = join(home, STATE_DIR)
    this.key = Buffer.from(hkdfSync('sha256', privateKey.raw, 'agentnet-groups', 'state-key/v1', 32))
    this.config = config
  }

  private file (id: string): string {
    return join(this.dir, `${id}.bin`)
  }

  private stagedFile (id: string): string {
    return join(this.dir, `${id}.next`)
  }

  private aad (id: string): Buffer {
    return Buffer.from(`agentnet-groups/v1/${id}.bin`)
  }

  /** Write `record`; `open` = false only at a clean stop. */
  async save (record: GroupRecord, open = true): Promise<void> {
    await this.write(this.file(record.id), this.seal(record, open))
  }

  /** Write `record` to the group's side file (`<id>.next`), not yet its state: see {@link promote}. */
  async stage (record: GroupRecord): Promise<void> {
    // sealed under the group file's name (the authenticated data), which it will take
    await this.write(this.stagedFile(record.id), this.seal(record, true))
  }

  /** Make the staged record the group's state: a rename, then an fsync of the folder. */
  async promote (id: string): Promise<void> {
    await rename(this.stagedFile(id), this.file(id))
    await fsyncDir(this.dir)
  }

  /** Drop a staged record (its commit did not complete). */
  async unstage (id: string): Promise<void> {
    await unlink(this.stagedFile(id)).catch(() => {})
  }

  private seal (record: GroupRecord, open: boolean): Buffer {
    const nonce = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce)
    cipher.setAAD(this.aad(record.id))
    const ct = Buffer.concat([...storedJson(record, open).map(part => cipher.update(part, 'utf8')), cipher.final()])
    return Buffer.concat([MAGIC, nonce, cipher.getAuthTag(), ct])
  }

  private async write (file: string, data: Buffer): Promise<void> {
    // the folder is made once per store (a system call less per save), and again if it went away
    this.made ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => { this.made = undefined; throw err })
    await this.made
    try {
      await writeFileAtomic(file, data)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      await mkdir(this.dir, { recursive: true, mode: 0o700 })
      await writeFileAtomic(file, data)
    }
  }

  async remove (id: string): Promise<void> {
    await unlink(this.file(id)).catch(() => {})
  }

  /** Every stored group; a file that does not decrypt throws {@link CorruptGroupStateError} (never silently forgotten). */
  async loadAll (now: number): Promise<GroupRecord[]> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch {
      return []
    }
    const out: GroupRecord[] = []
    for (const name of names) {
      // a commit staged but never promoted: the node stopped before its acks were in
      if (/^[0-9a-f]{2,128}\.next$/.test(name)) await unlink(join(this.dir, name)).catch(() => {})
      if (!/^[0-9a-f]{2,128}\.bin$/.test(name)) continue
      const id = name.slice(0, -4)
      const data = await readFile(this.file(id))
      let stored: StoredRecord
      try {
        if (!data.subarray(0, 4).equals(MAGIC)) throw new Error('bad magic')
        const decipher = createDecipheriv('aes-256-gcm', this.key, data.subarray(4, 16))
        decipher.setAAD(this.aad(id))
        decipher.setAuthTag(data.subarray(16, 32))
        stored = JSON.parse(Buffer.concat([decipher.update(data.subarray(32)), decipher.final()]).toString('utf8')) as StoredRecord
      } catch (err) {
        throw new CorruptGroupStateError(`group state ${name} cannot be decrypted: ${(err as Error).message}`)
      }
      out.push({
        id,
        groupId: new Uint8Array(Buffer.from(id, 'hex')),
        name: stored.name,
        creator: stored.creator,
        term: stored.term,
        committer: stored.committer,
        state: decodeState(stored.state, this.config),
        ...(stored.prev !== undefined ? { prev: decodeState(stored.prev, this.config) } : {}),
        ...(stored.last !== undefined ? { last: stored.last } : {}),
        log: stored.log.map(e => ({ epoch: e.epoch, term: e.term, hash: e.hash, commit: unb64(e.commit), at: e.at, ...(e.welcome !== undefined ? { welcome: unb64(e.welcome), welcomeTo: e.welcomeTo ?? [] } : {}) })),
        lastHeartbeat: now,
        lastUpdate: stored.lastUpdate,
        ...(stored.open === true ? { unclean: true } : {})
      })
    }
    return out
  }
}

/**
 * When group records are written: at once (awaited), or within `delayMs`
 * (ratchet advances; a crash before it is handled by `unclean`). Writes of
 * one group run one at a time, each snapshotting the record when it starts,
 * so the last write holds the latest state. This queue is separate from the
 * group lock: a delayed write must not hold up the checks (and acks) of
 * incoming frames.
 */
export class StateWriter {
  private readonly store: GroupStore
  private readonly delayMs: number
  /** whether `rec` is still the live record of its group (a delayed write of a forgotten one is dropped) */
  private readonly live: (rec: GroupRecord) => boolean
  private readonly dirty = new Map<string, ReturnType<typeof setTimeout>>()
  private readonly writes = new Map<string, Promise<unknown>>()

  constructor (store: GroupStore, delayMs: number, live: (rec: GroupRecord) => boolean) {
    this.store = store
    this.delayMs = delayMs
    this.live = live
  }

  async save (rec: GroupRecord, open = true): Promise<void> {
    this.cancel(rec.id)
    await this.serial(rec.id, async () => this.store.save(rec, open))
  }

  /**
   * Start writing `next`, the record a commit in flight will produce, to the
   * group's side file; {@link promote} makes it the group's state. The
   * returned promise never rejects: a failed stage only means `promote`
   * writes the whole record instead.
   */
  stage (next: GroupRecord): Promise<boolean> {
    return this.serial(next.id, async () => this.store.stage(next)).then(() => true, () => false)
  }

  /**
   * The commit completed and `rec` now holds what was staged: make the staged
   * file the group's state (a rename), or write `rec` whole if staging failed.
   * `changed`: `rec` moved on from the staged record meanwhile (a ratchet
   * advance), so it is written again within the delay as well.
   */
  async promote (rec: GroupRecord, staged: Promise<boolean>, changed: boolean): Promise<void> {
    this.cancel(rec.id)
    if (await staged) {
      try {
        await this.serial(rec.id, async () => this.store.promote(rec.id))
        if (changed) this.saveSoon(rec)
        return
      } catch {
        // fall through: write the record whole
      }
    }
    await this.serial(rec.id, async () => this.store.save(rec))
  }

  /** The commit was abandoned: drop what was staged for it (once the stage is done; never rejects). */
  async unstage (id: string, staged: Promise<boolean>): Promise<void> {
    await staged
    await this.serial(id, async () => this.store.unstage(id)).catch(() => {})
  }

  saveSoon (rec: GroupRecord): void {
    if (this.dirty.has(rec.id)) return
    const timer = setTimeout(() => {
      this.dirty.delete(rec.id)
      if (this.live(rec)) void this.serial(rec.id, async () => this.store.save(rec)).catch(() => {})
    }, this.delayMs)
    timer.unref()
    this.dirty.set(rec.id, timer)
  }

  /** Delete the group's file, after any write in progress (which would otherwise bring it back). */
  async remove (id: string): Promise<void> {
    this.cancel(id)
    await this.serial(id, async () => this.store.remove(id))
  }

  /** Drop delayed writes and wait for the ones in progress (before a final save at stop). */
  async idle (): Promise<void> {
    for (const t of this.dirty.values()) clearTimeout(t)
    this.dirty.clear()
    await Promise.allSettled([...this.writes.values()])
  }

  private cancel (id: string): void {
    const pending = this.dirty.get(id)
    if (pending !== undefined) { clearTimeout(pending); this.dirty.delete(id) }
  }

  private async serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.writes.get(id) ?? Promise.resolve()
    const run = prev.then(fn, fn)
    const tail = run.catch(() => {})
    this.writes.set(id, tail)
    void tail.then(() => { if (this.writes.get(id) === tail) this.writes.delete(id) })
    return run
  }
}
