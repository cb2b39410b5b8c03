import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  BadSignatureError,
  createCryptoPool,
  decodeSignedMessage,
  ed25519PublicKeyOf,
  encodeMessage,
  InvalidArgumentError,
  LOAD_SAMPLE_MS,
  SPAWN_SAMPLE_MS,
  SPARE_SAMPLE_MS,
  MLS_SIGNATURE_SCHEME,
  openEnvelope,
  openEnvelopeAsync,
  ReplayCache,
  ReplayError,
  sealEnvelope,
  sealEnvelopeAsync,
  SenderMismatchError,
  signingPayload,
  StaleMessageError,
  verifySignature,
  workerCount,
  WrongRecipientError
} from '../../../src/protocol/index.ts'
import { frameOf, identity, message, NOW, signedBytesOf } from './helpers.ts'
import type { CryptoPool, OpenContext } from '../../../src/protocol/index.ts'
import type { Identity } from './helpers.ts'

const enc = new TextEncoder()

describe('CryptoPool', () => {
  let alice: Identity
  let bob: Identity
  /** every job goes to the worker: offloading whatever the main thread's load */
  let pool: CryptoPool

  before(async () => {
    alice = await identity()
    bob = await identity()
    pool = createCryptoPool({ workers: 1, offloadUtilization: 0 })
    pool.start()
  })

  after(async () => {
    await pool.stop()
  })

  it('maps the workers setting to a thread count: none on one core, one per extra core, capped', () => {
    assert.equal(workerCount('auto', 1), 0)
    assert.equal(workerCount('auto', 2), 1)
    assert.equal(workerCount('auto', 64), 8)
    assert.equal(workerCount(3, 2), 3)
    assert.throws(() => workerCount(-1), InvalidArgumentError)
    assert.throws(() => workerCount(1.5), InvalidArgumentError)
  })

  it('verifies on the worker with exactly the answers of the inline check', async () => {
    const payload = enc.encode('pay me')
    const good = alice.signer.sign(payload)
    const tampered = Uint8Array.from(good)
    tampered[5] = (tampered[5] as number) ^ 1
    const before = pool.stats.offloaded
    const cases: Array<[Uint8Array, Uint8Array, Uint8Array]> = [
      [ed25519PublicKeyOf(alice.peerId), payload, good],
      [ed25519PublicKeyOf(alice.peerId), enc.encode('pay me!'), good],
      [ed25519PublicKeyOf(alice.peerId), payload, tampered],
      [ed25519PublicKeyOf(bob.peerId), payload, good],
      // not a point on the curve: invalid, not an error
      [new Uint8Array(32).fill(0xff), payload, good]
    ]
    const answers = await Promise.all(cases.map(async ([key, data, sig]) => pool.verify(key, data, sig)))
    assert.deepEqual(answers, [true, false, false, false, false])
    assert.equal(pool.stats.offloaded - before, cases.length, 'every job ran on the worker')
    assert.equal(pool.workers, 1)
    // the scheme is part of what is verified: a message signature is not an MLS one
    assert.equal(await pool.verify(ed25519PublicKeyOf(alice.peerId), payload, good, MLS_SIGNATURE_SCHEME), false)
  })

  it('signs on the worker: the same (deterministic Ed25519) signature as inline', async () => {
    const payloads = Array.from({ length: 50 }, (_, i) => enc.encode(`payload ${i}`))
    const before = pool.stats.offloaded
    const sigs = await Promise.all(payloads.map(async p => pool.sign(alice.signer, p)))
    assert.equal(pool.stats.offloaded - before, payloads.length)
    sigs.forEach((sig, i) => {
      assert.deepEqual(sig, alice.signer.sign(payloads[i] as Uint8Array))
      assert.ok(verifySignature(alice.peerId, payloads[i] as Uint8Array, sig))
    })
  })

  it('hashes and verifies / signs body-digest payloads on the worker, as signingPayload inline, in mixed batches', async () => {
    const key = ed25519PublicKeyOf(alice.peerId)
    const cases = [0, 1, 100, 256 * 1024].map(size => {
      const m = message(alice, bob, { body: new Uint8Array(size).map((_, i) => i * 31) })
      const payload = encodeMessage(m)
      return { payload, body: m.body, signature: alice.signer.sign(signingPayload(payload, m.body)) }
    })
    const before = pool.stats.offloaded
    const jobs: Array<Promise<boolean> | boolean | Promise<Uint8Array> | Uint8Array> = []
    for (const c of cases) {
      jobs.push(pool.verifyDigested(key, c.payload, c.body, c.signature))
      const tampered = c.payload.slice()
      // the last body byte (the last header byte when there is no body)
      tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1
      jobs.push(pool.verifyDigested(key, tampered, tampered.subarray(tampered.length - c.body.length), c.signature))
      jobs.push(pool.signDigested(alice.signer, c.payload, c.body))
      // a plain job in the same batch
      jobs.push(pool.verify(key, c.payload, alice.signer.sign(c.payload)))
    }
    const answers = await Promise.all(jobs)
    assert.equal(pool.stats.offloaded - before, jobs.length, 'all on the worker')
    cases.forEach((c, i) => {
      assert.equal(answers[4 * i], true, `valid, ${c.body.length} B`)
      assert.equal(answers[4 * i + 1], false, `tampered, ${c.body.length} B`)
      assert.deepEqual(answers[4 * i + 2], c.signature, `signature, ${c.body.length} B`)
      assert.equal(answers[4 * i + 3], true)
    })
  })

  it('batches: many jobs of one tick go in few messages', async () => {
    const payload = enc.encode('batch')
    const sig = alice.signer.sign(payload)
    const batches = pool.stats.batches
    const answers = await Promise.all(Array.from({ length: 600 }, async () => pool.verify(ed25519PublicKeyOf(alice.peerId), payload, sig)))
    assert.ok(answers.every(a => a))
    // 600 jobs at most 256 per batch: 3 batches (a few more if a batch returned mid-way)
    assert.ok(pool.stats.batches - batches <= 6, `${pool.stats.batches - batches} batches`)
  })

  it('keeps small jobs inline when the main thread is idle, and sends large ones to a worker', async () => {
    const lazy = createCryptoPool({ workers: 1 })
    lazy.start()
    try {
      const small = enc.encode('small')
      const result = lazy.verify(ed25519PublicKeyOf(alice.peerId), small, alice.signer.sign(small))
      assert.equal(result, true, 'answered inline, synchronously')
      assert.equal(lazy.workers, 0, 'no worker started for it')
      const large = new Uint8Array(128 * 1024).fill(7)
      const pending = lazy.verify(ed25519PublicKeyOf(alice.peerId), large, alice.signer.sign(large))
      assert.ok(pending instanceof Promise)
      assert.equal(await pending, true)
      assert.equal(lazy.stats.offloaded, 1)
      assert.equal(lazy.workers, 1)
    } finally {
      await lazy.stop()
    }
  })

  it('offloads small jobs while the loop is saturated, and takes them back once it waits on the network', async () => {
    const pool = createCryptoPool({ workers: 1 })
    pool.start()
    const small = enc.encode('small')
    const sig = alice.signer.sign(small)
    const key = ed25519PublicKeyOf(alice.peerId)
    try {
      assert.equal(pool.verify(key, small, sig), true, 'the first job samples the load and runs inline')
      // a saturated loop: the thread computes without a break for longer than the spawn window
      const until = performance.now() + SPAWN_SAMPLE_MS + LOAD_SAMPLE_MS + 10
      while (performance.now() < until) pool.verify(key, small, sig)
      const busy = pool.verify(key, small, sig)
      assert.ok(busy instanceof Promise, 'sent to a worker')
      assert.equal(await busy, true)
      // a loop that mostly waits (as one answering one request at a time does): back inline once a load
      // sample saw it (the answers of the jobs offloaded during the spin may keep it busy a little while)
      let answer: boolean | Promise<boolean> = Promise.resolve(false)
      for (let i = 0; i < 40 && answer instanceof Promise; i++) {
        await answer
        await new Promise(resolve => setTimeout(resolve, LOAD_SAMPLE_MS + 10))
        answer = pool.verify(key, small, sig)
      }
      assert.equal(answer, true, 'inline again, synchronously')
    } finally {
      await pool.stop()
    }
  })

  it('offloads small signs only while the machine has a core to spare; verifies on load alone', async () => {
    // the machine's idle CPU as the pool sees it: `idleCores` cores idle from now on
    let idleCores = 0
    let idleMs = 0
    let at = performance.now()
    const idleCpuMs = (): number => { const now = performance.now(); idleMs += (now - at) * idleCores; at = now; return idleMs }
    const pool = createCryptoPool({ workers: 1, idleCpuMs })
    pool.start()
    const small = enc.encode('small')
    const sig = alice.signer.sign(small)
    const key = ed25519PublicKeyOf(alice.peerId)
    /** keep the main thread saturated with signs for `ms` (inline while no core is idle, so the worker stays idle too) */
    const saturate = (ms: number): void => { const until = performance.now() + ms; while (performance.now() < until) void pool.sign(alice.signer, small) }
    try {
      saturate(SPAWN_SAMPLE_MS + 2 * SPARE_SAMPLE_MS)
      assert.equal(pool.stats.offloaded, 0, 'no idle core: every sign stayed inline')
      const verified = pool.verify(key, small, sig)
      assert.ok(verified instanceof Promise, 'a verify goes to the worker on load alone')
      const signed = pool.sign(alice.signer, small)
      assert.ok(signed instanceof Uint8Array, 'no idle core: the sign stays inline')
      assert.deepEqual(signed, alice.signer.sign(small))
      await verified
      // a core goes idle: after the next spare samples, small signs go to the worker too
      idleCores = 1
      saturate(3 * SPARE_SAMPLE_MS)
      const offloaded = pool.sign(alice.signer, small)
      assert.ok(offloaded instanceof Promise, 'a core to spare: the sign goes to the worker')
      assert.deepEqual(await offloaded, alice.signer.sign(small))
      // a fifth of a core idle is enough to go on; none is not
      idleCores = 0.2
      saturate(3 * SPARE_SAMPLE_MS)
      assert.ok(pool.sign(alice.signer, small) instanceof Promise, 'still offloading with 0.2 cores idle')
      idleCores = 0
      saturate(3 * SPARE_SAMPLE_MS)
      assert.ok(pool.sign(alice.signer, small) instanceof Uint8Array, 'no idle core: back inline')
    } finally {
      await pool.stop()
    }
  })

  it('starts no worker for a moment of load (a GC pause), only for load that lasts', async () => {
    const pool = createCryptoPool({ workers: 1, offloadUtilization: 0.5 })
    pool.start()
    /** keep the main thread busy for `ms` (what a long GC pause or a burst does to the event loop) */
    const busy = (ms: number): void => { const end = performance.now() + ms; while (performance.now() < end) { /* busy */ } }
    try {
      const small = enc.encode('small')
      const sig = alice.signer.sign(small)
      assert.equal(pool.verify(ed25519PublicKeyOf(alice.peerId), small, sig), true, 'idle: inline')
      busy(120)
      // the last 50 ms were all busy, the last second not yet measured: still inline, no worker
      assert.equal(pool.verify(ed25519PublicKeyOf(alice.peerId), small, sig), true, 'a moment of load: inline')
      assert.equal(pool.workers, 0, 'no worker started for a moment of load')
      busy(1000)
      // busy over the last 50 ms and the last second: offloaded, the worker starts
      const offloaded = pool.verify(ed25519PublicKeyOf(alice.peerId), small, sig)
      assert.ok(offloaded instanceof Promise, 'sustained load: offloaded')
      assert.equal(await offloaded, true)
      assert.equal(pool.workers, 1)
    } finally {
      await pool.stop()
    }
  })

  it('workers: 0 computes everything inline', async () => {
    const none = createCryptoPool({ workers: 0, offloadUtilization: 0 })
    none.start()
    const large = new Uint8Array(128 * 1024)
    assert.equal(none.verify(ed25519PublicKeyOf(alice.peerId), large, alice.signer.sign(large)), true)
    assert.deepEqual(none.sign(alice.signer, large), alice.signer.sign(large))
    assert.equal(none.stats.offloaded, 0)
    assert.equal(none.workers, 0)
    await none.stop()
  })

  it('answers every pending job, correctly, when stopped under load', async () => {
    const p = createCryptoPool({ workers: 1, offloadUtilization: 0 })
    p.start()
    const payload = enc.encode('x')
    const sig = alice.signer.sign(payload)
    const key = ed25519PublicKeyOf(alice.peerId)
    const jobs = Array.from({ length: 2000 }, async (_, i) => p.verify(key, i % 2 === 0 ? payload : enc.encode('y'), sig))
    await p.stop()
    const answers = await Promise.all(jobs)
    assert.ok(answers.every((a, i) => a === (i % 2 === 0)))
    assert.equal(p.workers, 0)
  })
})

