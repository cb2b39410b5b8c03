/**
 * A bounded memory of recently seen message nonces, per sender.
 *
 * A nonce is remembered while its message's timestamp is inside the window
 * (`timestamp >= now - windowMs`); older messages are rejected as stale before
 * the cache is asked, so forgetting them is safe. Memory is bounded per peer
 * (`maxPerPeer`) and in total (`maxTotal`). Bounding is done so that eviction
 * never makes a replay acceptable: whenever an entry is evicted while its
 * timestamp is still inside the window, the peer's *watermark* is raised to
 * that timestamp and every later message from that peer with a timestamp at or
 * below the watermark is rejected as a replay. A peer that floods thus only
 * hurts itself (its own older-timestamped messages are refused), and because
 * the total bound evicts from the peer holding the most entries, a flood
 * cannot push out a quiet peer's entries.
 *
 * Rejection rules, all reported as {@link ReplayError}:
 * - `timestamp < horizon`: the horizon is `max(now - windowMs)` over every
 *   `now` seen (it never moves back, so a clock stepping backwards cannot
 *   resurrect purged nonces); it survives snapshots.
 * - `timestamp <= floor`: the floor is `notBefore` (set by the node after a
 *   crash, when no clean snapshot exists) raised by any watermark that had to
 *   be folded in (only under a flood of many single-message peers, see below).
 * - `timestamp <= watermark(peer)`.
 * - the nonce is already recorded for that peer.
 *
 * Every timestamp <= 0 is therefore rejected (the floor starts at 0): a
 * message always carries a real timestamp.
 *
 * Expired entries are purged incrementally: the sender's own bucket on every
 * call (from its oldest entry on, stopping at the first live one), plus a
 * cursor that visits two more peers per call, so no call does a full scan.
 * Buckets are in insertion order, not timestamp order, so an expired entry may
 * wait behind a younger one; it is gone at the latest once every entry
 * inserted before it in the same bucket has expired. {@link ReplayCache.purge}
 * does a full sweep (e.g. on a timer).
 *
 * Accounting: `size` counts stored nonces plus one for each peer kept only for
 * its live watermark (no nonces left); this sum never exceeds `maxTotal`.
 * When the total is full, an entry is evicted from the peer with the most
 * nonces (the inserting peer itself on a tie). If no peer holds two or more,
 * the longest-standing one-nonce or watermark-only peer is dropped instead
 * and its timestamps are folded into the global floor: at that point the
 * cache is full of one-message peers (a sybil flood), no peer can be told
 * apart from the flood, and raising the floor is the only way to forget
 * safely. Every operation is O(1) amortised.
 *
 * The per-peer data structures are in `replay-bucket.ts`, the snapshot
 * format in `replay-snapshot.ts`; the rules above are all here.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { InvalidArgumentError, ReplayError, RestartedAtError } from './errors.ts'
import { Bucket, FoldQueue } from './replay-bucket.ts'
import { decodeSnapshot, encodeSnapshot } from './replay-snapshot.ts'

/** Default {@link ReplayCacheInit.windowMs}. */
export const DEFAULT_WINDOW_MS = 60_000
/** Default {@link ReplayCacheInit.maxPerPeer}. */
export const DEFAULT_MAX_PER_PEER = 100_000
/** Default {@link ReplayCacheInit.maxTotal}. */
export const DEFAULT_MAX_TOTAL = 1_000_000

/** Peers are keyed by their peer ID string; longer keys are refused. */
const MAX_PEER_KEY_LENGTH = 512
/** Nonces longer than this are refused (the snapshot stores the length in one byte). */
const MAX_NONCE_LENGTH = 255
/** Peers visited by the incremental purge per call. */
const SWEEP_STEP = 2

export interface ReplayCacheInit {
  /**
   * How long (ms) a nonce is remembered after its timestamp. Must be at least
   * the window the verifier accepts timestamps in.
   *
   * @default 60_000
   */
  windowMs?: number
  /**
   * Most nonces kept for one peer; beyond it the peer's oldest entry is evicted
   * and its watermark raised.
   *
   * @default 100_000
   */
  maxPerPeer?: number
  /**
   * Most nonces (plus watermark-only peers) kept in total.
   *
   * @default 1_000_000
   */
  maxTotal?: number
  /**
   * Reject every timestamp <= this (ms since the epoch). After a crash (no
   * clean snapshot) the node sets it to `startTime + maxSkew`, so frames
   * captured before the crash cannot be replayed.
   *
   * @default 0
   */
  notBefore?: number
}

