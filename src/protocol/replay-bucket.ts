/**
 * The per-peer bookkeeping of the replay cache: one peer's nonces in
 * insertion order ({@link Bucket}), and the queue of small buckets that may
 * be folded into the global floor ({@link FoldQueue}). Data structures only;
 * the eviction rules are in `replay-cache.ts`.
 *
 * @module
 */

/**
 * One peer's nonces. Insertion order is kept in two parallel arrays read from
 * `head` (a queue), membership in a Set. A Map in insertion order would be
 * simpler, but V8 leaves a hole for every deleted Map entry and iterating
 * from the front skips them all, so FIFO use of a Map costs O(n) per
 * eviction.
 */
export class Bucket {
  readonly peer: string
  readonly seen = new Set<string>()
  keys: string[] = []
  times: number[] = []
  head = 0
  /** reject timestamps <= watermark from this peer */
  watermark: number
  /** how the bucket is counted in the total: 0 = not, 1 = by its nonces (in a size bag), 2 = watermark-only */
  counted: 0 | 1 | 2 = 0
  /** index in its size bag while counted === 1 */
  slot = -1
  /** whether it is in the fold queue */
  queued = false

  constructor (peer: string, watermark = 0) {
    this.peer = peer
    this.watermark = watermark
  }

  get size (): number {
    return this.seen.size
  }

  /** Timestamp of the oldest-inserted nonce, if any. */
  front (): number | undefined {
    return this.times[this.head]
  }

  push (key: string, ts: number): void {
    this.seen.add(key)
    this.keys.push(key)
    this.times.push(ts)
  }

  /** Remove the oldest-inserted nonce and return its timestamp. */
  shift (): number {
    const key = this.keys[this.head] as string
    const ts = this.times[this.head] as number
    this.seen.delete(key)
    this.keys[this.head] = '' // let the string go now, not at the next compaction
    this.head++
    if (this.head === this.keys.length) {
      this.keys = []
      this.times = []
      this.head = 0
    } else if (this.head >= 64 && this.head * 2 >= this.keys.length) {
      this.keys = this.keys.slice(this.head)
      this.times = this.times.slice(this.head)
      this.head = 0
    }
    return ts
  }
}

/**
 * Candidates for folding into the floor (one-nonce and watermark-only
 * buckets), roughly oldest first. Entries are checked when taken, so a
 * bucket that has grown or gone since is skipped; a bucket is queued at most
 * once at a time (`bucket.queued`).
 */
export class FoldQueue {
  private items: Array<Bucket | undefined> = []
  private head = 0
  private readonly isFoldable: (bucket: Bucket) => boolean

  /** `isFoldable`: whether a bucket still qualifies (the cache decides) */
  constructor (isFoldable: (bucket: Bucket) => boolean) {
    this.isFoldable = isFoldable
  }

  /**
   * Queue a bucket. When the queue holds more than `liveBound` entries, the
   * ones that no longer qualify are dropped, keeping the order (so the queue
   * stays proportional to the number of peers).
   */
  enqueue (bucket: Bucket, liveBound: number): void {
    if (bucket.queued) return
    bucket.queued = true
    this.items.push(bucket)
    if (this.items.length - this.head > liveBound) {
      // drop entries for buckets that have grown or gone, keeping the order
      const live: Bucket[] = []
      for (let i = this.head; i < this.items.length; i++) {
        const b = this.items[i]
        if (b === undefined) continue
        if (this.isFoldable(b)) live.push(b)
        else b.queued = false
      }
      this.items = live
      this.head = 0
    }
  }

  /** The oldest queued bucket that still qualifies (taken off the queue). */
  next (): Bucket | undefined {
    while (this.head < this.items.length) {
      const bucket = this.items[this.head]
      this.items[this.head] = undefined
      this.head++
      if (bucket === undefined) continue
      bucket.queued = false
      if (this.isFoldable(bucket)) {
        this.compact()
        return bucket
      }
    }
    this.compact()
    return undefined
  }

  private compact (): void {
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
  }
}
