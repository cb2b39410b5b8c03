/**
 * One msg stream with one peer: varint-framed frames written in order (batched
 * per tick, with backpressure), read by one loop in the messaging service; and
 * the unsigned transport acknowledgement frame, which shares the framing.
 */
import { BusyError, MessagingError } from './errors.ts'
import { encodeFrameParts, LARGE_FRAME_BYTES } from './frames.ts'
import { Uint8ArrayList } from 'uint8arraylist'
import type { PeerId, Stream } from '@libp2p/interface'

/** Tag byte of an unsigned transport acknowledgement frame: field 3, length-delimited */
const ACK_TAG = 0x1a
/** Room for everything in a frame that is not the body */
export const FRAME_OVERHEAD_BYTES = 16 * 1024

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** A msg stream with one peer: varint-framed, written in order, read by one loop */
export class Channel {
  readonly stream: Stream
  readonly remotePeer: PeerId
  readonly remote: string
  closed = false
  /** runs over a relayed (limited) connection: replaced once a direct one opens */
  limited = false
  /** requests received on this stream and not yet answered */
  inFlight = 0
  /** the peer closed its writing side */
  remoteDone = false
  /**
   * The last received frame's handling: verification may end on a worker
   * thread, and frames are still handled in the order they arrived
   */
  handled: Promise<void> = Promise.resolve()

  /** Close our side once nothing more can arrive or leave */
  finish (): void {
    this.closed = true
    this.wakeRoomWaiters()
    void this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
  }

  /** A reply was written: close when the peer is done and nothing is left */
  settled (): void {
    this.inFlight--
    if (this.remoteDone && this.inFlight === 0) {
      this.finish()
    }
  }

  constructor (stream: Stream, remotePeer: PeerId) {
    this.stream = stream
    this.remotePeer = remotePeer
    this.remote = remotePeer.toString()
  }

  private queue: Uint8Array[] = []
  private queuedBytes = 0
  /** a frame went out in this turn of the event loop: gather any more until the turn ends */
  private burst = false
  private draining = false
  private nextFlush = Channel.flushPromise()

  private static flushPromise (): PromiseWithResolvers<void> {
    const flush = Promise.withResolvers<void>()
    // nobody may be waiting on a given flush; its failure surfaces on the next write
    flush.promise.catch(() => {})
    return flush
  }

  /**
   * Queue a frame. A lone frame goes out at once (latency); the frames that
   * follow it in the same turn of the event loop are gathered and go out
   * together when the turn ends (at most {@link MAX_BATCH_FRAMES} at a time):
   * one yamux frame, one Noise encryption and one socket write for a burst
   * instead of one each. A burst is, for example, the acks of one read's worth
   * of one-way messages: each is written from its own microtask, so gathering
   * per microtask sent them one by one. Resolves once the frame is handed to
   * the stream.
   *
   * When more than {@link MAX_QUEUED_BYTES} wait unsent (the peer or the
   * network is slower than the writers), the write waits for room for up to
   * `waitMs` (backpressure: a request stays pending, a reply is late, not
   * lost), then fails with `Busy`.
   */
  async write (frame: Uint8Array, waitMs = 0): Promise<void> {
    // the clock is read only when the queue is full: not on every message
    let until: number | undefined
    while (true) {
      if (this.closed || this.stream.writeStatus !== 'writable') {
        this.closed = true
        throw new MessagingError('StreamClosed', 'stream to peer closed')
      }
      if (this.queuedBytes <= MAX_QUEUED_BYTES) break
      until ??= Date.now() + waitMs
      await this.room(until - Date.now())
    }
    for (const part of encodeFrameParts(frame)) {
      this.queue.push(part)
      this.queuedBytes += part.byteLength
    }
    const flushed = this.nextFlush.promise
    if (!this.draining) {
      if (!this.burst) {
        this.flush()
        this.burst = true
        setImmediate(this.endBurst)
      } else if (this.queue.length >= MAX_BATCH_FRAMES) {
        this.flush()
      }
    }
    await flushed
  }

  private roomWaiters: Array<PromiseWithResolvers<void>> = []

