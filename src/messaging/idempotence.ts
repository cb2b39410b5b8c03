/**
 * The outcome of each request kept for the replay window, so a retry of a
 * request (same sender, same request ID, fresh nonce) is answered from here
 * instead of running the service twice.
 */
import type { Clock } from '../utils/clock.ts'

export type CachedReply = { kind: 'response' | 'error', body: Uint8Array, contentType: string }

export interface IdempotenceEntry {
  expires: number
  /** bytes of the cached reply body, counted against maxBytes */
  bytes: number
  reply?: CachedReply
  /** duplicates that arrived while the service was still running */
  waiters?: Array<(reply: CachedReply) => void>
}

export interface IdempotenceCacheInit {
  windowMs: number
  maxEntries: number
  maxBytes: number
  clock: Clock
}

/**
 * Bounded in entries and bytes, oldest dropped first: a dropped entry only
 * means a late retry of that request runs the service again, never that a
 * replay gets through (the replay cache decides that).
 */
export class IdempotenceCache {
  private readonly entries = new Map<string, IdempotenceEntry>()
  private bytes = 0
  private readonly init: IdempotenceCacheInit

  constructor (init: IdempotenceCacheInit) {
    this.init = init
  }

  /** The live entry for `key`, if the request was seen within the window */
  get (key: string): IdempotenceEntry | undefined {
    const entry = this.entries.get(key)
    return entry != null && entry.expires > this.init.clock() ? entry : undefined
  }

  /** Record that a request is being handled; its reply follows through {@link settle} */
  open (key: string): IdempotenceEntry {
    const entry: IdempotenceEntry = { expires: this.init.clock() + this.init.windowMs, bytes: 0 }
    this.entries.set(key, entry)
    this.trim()
    return entry
  }

  /** Store the reply and answer the duplicates that waited for it */
  settle (key: string, entry: IdempotenceEntry, reply: CachedReply): void {
    entry.reply = reply
    if (this.entries.get(key) === entry) {
      entry.bytes = reply.body.byteLength
      this.bytes += entry.bytes
      this.trim()
    }
    for (const waiter of entry.waiters ?? []) waiter(reply)
    entry.waiters = undefined
  }

  private trim (): void {
    const now = this.init.clock()
    for (const [k, v] of this.entries) {
      const over = this.entries.size > this.init.maxEntries || this.bytes > this.init.maxBytes
      if (v.expires > now && !over) break
      this.entries.delete(k)
      this.bytes -= v.bytes
    }
  }
}
