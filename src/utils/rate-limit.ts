/**
 * Per-peer token buckets with a bounded number of tracked peers.
 *
 * Each peer has a bucket of `burst` tokens that refills at `ratePerSecond`;
 * every request (a trust handshake, a token request) takes one, and a request
 * that finds the bucket empty is refused. The map of buckets holds at most `maxPeers` entries, least
 * recently used first out; an evicted peer starts again with a full bucket,
 * which only matters once more than `maxPeers` peers flood at the same time.
 *
 * @module
 */

interface Bucket {
  tokens: number
  /** ms of the last refill */
  at: number
  /** this bucket already refused since it was last non-empty (to log or audit once per episode) */
  refusing: boolean
}

export interface TakeResult {
  allowed: boolean
  /** true for the first refusal after the bucket ran dry */
  firstRefusal: boolean
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()
  private readonly ratePerMs: number
  private readonly burst: number
  private readonly maxPeers: number

  constructor (ratePerSecond: number, burst: number, maxPeers: number) {
    if (!(ratePerSecond > 0) || !(burst >= 1) || !Number.isSafeInteger(maxPeers) || maxPeers < 1) {
      throw new RangeError('ratePerSecond must be > 0, burst >= 1 and maxPeers a positive integer')
    }
    this.ratePerMs = ratePerSecond / 1000
    this.burst = burst
    this.maxPeers = maxPeers
  }

  /** Peers currently tracked. */
  get size (): number {
    return this.buckets.size
  }

  /** Take one token from `peer`'s bucket. */
  take (peer: string, now: number = Date.now()): TakeResult {
    let bucket = this.buckets.get(peer)
    if (bucket === undefined) {
      if (this.buckets.size >= this.maxPeers) {
        const oldest = this.buckets.keys().next()
        if (oldest.done !== true) this.buckets.delete(oldest.value)
      }
      bucket = { tokens: this.burst, at: now, refusing: false }
    } else {
      this.buckets.delete(peer)
      const elapsed = Math.max(0, now - bucket.at)
      bucket.tokens = Math.min(this.burst, bucket.tokens + elapsed * this.ratePerMs)
      bucket.at = now
    }
    // most recently used last
    this.buckets.set(peer, bucket)
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      bucket.refusing = false
      return { allowed: true, firstRefusal: false }
    }
    const firstRefusal = !bucket.refusing
    bucket.refusing = true
    return { allowed: false, firstRefusal }
  }
}