  /**
   * Resolves once the unsent bytes fall to the bound (or the channel closes);
   * rejects with `Busy` after `ms`. A timer only on this slow path: a write
   * with room creates none.
   */
  private async room (ms: number): Promise<void> {
    if (ms <= 0) throw new BusyError('too much unsent data queued for this peer')
    const waiter = Promise.withResolvers<void>()
    this.roomWaiters.push(waiter)
    const timer = setTimeout(() => { waiter.reject(new BusyError(`too much unsent data queued for this peer for ${ms} ms`)) }, ms)
    try {
      await waiter.promise
    } finally {
      clearTimeout(timer)
      this.roomWaiters = this.roomWaiters.filter(w => w !== waiter)
    }
  }

  private wakeRoomWaiters (): void {
    if (this.roomWaiters.length === 0 || (this.queuedBytes > MAX_QUEUED_BYTES && !this.closed)) return
    const waiters = this.roomWaiters
    this.roomWaiters = []
    for (const w of waiters) w.resolve()
  }

  private readonly endBurst = (): void => {
    this.burst = false
    this.flush()
  }

  private flush (): void {
    if (this.draining || this.queue.length === 0) {
      return
    }
    const done = this.nextFlush
    this.nextFlush = Channel.flushPromise()
    try {
      let writable = true
      while (this.queue.length > 0 && writable) {
        const batch = this.queue.splice(0, MAX_BATCH_FRAMES)
        let total = 0
        for (const f of batch) total += f.byteLength
        this.queuedBytes -= total
        // a large batch goes out as a list (its large frames are not copied again), a small one joined
        const buf = batch.length === 1 ? batch[0] as Uint8Array : total >= LARGE_FRAME_BYTES ? new Uint8ArrayList(...batch) : concatFrames(batch, total)
        writable = this.stream.send(buf)
      }
      done.resolve()
      this.wakeRoomWaiters()
      if (!writable) {
        // backpressure: hold the rest until the stream drains
        this.draining = true
        this.stream.onDrain({ signal: AbortSignal.timeout(30_000) }).then(() => {
          this.draining = false
          this.flush()
        }, (err: Error) => { this.fail(err) })
      }
    } catch (err) {
      done.reject(err)
      this.fail(err as Error)
    }
  }

  private fail (err: Error): void {
    // a dead stream must not be handed out again: the next attempt opens a new one
    this.closed = true
    this.draining = false
    this.queue = []
    this.queuedBytes = 0
    this.nextFlush.reject(err)
    this.nextFlush = Channel.flushPromise()
    // the waiters see the channel closed and fail with StreamClosed
    this.wakeRoomWaiters()
  }
}

/**
 * How long a reply or an ack waits for room in a full queue to the peer
 * before it is given up (the stream's drain timeout is as long): dropped, the
 * requester would wait out its attempt and send again
 */
export const ANSWER_WRITE_WAIT_MS = 30_000

/** Frames joined into one `stream.send` at most */
const MAX_BATCH_FRAMES = 32
/** Unsent bytes one channel may hold before writes are refused with `Busy` */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024

function concatFrames (frames: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let offset = 0
  for (const f of frames) {
    out.set(f, offset)
    offset += f.byteLength
  }
  return out
}

export function encodeAck (id: string): Uint8Array {
  const idBytes = encoder.encode(id)
  // field 3 (length-delimited), varint length (< 128 for any sane id), bytes
  if (idBytes.length > 127) {
    throw new MessagingError('InvalidId', 'request id too long')
  }
  const out = new Uint8Array(2 + idBytes.length)
  out[0] = ACK_TAG
  out[1] = idBytes.length
  out.set(idBytes, 2)
  return out
}

export function decodeAck (frame: Uint8Array): string | undefined {
  if (frame.length < 2 || frame[0] !== ACK_TAG || frame[1] !== frame.length - 2) {
    return undefined
  }
  return decoder.decode(frame.subarray(2))
}

/**
 * `promise`, or `onTimeout()` thrown after `ms`, or the signal's reason once
 * it aborts; the timer and the listener are removed either way. One timer and
 * one promise per call: this runs for every message sent, where an
 * AbortController, a combined signal and their listeners per message were a
 * measurable share of the sender's CPU and garbage.
 */
export async function raceDeadline<T> (promise: Promise<T>, ms: number, onTimeout: () => Error, signal?: AbortSignal): Promise<T> {
  signal?.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => { done(); reject(signal?.reason) }
    const timer = setTimeout(() => { done(); reject(onTimeout()) }, ms)
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    promise.then(value => { done(); resolve(value) }, (err: unknown) => { done(); reject(err) })
  })
}