export interface RestoreOptions extends ReplayCacheInit {
  /** Current time (ms); when given, entries already outside the window are not restored. */
  now?: number
}

function positiveInteger (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(`${name} must be a positive integer`)
  return value
}

function nonceKey (nonce: Uint8Array): string {
  return Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('latin1')
}

/** Bounded, eviction-safe replay cache. See the module doc for the rules. */
export class ReplayCache {
  readonly windowMs: number
  readonly maxPerPeer: number
  readonly maxTotal: number
  readonly notBefore: number

  private readonly peers = new Map<string, Bucket>()
  /** buckets with nonces, by nonce count, to find the largest in O(1) amortised */
  private readonly bySize = new Map<number, Bucket[]>()
  private maxSize = 0
  /** Candidates for folding into the floor (one-nonce and watermark-only buckets), roughly oldest first */
  private readonly foldQueue = new FoldQueue(b => this.isFoldable(b))
  private total = 0
  private horizon = 0
  private floor: number
  private sweepCursor: Iterator<Bucket> | undefined

  constructor (init: ReplayCacheInit = {}) {
    this.windowMs = positiveInteger('windowMs', init.windowMs, DEFAULT_WINDOW_MS)
    this.maxPerPeer = positiveInteger('maxPerPeer', init.maxPerPeer, DEFAULT_MAX_PER_PEER)
    this.maxTotal = positiveInteger('maxTotal', init.maxTotal, DEFAULT_MAX_TOTAL)
    const notBefore = init.notBefore ?? 0
    if (!Number.isSafeInteger(notBefore) || notBefore < 0) throw new InvalidArgumentError('notBefore must be a non-negative integer')
    this.notBefore = notBefore
    this.floor = notBefore
  }

  /** Stored nonces plus watermark-only peers; never more than `maxTotal`. */
  get size (): number {
    return this.total
  }

  /** Number of peers the cache holds state for. */
  get peerCount (): number {
    return this.peers.size
  }

  /** Nonces currently stored for `peer`. */
  countFor (peer: string): number {
    return this.peers.get(peer)?.size ?? 0
  }

  /** Nonces stored per peer (a copy; for tests and metrics). */
  peerCounts (): Map<string, number> {
    const out = new Map<string, number>()
    for (const [peer, bucket] of this.peers) {
      if (bucket.size > 0) out.set(peer, bucket.size)
    }
    return out
  }

  /** The timestamp at or below which every message from `peer` is rejected (0 = none). */
  watermarkFor (peer: string): number {
    return Math.max(this.floor, this.peers.get(peer)?.watermark ?? 0)
  }

  /** Whether `nonce` is currently recorded for `peer`. Read-only. */
  has (peer: string, nonce: Uint8Array): boolean {
    return this.peers.get(peer)?.seen.has(nonceKey(nonce)) ?? false
  }

  /**
   * Reject a replay, else remember the nonce. Call it only once every other
   * check of the message passed, so that a forged message cannot occupy a
   * nonce slot.
   *
   * @param peer - the sender's peer ID string
   * @param nonce - the message nonce (1..255 bytes)
   * @param timestamp - the message timestamp (ms)
   * @param now - the current time (ms)
   * @throws {ReplayError} when the message may have been seen before
   * @throws {InvalidArgumentError} on an empty or oversized peer key or nonce,
   * or a timestamp or `now` that is not an integer
   */
  checkAndRecord (peer: string, nonce: Uint8Array, timestamp: number, now: number): void {
    if (peer.length === 0 || peer.length > MAX_PEER_KEY_LENGTH) throw new InvalidArgumentError('peer key must be 1..512 characters')
    if (nonce.length === 0 || nonce.length > MAX_NONCE_LENGTH) throw new InvalidArgumentError('nonce must be 1..255 bytes')
    if (!Number.isSafeInteger(timestamp)) throw new InvalidArgumentError('timestamp must be a safe integer')
    this.advance(now)
    if (!(timestamp >= this.horizon)) throw new ReplayError('Timestamp is outside the replay window')
    // distinct code: an honest sender re-seals past the floor (every envelope accepted before it is at or below it)
    if (timestamp <= this.floor) throw new RestartedAtError(this.floor)
    this.sweep(SWEEP_STEP)
    const key = nonceKey(nonce)
    const bucket = this.peers.get(peer)
    if (bucket !== undefined) {
      if (timestamp <= bucket.watermark) throw new ReplayError('Timestamp is at or below the peer watermark')
      if (bucket.seen.has(key)) throw new ReplayError('Nonce already seen')
      this.refresh(bucket)
    }
    this.insert(peer, key, timestamp)
  }

