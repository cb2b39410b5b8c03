/**
 * Ed25519 on every core: a pool of worker threads that verify and sign in
 * batches, used when it pays and bypassed when it does not.
 *
 * Every request costs a node one verify and one sign. Inline they run on the
 * main thread, which also runs the network stack, so a busy node tops out at
 * one core. The pool moves them to `workers` threads (node:worker_threads,
 * node:crypto inside, as on the inline path: it is several times faster than
 * a pure-JS Ed25519), fed in batches so that one `postMessage` and one
 * transferred buffer carry many jobs.
 *
 * When it pays (measured on a 2-core machine, see `test/bench/peers.bench.ts`
 * and README.md, "Crypto on every core"): a hand-off costs the main thread a copy
 * and a message and adds a thread round trip of latency, so a job goes to a
 * worker only when
 * - its data is at least `largeJobBytes` (hashing a large body inline would
 *   stall every other peer for milliseconds), or
 * - the main thread is saturated: its event-loop utilisation over the last
 *   {@link LOAD_SAMPLE_MS} is at least `offloadUtilization` (0.75). Once
 *   offloading, the pool stays with it while the utilisation the thread
 *   would have with the crypto back inline (the measured one plus the
 *   window's jobs times the measured cost of an inline job) is still at least
 *   that: the hand-off lowers the measured figure, and without this the
 *   decision would flip every window.
 * - and, for a small **sign**, the machine has a core to spare: at least
 *   {@link SIGN_SPARE_CORES} of idle CPU (from the kernel's counters, over
 *   {@link SPARE_SAMPLE_MS}) to start, and while offloading signs still
 *   {@link SIGN_KEEP_CORES} (what the worker takes is no longer idle; none
 *   left means it competes with other processes). A sign
 *   costs about a third of a verify (34 against 106 µs here) while the
 *   hand-off costs the main thread 15–20 µs a job either way, so an offloaded
 *   sign frees little of the main thread and adds CPU; on a machine with no
 *   idle core that CPU comes out of another process (the one-way benchmark's
 *   two nodes share 2 cores: with the sender offloading its signs they
 *   reached 78–84 % of the verify rate, with its signs inline 89–91 %). A
 *   verify frees six times what its hand-off costs and is offloaded on load
 *   alone. In a container with a CPU quota, the idle time counted is the
 *   quota the cgroup left unused when that is less than the host's
 *   (`cpu-idle.ts`).
 * An idle node, and one that is busy only because it answers one request at
 * a time (its loop waits for the network between requests: a thread hop
 * would only add a round trip of latency to each), keeps the lowest latency
 * (inline); a saturated one spreads the crypto over the other cores. The
 * threshold was 0.5 at first: a node answering sequential requests sits at
 * about 0.5 and paid a thread hop on every request; a receiver saturated by
 * one-way messages sits at 0.8–0.95 (measured with test/bench/messaging.bench.ts),
 * so 0.75 is between the two. Before the first worker runs, the load over
 * the last {@link SPAWN_SAMPLE_MS} must be that high too: a worker costs
 * ~20 MiB of RSS for good, and one GC pause made a lightly loaded node start
 * one at a random moment (a step in the soak benchmark). For body-digest schemes
 * (`verifyDigested`, `signDigested`) a handed-off job carries the header and
 * the body, and the worker computes the body's SHA-256 as well, so the main
 * thread neither hashes nor signs a large body. `workers: 'auto'` is one worker
 * per core beyond the first (none on one core, where a worker can only add
 * overhead).
 *
 * The pool decides nothing about validity: a verify job answers the same
 * boolean `verifyRaw` would, and the caller (`openEnvelopeAsync`) keeps the
 * order of checks. A job whose worker dies, or that is pending when the pool
 * stops, is computed inline instead, so no promise is left hanging and no
 * answer changes.
 *
 * Longer than 450 lines on purpose: the offload rule and the batching share
 * the queue, the workers and the load samples, and most of the length is the
 * rule's reasoning above; the worker side is `crypto-worker.ts`, the CPU
 * accounting `cpu-idle.ts`.
 *
 * @module
 */