describe('openEnvelopeAsync / sealEnvelopeAsync on the pool', () => {
  let alice: Identity
  let bob: Identity
  let mallory: Identity
  let pool: CryptoPool

  before(async () => {
    alice = await identity()
    bob = await identity()
    mallory = await identity()
    pool = createCryptoPool({ workers: 1, offloadUtilization: 0 })
    pool.start()
  })

  after(async () => {
    await pool.stop()
  })

  const ctx = (cache: ReplayCache, over: Partial<OpenContext> = {}): OpenContext =>
    ({ localPeer: bob.peerId, remotePeer: alice.peerId, replayCache: cache, now: NOW, cryptoPool: pool, ...over })

  it('opens what sealEnvelopeAsync sealed on a worker, and the sync form agrees', async () => {
    const frame = await sealEnvelopeAsync({ to: bob.peerId, service: 'echo', kind: 'request', id: 'r1', body: enc.encode('hi'), timestamp: NOW }, alice.signer, pool)
    const opened = await openEnvelopeAsync(frame, ctx(new ReplayCache()))
    assert.equal(new TextDecoder().decode(opened.message.body), 'hi')
    assert.ok(opened.fromPeer.equals(alice.peerId))
    assert.equal(openEnvelope(frame, { ...ctx(new ReplayCache()), cryptoPool: undefined }).message.id, 'r1')
    // the worker's signature is the inline one (Ed25519 is deterministic)
    const { payload, signature } = decodeSignedMessage(frame)
    assert.deepEqual(signature, alice.signer.sign(signedBytesOf(payload)))
  })

  it('attack: a forged signature is refused and uses up no nonce', async () => {
    const cache = new ReplayCache()
    const msg = message(alice, bob)
    const forged = frameOf(msg, mallory.signer)
    const offloaded = pool.stats.offloaded
    await assert.rejects(openEnvelopeAsync(forged, ctx(cache)), BadSignatureError)
    assert.equal(pool.stats.offloaded - offloaded, 1, 'the signature was checked on the worker')
    // the genuine frame with the same nonce is still accepted: the forgery recorded nothing
    const genuine = frameOf(msg, alice.signer)
    assert.equal((await openEnvelopeAsync(genuine, ctx(cache))).message.id, msg.id)
    // and its replay is refused
    await assert.rejects(openEnvelopeAsync(genuine, ctx(cache)), ReplayError)
  })

  it('attack: frames failing a cheap check never reach the signature check', async () => {
    const cache = new ReplayCache()
    const offloaded = pool.stats.offloaded
    const inline = pool.stats.inline
    // addressed to someone else
    await assert.rejects(openEnvelopeAsync(frameOf(message(alice, mallory), alice.signer), ctx(cache)), WrongRecipientError)
    // claims to come from someone other than the authenticated peer
    await assert.rejects(openEnvelopeAsync(frameOf(message(mallory, bob), mallory.signer), ctx(cache)), SenderMismatchError)
    assert.equal(pool.stats.offloaded, offloaded)
    assert.equal(pool.stats.inline, inline)
    // a stale frame is checked (signature first, so a forgery cannot learn the window), then refused
    await assert.rejects(openEnvelopeAsync(frameOf(message(alice, bob, { timestamp: NOW - 120_000 }), alice.signer), ctx(cache)), StaleMessageError)
  })

  it('attack: the same frame twice in flight at once is accepted exactly once', async () => {
    const cache = new ReplayCache()
    const frame = frameOf(message(alice, bob), alice.signer)
    const results = await Promise.allSettled(Array.from({ length: 8 }, async () => openEnvelopeAsync(frame, ctx(cache))))
    assert.equal(results.filter(r => r.status === 'fulfilled').length, 1)
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof ReplayError)
    }
  })

  it('seals the same payload shape as the sync form', async () => {
    const fields = { to: bob.peerId, service: 's', kind: 'oneway' as const, id: 'x', timestamp: NOW }
    const a = decodeSignedMessage(await sealEnvelopeAsync(fields, alice.signer, pool))
    const b = decodeSignedMessage(sealEnvelope(fields, alice.signer))
    // only the random nonce differs (bytes 0..n of the payload around it are equal)
    assert.equal(a.payload.length, b.payload.length)
    assert.ok(verifySignature(alice.peerId, signedBytesOf(a.payload), a.signature))
    assert.ok(verifySignature(alice.peerId, signedBytesOf(b.payload), b.signature))
  })
})