  /**
   * Purge every expired entry and watermark now (a full scan; the per-call
   * purge is incremental).
   */
  purge (now: number): void {
    this.advance(now)
    this.sweepCursor = undefined
    this.sweep(Infinity)
  }

  /**
   * A compact binary copy of the cache, to write on clean shutdown:
   * `"ANRC" | version u8 | horizon u64 | floor u64 | peers u32 |
   * (idLen u16 | id utf8 | watermark u64 | count u32 | (nonceLen u8 | nonce | ts u64)*)* |
   * sha256(everything before)`. Integers are big-endian.
   */
  snapshot (): Uint8Array {
    return encodeSnapshot(this.horizon, Math.max(this.floor, 0), this.peers)
  }

  /**
   * Rebuild a cache from {@link snapshot} output. The bounds of `init` apply
   * (restoring into smaller bounds evicts with the usual watermark rule); the
   * snapshot's horizon and floor are kept, and `init.notBefore` raises the floor.
   *
   * @throws {CorruptSnapshotError} for anything but an intact snapshot
   * @throws {InvalidArgumentError} on invalid options
   */
  static restore (bytes: Uint8Array, init: RestoreOptions = {}): ReplayCache {
    const cache = new ReplayCache(init)
    decodeSnapshot(bytes, MAX_PEER_KEY_LENGTH, {
      header: (horizon, floor) => {
        cache.horizon = horizon
        cache.floor = Math.max(cache.floor, floor)
        if (init.now !== undefined) cache.advance(init.now)
      },
      entry: (peer, key, ts, watermark) => { cache.restoreEntry(peer, key, ts, watermark) },
      watermark: (peer, watermark) => { cache.restoreWatermark(peer, watermark) }
    })
    return cache
  }

  // ------------------------------------------------------------ internals

  private restoreEntry (peer: string, key: string, ts: number, watermark: number): void {
    if (ts < this.horizon || ts <= this.floor || ts <= watermark) return
    const bucket = this.peers.get(peer)
    if (bucket !== undefined && ts <= bucket.watermark) return
    this.insert(peer, key, ts)
  }

  private restoreWatermark (peer: string, watermark: number): void {
    if (watermark < this.horizon || watermark <= this.floor) return
    const bucket = this.peers.get(peer)
    if (bucket !== undefined) {
      this.detach(bucket)
      if (watermark > bucket.watermark) bucket.watermark = watermark
      this.attach(bucket)
      return
    }
    if (this.total >= this.maxTotal) {
      this.makeRoom()
      if (watermark <= this.floor) return
    }
    const created = new Bucket(peer, watermark)
    this.peers.set(peer, created)
    this.attach(created)
  }

  private advance (now: number): void {
    // an integer clock keeps the horizon exact in snapshots; a NaN or infinite
    // `now` would disable or freeze the cache
    if (!Number.isSafeInteger(now)) throw new InvalidArgumentError('now must be an integer (ms)')
    const cutoff = now - this.windowMs
    if (cutoff > this.horizon) this.horizon = cutoff
  }

  /** Store a nonce that passed every check, evicting as the bounds require. */
  private insert (peer: string, key: string, ts: number): void {
    let bucket = this.peers.get(peer)
    if (bucket === undefined) {
      bucket = new Bucket(peer)
      this.peers.set(peer, bucket)
    } else if (bucket.size >= this.maxPerPeer) {
      this.detach(bucket)
      this.evictOldest(bucket)
      this.attach(bucket)
    }
    // Storing one nonce takes one more unit of the total, unless it turns a
    // watermark-only bucket (already one unit) into a one-nonce bucket.
    if (ts > bucket.watermark && bucket.counted !== 2 && this.total >= this.maxTotal) {
      this.makeRoom(bucket)
      if (this.peers.get(peer) !== bucket) {
        // our own bucket was folded into the floor
        bucket = new Bucket(peer)
        this.peers.set(peer, bucket)
      }
    }
    if (ts <= bucket.watermark || ts <= this.floor) {
      // an eviction just raised the watermark or floor over this message, so
      // it is refused as a replay from now on without storing its nonce
      if (bucket.counted === 0) this.peers.delete(peer)
      return
    }
    this.detach(bucket)
    bucket.push(key, ts)
    this.attach(bucket)
  }