import { sign as cryptoSign } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { InvalidArgumentError } from './errors.ts'
import { BODY_DIGEST_BYTES, BODY_TAG, headerLengthOf, withBodyDigest } from './digest.ts'
import { readCgroupCpu, usableCores, usableIdleMs } from './cpu-idle.ts'
import { MESSAGE_SIGNATURE_SCHEME, signedData, signingKeyOf, uvarint, verifyRaw } from './signing.ts'
import type { MessageSigner, SignatureScheme } from './signing.ts'
import type { KeyObject } from 'node:crypto'
import type { EventLoopUtilization } from 'node:perf_hooks'

/** Default {@link CryptoPoolInit.offloadUtilization}. */
export const DEFAULT_OFFLOAD_UTILIZATION = 0.75
/** Default {@link CryptoPoolInit.largeJobBytes}: 64 KiB. */
export const DEFAULT_LARGE_JOB_BYTES = 64 * 1024
/** Default {@link CryptoPoolInit.maxBatchJobs}. */
export const DEFAULT_MAX_BATCH_JOBS = 256
/** Most workers `'auto'` starts. */
export const MAX_AUTO_WORKERS = 8
/** How often the main thread's load is re-sampled, ms. */
export const LOAD_SAMPLE_MS = 50
/** What a small verify and a small sign are assumed to cost inline until one is timed, ms (Ed25519 here) */
const INITIAL_INLINE_MS = { verify: 0.11, sign: 0.035 }
/** Weight of one timed inline job in {@link CryptoPool.inlineMs} */
const INLINE_COST_WEIGHT = 1 / 64
/** How often the machine's spare CPU is re-sampled, ms (the kernel counts idle time in 10 ms ticks). */
export const SPARE_SAMPLE_MS = 250
/** Idle cores from which small signs go to the workers too. */
export const SIGN_SPARE_CORES = 0.5
/** Idle cores under which small signs come back inline. */
export const SIGN_KEEP_CORES = 0.1
/** The window of the main thread's load that must be high before workers are started, ms. */
export const SPAWN_SAMPLE_MS = 1000
/** Batches handed to one worker and not yet answered: one running, one queued behind it. */
const MAX_OUTSTANDING_BATCHES = 2

const PUBLIC_KEY_BYTES = 32
const SIGNATURE_BYTES = 64
const VERIFY = 0
const SIGN = 1
/** the same, over `header || 0x6a 0x20 || SHA-256(body)` with the body hashed on the worker */
const VERIFY_DIGEST = 2
const SIGN_DIGEST = 3

export interface CryptoPoolInit {
  /**
   * Worker threads: `'auto'` (one per core beyond the first, at most
   * {@link MAX_AUTO_WORKERS}; none on a 1-core machine) or a number (0: all inline).
   *
   * @default 'auto'
   */
  workers?: 'auto' | number
  /**
   * Main-thread event-loop utilisation (0..1) from which small jobs go to the
   * workers; 0 sends every job, 1 keeps small jobs inline unless the loop is
   * saturated.
   *
   * @default 0.75
   */
  offloadUtilization?: number
  /**
   * Jobs over this many bytes of signed data always go to a worker.
   *
   * @default 65536
   */
  largeJobBytes?: number
  /**
   * Most jobs in one batch.
   *
   * @default 256
   */
  maxBatchJobs?: number
  /**
   * Idle CPU time this process could use, ms, as a counter (the spare CPU
   * small signs need, see the module doc). Tests pass their own.
   *
   * @default the host's idle time (`os.cpus()`), or the quota its cgroup left unused if less (`cpu-idle.ts`)
   */
  idleCpuMs?: () => number
}

/** Counters, for benchmarks and the metrics endpoint. */
export interface CryptoPoolStats {
  /** jobs computed on the calling thread */
  inline: number
  /** jobs computed by a worker */
  offloaded: number
  /** batches posted to workers */
  batches: number
}

/** How many workers a `workers` setting means with `cores` usable cores (a container's CPU quota counts, `cpu-idle.ts`). */
export function workerCount (setting: 'auto' | number, cores: number = usableCores()): number {
  if (setting === 'auto') return Math.max(0, Math.min(cores - 1, MAX_AUTO_WORKERS))
  if (!Number.isSafeInteger(setting) || setting < 0) throw new InvalidArgumentError('workers must be "auto" or a non-negative integer')
  return setting
}

