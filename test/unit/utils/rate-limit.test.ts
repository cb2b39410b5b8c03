import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RateLimiter } from '../../../src/utils/rate-limit.ts'

describe('RateLimiter', () => {
  it('allows a burst, then the refill rate; reports the first refusal of an episode', () => {
    const limiter = new RateLimiter(5, 10, 100)
    const t0 = 1_000_000
    for (let i = 0; i < 10; i++) assert.equal(limiter.take('p', t0).allowed, true)
    assert.deepEqual(limiter.take('p', t0), { allowed: false, firstRefusal: true })
    assert.deepEqual(limiter.take('p', t0 + 100), { allowed: false, firstRefusal: false })
    assert.equal(limiter.take('p', t0 + 200).allowed, true) // 200 ms × 5/s = 1 token
    assert.deepEqual(limiter.take('p', t0 + 200), { allowed: false, firstRefusal: true })
    // other peers are not affected
    assert.equal(limiter.take('q', t0 + 200).allowed, true)
    // a long pause refills up to the burst only
    let allowed = 0
    for (let i = 0; i < 50; i++) if (limiter.take('p', t0 + 3_600_000).allowed) allowed++
    assert.equal(allowed, 10)
  })

  it('tracks at most maxPeers, least recently used out', () => {
    const limiter = new RateLimiter(1, 2, 3)
    for (const p of ['a', 'b', 'c', 'd', 'e']) limiter.take(p, 0)
    assert.equal(limiter.size, 3)
    for (let i = 0; i < 100_000; i++) limiter.take(`sybil-${i}`, i)
    assert.equal(limiter.size, 3)
  })

  it('refuses nonsense settings', () => {
    assert.throws(() => new RateLimiter(0, 1, 1), RangeError)
    assert.throws(() => new RateLimiter(1, 0, 1), RangeError)
    assert.throws(() => new RateLimiter(1, 1, 0), RangeError)
  })
})