  /**
   * Free one unit of the total: evict from the bucket with the most nonces
   * (the inserting one on a tie, so equal flooders evict their own entries),
   * or, when no bucket has two, fold a small bucket into the global floor.
   */
  private makeRoom (inserting?: Bucket): void {
    const largest = this.largest()
    if (largest !== undefined && largest.size >= 2) {
      const victim = inserting !== undefined && inserting.counted === 1 && inserting.size === largest.size ? inserting : largest
      this.detach(victim)
      this.evictOldest(victim)
      this.attach(victim)
      return
    }
    const victim = this.foldQueue.next()
    if (victim === undefined) return
    this.detach(victim)
    for (let k = victim.head; k < victim.times.length; k++) {
      const ts = victim.times[k] as number
      if (ts > this.floor) this.floor = ts
    }
    if (victim.watermark > this.floor) this.floor = victim.watermark
    this.peers.delete(victim.peer)
  }

  /** Evict the bucket's oldest-inserted nonce and raise its watermark. Bucket must be detached. */
  private evictOldest (bucket: Bucket): void {
    if (bucket.size === 0) return
    const ts = bucket.shift()
    if (ts > bucket.watermark) bucket.watermark = ts
  }

  /** Drop expired nonces from the front of a detached bucket. */
  private purgeBucket (bucket: Bucket): void {
    const horizon = this.horizon
    for (let front = bucket.front(); front !== undefined && front < horizon; front = bucket.front()) {
      bucket.shift()
    }
  }

  /** Purge up to `steps` peers, continuing where the last call stopped. */
  private sweep (steps: number): void {
    for (let i = 0; i < steps; i++) {
      this.sweepCursor ??= this.peers.values()
      const next = this.sweepCursor.next()
      if (next.done === true) {
        this.sweepCursor = undefined
        if (steps === Infinity || this.peers.size === 0) return
        continue
      }
      this.refresh(next.value)
    }
  }

  /**
   * Drop a bucket's expired front entries, or the whole bucket if nothing in
   * it matters any more. Cheap when there is nothing to do.
   */
  private refresh (bucket: Bucket): void {
    const front = bucket.front()
    const stale = front === undefined
      ? bucket.counted !== 2 || bucket.watermark < this.horizon || bucket.watermark <= this.floor
      : front < this.horizon
    if (!stale) return
    this.detach(bucket)
    this.purgeBucket(bucket)
    this.attach(bucket)
    if (bucket.counted === 0) this.peers.delete(bucket.peer)
  }

  /** Remove a bucket from the accounting before changing it. */
  private detach (bucket: Bucket): void {
    if (bucket.counted === 1) {
      const size = bucket.size
      const bag = this.bySize.get(size) as Bucket[]
      const last = bag.pop() as Bucket
      if (last !== bucket) {
        bag[bucket.slot] = last
        last.slot = bucket.slot
      }
      if (bag.length === 0) this.bySize.delete(size)
      bucket.slot = -1
      this.total -= size
    } else if (bucket.counted === 2) {
      this.total -= 1
    }
    bucket.counted = 0
  }

  /**
   * Account for a bucket after changing it. A bucket with no nonces and a
   * watermark that no longer matters stays uncounted (`counted = 0`) until the
   * sweep deletes it or a new nonce fills it.
   */
  private attach (bucket: Bucket): void {
    const size = bucket.size
    if (size > 0) {
      let bag = this.bySize.get(size)
      if (bag === undefined) {
        bag = []
        this.bySize.set(size, bag)
      }
      bucket.slot = bag.length
      bag.push(bucket)
      if (size > this.maxSize) this.maxSize = size
      this.total += size
      bucket.counted = 1
      if (size === 1) this.foldQueue.enqueue(bucket, 2 * this.peers.size + 64)
    } else if (bucket.watermark >= this.horizon && bucket.watermark > this.floor) {
      this.total += 1
      bucket.counted = 2
      this.foldQueue.enqueue(bucket, 2 * this.peers.size + 64)
    }
  }

  /** A bucket with the most nonces. */
  private largest (): Bucket | undefined {
    while (this.maxSize > 0) {
      const bag = this.bySize.get(this.maxSize)
      if (bag !== undefined) return bag[bag.length - 1]
      this.maxSize--
    }
    return undefined
  }

  private isFoldable (bucket: Bucket): boolean {
    return this.peers.get(bucket.peer) === bucket && (bucket.counted === 2 || (bucket.counted === 1 && bucket.size === 1))
  }

}