interface Job {
  kind: typeof VERIFY | typeof SIGN | typeof VERIFY_DIGEST | typeof SIGN_DIGEST
  /** what is signed; for the digest kinds, the header (what precedes the body field) */
  payload: Uint8Array
  /** digest kinds: the body, hashed on the worker */
  body?: Uint8Array
  scheme: SignatureScheme
  /** verify: raw public key and signature */
  publicKey?: Uint8Array
  signature?: Uint8Array
  /** sign: the node:crypto key, and its id in the workers */
  key?: KeyObject
  keyId: number
  resolve: (value: boolean | Uint8Array) => void
}

interface Batch { id: number, jobs: Job[] }

interface PoolWorker {
  worker: Worker
  outstanding: Batch[]
}

type JobCost = keyof typeof INITIAL_INLINE_MS

/** A worker script next to this module, in the same form (`.ts` from source, `.js` once built). */
const WORKER_URL = new URL(`./crypto-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)

export class CryptoPool {
  readonly stats: CryptoPoolStats = { inline: 0, offloaded: 0, batches: 0 }
  private readonly size: number
  private readonly offloadUtilization: number
  private readonly largeJobBytes: number
  private readonly maxBatchJobs: number
  private readonly idleCpuMs: () => number
  private readonly live: PoolWorker[] = []
  private queue: Job[] = []
  private flushScheduled = false
  private nextBatchId = 0
  private readonly keyIds = new Map<KeyObject, number>()
  private lastSampleAt = 0
  private lastElu: EventLoopUtilization | undefined
  private utilization = 0
  /** whether small jobs go to the workers now (decided once per load sample) */
  private offloading = false
  /** what the small jobs offloaded since the last load sample would have cost inline, ms */
  private offloadedMsInSample = 0
  /** what a small verify and a small sign cost inline, ms (moving averages; first guesses until measured) */
  private readonly inlineMs = { ...INITIAL_INLINE_MS }
  /** whether small signs go to the workers too (decided once per {@link SPARE_SAMPLE_MS}; see the module doc) */
  private offloadingSigns = false
  private lastSpareAt = 0
  private lastIdleMs: number | undefined
  private lastSpawnSampleAt = 0
  private lastSpawnElu: EventLoopUtilization | undefined
  private spawnUtilization = 0
  private started = false

  constructor (init: CryptoPoolInit = {}) {
    const cgroup = readCgroupCpu()
    this.size = workerCount(init.workers ?? 'auto', usableCores(cgroup))
    this.offloadUtilization = init.offloadUtilization ?? DEFAULT_OFFLOAD_UTILIZATION
    this.largeJobBytes = init.largeJobBytes ?? DEFAULT_LARGE_JOB_BYTES
    this.maxBatchJobs = init.maxBatchJobs ?? DEFAULT_MAX_BATCH_JOBS
    this.idleCpuMs = init.idleCpuMs ?? usableIdleMs({ cgroup })
    if (!(this.offloadUtilization >= 0)) throw new InvalidArgumentError('offloadUtilization must be a number from 0')
    if (!Number.isSafeInteger(this.largeJobBytes) || this.largeJobBytes < 0) throw new InvalidArgumentError('largeJobBytes must be a non-negative integer')
    if (!Number.isSafeInteger(this.maxBatchJobs) || this.maxBatchJobs < 1) throw new InvalidArgumentError('maxBatchJobs must be a positive integer')
  }

  /** Worker threads running now. */
  get workers (): number {
    return this.live.length
  }

  /**
   * Allow workers. They are spawned on first use, not here: each costs a few
   * MiB and tens of ms to start, which an idle node never needs to pay.
   */
  start (): void {
    this.started = true
  }

  /** Stop the workers; jobs still pending are computed inline first. */
  async stop (): Promise<void> {
    this.started = false
    const workers = this.live.splice(0)
    for (const w of workers) this.failOver(w)
    this.runInline(this.queue.splice(0))
    await Promise.all(workers.map(async w => w.worker.terminate()))
  }

  /**
   * Whether `signature` is valid over {@link signedData}(payload, scheme)
   * under the raw Ed25519 `publicKey` (the answer of `verifyRaw`). A boolean
   * when computed inline, a promise when handed to a worker.
   */
  verify (publicKey: Uint8Array, payload: Uint8Array, signature: Uint8Array, scheme: SignatureScheme = MESSAGE_SIGNATURE_SCHEME): boolean | Promise<boolean> {
    if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES || !this.offload(payload.length, 'verify')) {
      return this.inline(payload.length, 'verify', () => verifyRaw(publicKey, signedData(payload, scheme), signature))
    }
    return new Promise<boolean>(resolve => {
      this.enqueue({ kind: VERIFY, payload, scheme, publicKey, signature, keyId: -1, resolve: resolve as Job['resolve'] })
    })
  }

  /**
   * `signer.sign(payload)`, possibly on a worker. Signers not made by
   * `createSigner` always sign inline.
   */
  sign (signer: MessageSigner, payload: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const entry = signingKeyOf(signer)
    if (entry === undefined || !this.offload(payload.length, 'sign')) {
      return this.inline(payload.length, 'sign', () => signer.sign(payload))
    }
    const keyId = this.keyIdOf(entry.key)
    return new Promise<Uint8Array>(resolve => {
      this.enqueue({ kind: SIGN, payload, scheme: entry.scheme, key: entry.key, keyId, resolve: resolve as Job['resolve'] })
    })
  }

  /**
   * {@link verify} over `signingPayload(payload, body)` (body-digest schemes):
   * a large body is hashed on the worker too, so the main thread never hashes
   * it.
   *
   * @throws {MalformedFrameError} when `body` is not the last field of `payload`
   */
  verifyDigested (publicKey: Uint8Array, payload: Uint8Array, body: Uint8Array, signature: Uint8Array, scheme: SignatureScheme = MESSAGE_SIGNATURE_SCHEME): boolean | Promise<boolean> {
    const header = payload.subarray(0, headerLengthOf(payload, body.length))
    if (publicKey.length !== PUBLIC_KEY_BYTES || signature.length !== SIGNATURE_BYTES || !this.offload(payload.length, 'verify')) {
      return this.inline(payload.length, 'verify', () => verifyRaw(publicKey, signedData(withBodyDigest(header, body), scheme), signature))
    }
    return new Promise<boolean>(resolve => {
      this.enqueue({ kind: VERIFY_DIGEST, payload: header, body, scheme, publicKey, signature, keyId: -1, resolve: resolve as Job['resolve'] })
    })
  }

  /** {@link sign} over `signingPayload(payload, body)`, a large body hashed on the worker. */
  signDigested (signer: MessageSigner, payload: Uint8Array, body: Uint8Array): Uint8Array | Promise<Uint8Array> {
    const header = payload.subarray(0, headerLengthOf(payload, body.length))
    const entry = signingKeyOf(signer)
    if (entry === undefined || !this.offload(payload.length, 'sign')) {
      return this.inline(payload.length, 'sign', () => signer.sign(withBodyDigest(header, body)))
    }
    const keyId = this.keyIdOf(entry.key)
    return new Promise<Uint8Array>(resolve => {
      this.enqueue({ kind: SIGN_DIGEST, payload: header, body, scheme: entry.scheme, key: entry.key, keyId, resolve: resolve as Job['resolve'] })
    })
  }

  /** Whether a job of `bytes` goes to a worker now (see the module doc). */
  private offload (bytes: number, cost: JobCost): boolean {
    if (!this.started || this.size === 0) return false
    if (bytes < this.largeJobBytes) {
      if (!this.saturated()) return false
      // a small sign only with a core to spare (module doc); `offloadUtilization: 0` still sends every job
      if (cost === 'sign' && this.offloadUtilization > 0 && !this.offloadingSigns) return false
      this.offloadedMsInSample += this.inlineMs[cost]
    }
    while (this.live.length < this.size) this.spawn()
    return true
  }

  /** Re-decide {@link offloadingSigns} from the machine's idle cores since the last sample. */
  private sampleSpare (now: number): void {
    const idleMs = this.idleCpuMs()
    if (this.lastIdleMs !== undefined && now > this.lastSpareAt) {
      const idleCores = (idleMs - this.lastIdleMs) / (now - this.lastSpareAt)
      this.offloadingSigns = idleCores >= (this.offloadingSigns ? SIGN_KEEP_CORES : SIGN_SPARE_CORES)
    }
    this.lastIdleMs = idleMs
    this.lastSpareAt = now
  }

  /**
   * Whether small jobs go to the workers: decided from the main thread's
   * event-loop utilisation, re-sampled at most every {@link LOAD_SAMPLE_MS}
   * (see the module doc for the rule and why it has two sides).
   */
  private saturated (): boolean {
    if (this.offloadUtilization <= 0) return true
    const now = performance.now()
    const elapsed = now - this.lastSampleAt
    if (elapsed >= LOAD_SAMPLE_MS) {
      const current = performance.eventLoopUtilization()
      if (this.lastElu !== undefined) {
        this.utilization = performance.eventLoopUtilization(current, this.lastElu).utilization
        const inlineUtilization = this.utilization + (this.offloading ? this.offloadedMsInSample / elapsed : 0)
        this.offloading = inlineUtilization >= this.offloadUtilization
      }
      this.lastElu = current
      this.lastSampleAt = now
      this.offloadedMsInSample = 0
      if (now - this.lastSpareAt >= SPARE_SAMPLE_MS) this.sampleSpare(now)
      if (this.lastSpawnElu === undefined || now - this.lastSpawnSampleAt >= SPAWN_SAMPLE_MS) {
        if (this.lastSpawnElu !== undefined) this.spawnUtilization = performance.eventLoopUtilization(current, this.lastSpawnElu).utilization
        this.lastSpawnElu = current
        this.lastSpawnSampleAt = now
      }
    }
    // no worker yet: only for load that lasted (see SPAWN_SAMPLE_MS)
    return this.offloading && (this.live.length > 0 || this.spawnUtilization >= this.offloadUtilization)
  }

  /** Run `compute` on this thread, timing it for {@link inlineMs} (small jobs only) */
  private inline<T> (bytes: number, cost: JobCost, compute: () => T): T {
    this.stats.inline++
    if (bytes >= this.largeJobBytes || this.size === 0) return compute()
    const start = performance.now()
    const out = compute()
    this.inlineMs[cost] += (performance.now() - start - this.inlineMs[cost]) * INLINE_COST_WEIGHT
    return out
  }

  private keyIdOf (key: KeyObject): number {
    let id = this.keyIds.get(key)
    if (id === undefined) {
      id = this.keyIds.size
      this.keyIds.set(key, id)
      for (const w of this.live) w.worker.postMessage({ type: 'key', id, key })
    }
    return id
  }

  private spawn (): void {
    const w: PoolWorker = { worker: new Worker(WORKER_URL), outstanding: [] }
    // an idle pool must not keep the process alive; a busy one does (see post)
    w.worker.unref()
    for (const [key, id] of this.keyIds) w.worker.postMessage({ type: 'key', id, key })
    w.worker.on('message', (msg: { id: number, ok: Uint8Array, sigs: Uint8Array }) => { this.settle(w, msg) })
    const gone = (): void => {
      const at = this.live.indexOf(w)
      if (at === -1) return
      this.live.splice(at, 1)
      this.failOver(w)
      this.flush()
    }
    w.worker.on('error', gone)
    w.worker.on('exit', gone)
    this.live.push(w)
  }

  private enqueue (job: Job): void {
    this.queue.push(job)
    if (this.queue.length >= this.maxBatchJobs) {
      this.flush()
    } else if (!this.flushScheduled) {
      // gather what arrives in this turn of the event loop into one batch: jobs come from separate
      // microtasks (one per message), and a batch per microtask cost a postMessage per job
      this.flushScheduled = true
      setImmediate(this.scheduledFlush)
    }
  }

  private readonly scheduledFlush = (): void => {
    this.flushScheduled = false
    this.flush()
  }

  /** Hand queued jobs to the least busy workers that can take a batch; the rest wait for a batch to come back. */
  private flush (): void {
    while (this.queue.length > 0) {
      if (this.live.length === 0) {
        this.runInline(this.queue.splice(0))
        return
      }
      let target: PoolWorker | undefined
      for (const w of this.live) {
        if (w.outstanding.length < MAX_OUTSTANDING_BATCHES && (target === undefined || w.outstanding.length < target.outstanding.length)) target = w
      }
      if (target === undefined) return
      this.post(target, this.queue.splice(0, this.maxBatchJobs))
    }
  }

  private post (w: PoolWorker, jobs: Job[]): void {
    const n = jobs.length
    const kinds = new Uint8Array(n)
    const keys = new Int32Array(n)
    const bodies = new Uint32Array(n)
    const offsets = new Uint32Array(n + 1)
    const lens: number[][] = []
    let total = 0
    for (let i = 0; i < n; i++) {
      const job = jobs[i] as Job
      const digested = job.body !== undefined
      // a digest job signs header || 0x6a 0x20 || digest, the digest filled in by the worker from the body after it
      const signedLength = job.payload.length + (digested ? 2 + BODY_DIGEST_BYTES : 0)
      const len = uvarint(signedLength)
      lens.push(len)
      offsets[i] = total
      total += (job.kind === VERIFY || job.kind === VERIFY_DIGEST ? PUBLIC_KEY_BYTES + SIGNATURE_BYTES : 0) + job.scheme.prefix.length + len.length + signedLength + (job.body?.length ?? 0)
    }
    offsets[n] = total
    // the signed data is written straight into the batch buffer: one copy, then transferred
    const buf = new Uint8Array(total)
    for (let i = 0; i < n; i++) {
      const job = jobs[i] as Job
      let at = offsets[i] as number
      kinds[i] = job.kind
      keys[i] = job.keyId
      if (job.kind === VERIFY || job.kind === VERIFY_DIGEST) {
        buf.set(job.publicKey as Uint8Array, at)
        buf.set(job.signature as Uint8Array, at + PUBLIC_KEY_BYTES)
        at += PUBLIC_KEY_BYTES + SIGNATURE_BYTES
      }
      buf.set(job.scheme.prefix, at)
      at += job.scheme.prefix.length
      buf.set(lens[i] as number[], at)
      at += (lens[i] as number[]).length
      buf.set(job.payload, at)
      at += job.payload.length
      if (job.body !== undefined) {
        buf[at] = BODY_TAG
        buf[at + 1] = BODY_DIGEST_BYTES
        buf.set(job.body, at + 2 + BODY_DIGEST_BYTES)
        bodies[i] = job.body.length
      }
    }
    const batch: Batch = { id: this.nextBatchId++, jobs }
    if (w.outstanding.length === 0) w.worker.ref()
    w.outstanding.push(batch)
    this.stats.batches++
    this.stats.offloaded += n
    w.worker.postMessage({ type: 'batch', id: batch.id, kinds, keys, bodies, offsets, buf: buf.buffer }, [kinds.buffer, keys.buffer, bodies.buffer, offsets.buffer, buf.buffer])
  }

  private settle (w: PoolWorker, msg: { id: number, ok: Uint8Array, sigs: Uint8Array }): void {
    const at = w.outstanding.findIndex(b => b.id === msg.id)
    if (at === -1) return
    const [batch] = w.outstanding.splice(at, 1) as [Batch]
    if (w.outstanding.length === 0) w.worker.unref()
    batch.jobs.forEach((job, i) => {
      if (job.kind === VERIFY || job.kind === VERIFY_DIGEST) {
        job.resolve(msg.ok[i] === 1)
      } else if (msg.ok[i] === 1) {
        job.resolve(msg.sigs.slice(i * SIGNATURE_BYTES, (i + 1) * SIGNATURE_BYTES))
      } else {
        // the worker could not sign (e.g. it never got the key): sign here
        this.runInline([job])
      }
    })
    this.flush()
  }

  /** A worker is gone: compute its unanswered jobs inline (the same answers). */
  private failOver (w: PoolWorker): void {
    for (const batch of w.outstanding.splice(0)) {
      this.stats.offloaded -= batch.jobs.length
      this.runInline(batch.jobs)
    }
  }

  private runInline (jobs: Job[]): void {
    for (const job of jobs) {
      this.stats.inline++
      const data = signedData(job.body === undefined ? job.payload : withBodyDigest(job.payload, job.body), job.scheme)
      if (job.kind === VERIFY || job.kind === VERIFY_DIGEST) {
        job.resolve(verifyRaw(job.publicKey as Uint8Array, data, job.signature as Uint8Array))
      } else {
        const sig = signOnce(job.key as KeyObject, data)
        job.resolve(sig)
      }
    }
  }
}

function signOnce (key: KeyObject, data: Uint8Array): Uint8Array {
  const sig = cryptoSign(null, data, key)
  return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength)
}

/** Make a {@link CryptoPool}; call `start()` to run its workers. */
export function createCryptoPool (init: CryptoPoolInit = {}): CryptoPool {
  return new CryptoPool(init)
}
