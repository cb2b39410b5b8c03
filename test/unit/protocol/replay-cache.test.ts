import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { describe, it } from 'node:test'
import { CorruptSnapshotError, InvalidArgumentError, ReplayCache, ReplayError } from '../../../src/protocol/index.ts'
import { NOW, prng, randomBytes, randomInt } from './helpers.ts'

const WINDOW = 60_000

function nonce (i: number, tag = 0): Uint8Array {
  const n = new Uint8Array(16)
  const view = new DataView(n.buffer)
  view.setUint32(0, i)
  view.setUint32(4, tag)
  return n
}

function isReplay (cache: ReplayCache, peer: string, n: Uint8Array, ts: number, now = NOW): boolean {
  try {
    cache.checkAndRecord(peer, n, ts, now)
    return false
  } catch (err) {
    if (err instanceof ReplayError) return true
    throw err
  }
}

function sumCounts (cache: ReplayCache): number {
  let sum = 0
  for (const count of cache.peerCounts().values()) sum += count
  return sum
}

describe('ReplayCache', () => {
  it('has the documented defaults and validates options', () => {
    const cache = new ReplayCache()
    assert.equal(cache.windowMs, 60_000)
    assert.equal(cache.maxPerPeer, 100_000)
    assert.equal(cache.maxTotal, 1_000_000)
    assert.equal(cache.notBefore, 0)
    for (const bad of [{ windowMs: 0 }, { maxPerPeer: 0 }, { maxTotal: 1.5 }, { notBefore: -1 }, { windowMs: Number.NaN }]) {
      assert.throws(() => new ReplayCache(bad), InvalidArgumentError)
    }
    assert.throws(() => cache.checkAndRecord('p', new Uint8Array(0), NOW, NOW), InvalidArgumentError)
    assert.throws(() => cache.checkAndRecord('', nonce(1), NOW, NOW), InvalidArgumentError)
    assert.throws(() => cache.checkAndRecord('p', nonce(1), NOW + 0.5, NOW), InvalidArgumentError)
  })

  it('rejects a nonce seen from the same peer, not from another', () => {
    const cache = new ReplayCache()
    cache.checkAndRecord('a', nonce(1), NOW, NOW)
    assert.equal(cache.has('a', nonce(1)), true)
    assert.equal(isReplay(cache, 'a', nonce(1), NOW), true)
    assert.equal(isReplay(cache, 'a', nonce(1), NOW + 5), true, 'a different timestamp does not make a nonce new')
    assert.equal(isReplay(cache, 'b', nonce(1), NOW), false)
    assert.equal(isReplay(cache, 'a', nonce(2), NOW), false)
    assert.equal(cache.size, 3)
    assert.equal(cache.countFor('a'), 2)
    assert.deepEqual(cache.peerCounts(), new Map([['a', 2], ['b', 1]]))
  })

  it('bounds a flooding peer without forgetting its nonces or touching other peers', () => {
    const max = 100
    const cache = new ReplayCache({ maxPerPeer: max, maxTotal: 10_000 })
    for (let i = 0; i < 10; i++) cache.checkAndRecord('quiet', nonce(i), NOW, NOW)
    for (let i = 0; i < 3 * max; i++) {
      cache.checkAndRecord('flood', nonce(i), NOW - 1000 + i, NOW)
      assert.ok(cache.countFor('flood') <= max)
    }
    assert.equal(cache.countFor('flood'), max)
    assert.equal(cache.countFor('quiet'), 10)
    assert.equal(cache.size, max + 10)
    // the evicted entries are covered by the watermark, the rest by the nonce set
    assert.equal(cache.watermarkFor('flood'), NOW - 1000 + 2 * max - 1)
    for (let i = 0; i < 3 * max; i++) {
      assert.equal(isReplay(cache, 'flood', nonce(i), NOW - 1000 + i), true, `flood nonce ${i}`)
    }
    for (let i = 0; i < 10; i++) {
      assert.equal(cache.has('quiet', nonce(i)), true)
      assert.equal(isReplay(cache, 'quiet', nonce(i), NOW), true)
    }
    // the flooder can still send fresh messages newer than its watermark
    assert.equal(isReplay(cache, 'flood', nonce(9999), NOW), false)
    assert.equal(cache.countFor('flood'), max)
  })

  it('never accepts an evicted nonce even when timestamps arrive out of order', () => {
    const cache = new ReplayCache({ maxPerPeer: 10, maxTotal: 1000 })
    const rand = prng(7)
    const sent: Array<[Uint8Array, number]> = []
    for (let i = 0; i < 200; i++) {
      const ts = NOW - randomInt(rand, 20_000) + randomInt(rand, 20_000)
      const n = nonce(i, 1)
      if (!isReplay(cache, 'p', n, ts)) sent.push([n, ts])
      assert.ok(cache.countFor('p') <= 10)
    }
    assert.ok(sent.length > 10)
    for (const [n, ts] of sent) assert.equal(isReplay(cache, 'p', n, ts), true)
  })

  it('bounds the total by evicting from the peer with the most entries', () => {
    const cache = new ReplayCache({ maxPerPeer: 1000, maxTotal: 1000 })
    for (let p = 0; p < 20; p++) {
      for (let i = 0; i < 5; i++) cache.checkAndRecord(`quiet-${p}`, nonce(i), NOW, NOW)
    }
    for (let i = 0; i < 2000; i++) {
      cache.checkAndRecord('flood-1', nonce(i), NOW - 5000 + i, NOW)
      cache.checkAndRecord('flood-2', nonce(i), NOW - 5000 + i, NOW)
      assert.ok(cache.size <= 1000)
    }
    assert.equal(cache.size, 1000)
    for (let p = 0; p < 20; p++) {
      assert.equal(cache.countFor(`quiet-${p}`), 5, `quiet-${p} kept its entries`)
      assert.equal(isReplay(cache, `quiet-${p}`, nonce(0), NOW), true)
    }
    assert.ok(Math.abs(cache.countFor('flood-1') - cache.countFor('flood-2')) <= 1, 'the two flooders share what is left')
    for (let i = 0; i < 2000; i++) {
      assert.equal(isReplay(cache, 'flood-1', nonce(i), NOW - 5000 + i), true)
      assert.equal(isReplay(cache, 'flood-2', nonce(i), NOW - 5000 + i), true)
    }
    // a newcomer still gets in, at a flooder's expense
    assert.equal(isReplay(cache, 'newcomer', nonce(1), NOW), false)
    assert.equal(cache.countFor('newcomer'), 1)
    assert.equal(cache.size, 1000)
  })

  it('stays bounded under a flood of many single-message peers, still rejecting every replay', () => {
    const cache = new ReplayCache({ maxPerPeer: 100, maxTotal: 500 })
    for (let p = 0; p < 3000; p++) {
      cache.checkAndRecord(`sybil-${p}`, nonce(p), NOW - 10_000 + p, NOW)
      assert.ok(cache.size <= 500)
      assert.ok(cache.peerCount <= 501)
    }
    for (let p = 0; p < 3000; p++) {
      assert.equal(isReplay(cache, `sybil-${p}`, nonce(p), NOW - 10_000 + p), true, `sybil-${p}`)
    }
    assert.ok(cache.size <= 500)
  })

  it('keeps its invariants under a random workload (bounds, no accepted replay)', () => {
    const rand = prng(0xbadcafe)
    const maxPerPeer = 40
    const maxTotal = 150
    const cache = new ReplayCache({ maxPerPeer, maxTotal, windowMs: WINDOW })
    const accepted: Array<{ peer: string, n: Uint8Array, ts: number }> = []
    let now = NOW
    for (let step = 0; step < 20_000; step++) {
      now += randomInt(rand, 50)
      // a few heavy peers and many light ones
      const peer = rand() < 0.6 ? `heavy-${randomInt(rand, 3)}` : `light-${randomInt(rand, 200)}`
      const n = rand() < 0.05 && accepted.length > 0 ? (accepted[randomInt(rand, accepted.length)] as { n: Uint8Array }).n : randomBytes(rand, 16)
      const ts = now - randomInt(rand, WINDOW) + randomInt(rand, 5_000)
      if (!isReplay(cache, peer, n, ts, now)) accepted.push({ peer, n, ts })
      assert.ok(cache.size <= maxTotal, 'total bound')
      assert.ok(sumCounts(cache) <= cache.size)
      if (step % 97 === 0) {
        for (const count of cache.peerCounts().values()) assert.ok(count <= maxPerPeer, 'per-peer bound')
        // replaying anything accepted that is still inside the window must fail
        for (let k = 0; k < 20 && accepted.length > 0; k++) {
          const a = accepted[randomInt(rand, accepted.length)] as { peer: string, n: Uint8Array, ts: number }
          if (a.ts >= now - WINDOW) assert.equal(isReplay(cache, a.peer, a.n, a.ts, now), true, 'replay accepted')
        }
      }
    }
    assert.ok(accepted.length > 1000)
  })

  it('purges expired entries, incrementally and in full', () => {
    const cache = new ReplayCache()
    for (let p = 0; p < 50; p++) {
      for (let i = 0; i < 4; i++) cache.checkAndRecord(`old-${p}`, nonce(i), NOW, NOW)
    }
    assert.equal(cache.size, 200)
    // traffic from one live peer after the old entries left the window sweeps the others away
    for (let i = 0; i < 60; i++) cache.checkAndRecord('live', nonce(i), NOW + WINDOW + 1 + i, NOW + WINDOW + 1 + i)
    assert.equal(cache.size, 60)
    assert.equal(cache.peerCount, 1)
    cache.purge(NOW + 3 * WINDOW)
    assert.equal(cache.size, 0)
    assert.equal(cache.peerCount, 0)
  })

  it('entries live until their timestamp leaves the window, inclusive', () => {
    const cache = new ReplayCache()
    cache.checkAndRecord('a', nonce(1), NOW, NOW)
    cache.purge(NOW + WINDOW)
    assert.equal(cache.has('a', nonce(1)), true)
    assert.equal(isReplay(cache, 'a', nonce(1), NOW, NOW + WINDOW), true)
    cache.purge(NOW + WINDOW + 1)
    assert.equal(cache.has('a', nonce(1)), false)
    // and it cannot come back: the timestamp is behind the horizon now
    assert.equal(isReplay(cache, 'a', nonce(1), NOW, NOW + WINDOW + 1), true)
  })

  it('does not reopen purged timestamps when the clock steps back', () => {
    const cache = new ReplayCache()
    cache.checkAndRecord('a', nonce(1), NOW, NOW)
    cache.purge(NOW + 2 * WINDOW)
    assert.equal(cache.size, 0)
    assert.equal(isReplay(cache, 'a', nonce(1), NOW, NOW), true, 'clock went back by two windows')
  })

  it('rejects every timestamp at or below notBefore', () => {
    const cache = new ReplayCache({ notBefore: NOW })
    assert.equal(isReplay(cache, 'a', nonce(1), NOW - 1), true)
    assert.equal(isReplay(cache, 'a', nonce(2), NOW), true)
    assert.equal(isReplay(cache, 'a', nonce(3), NOW + 1), false)
    assert.equal(cache.watermarkFor('anyone'), NOW)
  })

  describe('snapshot / restore', () => {
    function populated (): { cache: ReplayCache, seen: Array<[string, Uint8Array, number]> } {
      const cache = new ReplayCache({ maxPerPeer: 50, maxTotal: 200, notBefore: NOW - 50_000 })
      const seen: Array<[string, Uint8Array, number]> = []
      for (let i = 0; i < 120; i++) {
        cache.checkAndRecord('flood', nonce(i), NOW - 1000 + i, NOW) // overflows: watermark
        seen.push(['flood', nonce(i), NOW - 1000 + i])
      }
      for (let p = 0; p < 30; p++) {
        for (let i = 0; i < 3; i++) {
          cache.checkAndRecord(`peer-é-${p}`, nonce(i, p), NOW - i, NOW)
          seen.push([`peer-é-${p}`, nonce(i, p), NOW - i])
        }
      }
      return { cache, seen }
    }

    it('round-trips and keeps rejecting replays', () => {
      const { cache, seen } = populated()
      const bytes = cache.snapshot()
      const restored = ReplayCache.restore(bytes, { maxPerPeer: 50, maxTotal: 200 })
      assert.equal(restored.size, cache.size)
      assert.deepEqual(restored.peerCounts(), cache.peerCounts())
      assert.equal(restored.watermarkFor('flood'), cache.watermarkFor('flood'))
      assert.equal(restored.watermarkFor('nobody'), NOW - 50_000, 'the notBefore floor survives')
      assert.deepEqual(restored.snapshot(), bytes, 'snapshot is deterministic and lossless')
      for (const [peer, n, ts] of seen) assert.equal(isReplay(restored, peer, n, ts), true, `${peer}`)
      assert.equal(isReplay(restored, 'flood', nonce(1000), NOW), false)
      assert.equal(isReplay(restored, 'new', nonce(1), NOW), false)
    })

    it('restores into smaller bounds without accepting replays', () => {
      const { cache, seen } = populated()
      const restored = ReplayCache.restore(cache.snapshot(), { maxPerPeer: 10, maxTotal: 40 })
      assert.ok(restored.size <= 40)
      for (const count of restored.peerCounts().values()) assert.ok(count <= 10)
      for (const [peer, n, ts] of seen) assert.equal(isReplay(restored, peer, n, ts), true, `${peer}`)
    })

    it('drops expired entries when given the time, and applies a new notBefore', () => {
      const { cache } = populated()
      const later = ReplayCache.restore(cache.snapshot(), { now: NOW + 2 * WINDOW })
      assert.equal(later.size, 0)
      assert.equal(isReplay(later, 'flood', nonce(5), NOW - 995, NOW + 2 * WINDOW), true)
      const floored = ReplayCache.restore(cache.snapshot(), { notBefore: NOW + 10 })
      assert.equal(isReplay(floored, 'x', nonce(1), NOW + 10), true)
      assert.equal(isReplay(floored, 'x', nonce(1), NOW + 11), false)
    })

    it('round-trips an empty cache', () => {
      const empty = new ReplayCache()
      const restored = ReplayCache.restore(empty.snapshot())
      assert.equal(restored.size, 0)
      assert.deepEqual(restored.snapshot(), empty.snapshot())
    })

    it('throws CorruptSnapshotError, and nothing else, for damaged input', () => {
      const { cache } = populated()
      const good = cache.snapshot()
      const expectCorrupt = (bytes: Uint8Array, what: string): void => {
        assert.throws(() => ReplayCache.restore(bytes), (err: unknown) => err instanceof CorruptSnapshotError && err.code === 'CorruptSnapshot', what)
      }
      expectCorrupt(new Uint8Array(0), 'empty')
      expectCorrupt(new TextEncoder().encode('not a snapshot at all, but long enough to have a checksum'), 'text')
      for (let len = 0; len < good.length; len += 7) expectCorrupt(good.subarray(0, len), `truncated to ${len}`)
      expectCorrupt(Uint8Array.from([...good, 0]), 'trailing byte')
      const rand = prng(99)
      for (let i = 0; i < 500; i++) {
        const bytes = Uint8Array.from(good)
        const at = randomInt(rand, bytes.length)
        bytes[at] = (bytes[at] as number) ^ (1 + randomInt(rand, 255))
        expectCorrupt(bytes, `byte ${at} changed`)
      }
    })

    it('parses adversarial snapshots with a valid checksum without crashing', () => {
      const { cache } = populated()
      const good = cache.snapshot()
      const body = good.subarray(0, good.length - 32)
      const seal = (b: Uint8Array): Uint8Array => Uint8Array.from([...b, ...createHash('sha256').update(b).digest()])
      const rand = prng(1234)
      let restored = 0
      for (let i = 0; i < 2000; i++) {
        let b = Uint8Array.from(body)
        const kind = i % 3
        if (kind === 0) {
          const flips = 1 + randomInt(rand, 3)
          for (let f = 0; f < flips; f++) b[randomInt(rand, b.length)] = randomInt(rand, 256)
        } else if (kind === 1) {
          b = b.subarray(0, randomInt(rand, b.length))
        } else {
          // right header, random rest
          b = Uint8Array.from([...body.subarray(0, 5), ...randomBytes(rand, randomInt(rand, 200))])
        }
        try {
          const c = ReplayCache.restore(seal(b), { maxPerPeer: 50, maxTotal: 200 })
          assert.ok(c.size <= 200)
          restored++
        } catch (err) {
          assert.ok(err instanceof CorruptSnapshotError, `unexpected ${String(err)}`)
        }
      }
      assert.ok(restored < 2000)
      // specific structural lies
      const header = body.subarray(0, 21) // magic, version, horizon, floor
      const u32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]
      const lies: Record<string, number[]> = {
        'huge peer count': [...header, ...u32(0xffffffff)],
        'huge entry count': [...header, ...u32(1), 0, 1, 0x61, ...new Array(8).fill(0), ...u32(0xffffffff)],
        'zero-length nonce': [...header, ...u32(1), 0, 1, 0x61, ...new Array(8).fill(0), ...u32(1), 0, ...new Array(8).fill(0)],
        'empty peer id': [...header, ...u32(1), 0, 0, ...new Array(8).fill(0), ...u32(0)],
        'invalid utf-8 peer id': [...header, ...u32(1), 0, 1, 0xff, ...new Array(8).fill(0), ...u32(0)],
        'repeated peer': [...header, ...u32(2), 0, 1, 0x61, ...new Array(8).fill(0), ...u32(0), 0, 1, 0x61, ...new Array(8).fill(0), ...u32(0)],
        'repeated nonce': [...header, ...u32(1), 0, 1, 0x61, ...new Array(8).fill(0), ...u32(2), 1, 7, ...new Array(7).fill(0), 1, 1, 7, ...new Array(7).fill(0), 1],
        'timestamp beyond 2^53': [...header, ...u32(1), 0, 1, 0x61, ...new Array(8).fill(0), ...u32(1), 1, 7, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        'unknown version': [...body.subarray(0, 4), 2, ...body.subarray(5)]
      }
      for (const [what, bytes] of Object.entries(lies)) {
        assert.throws(() => ReplayCache.restore(seal(Uint8Array.from(bytes))), CorruptSnapshotError, what)
      }
    })
  })
})
