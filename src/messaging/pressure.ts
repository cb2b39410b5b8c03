/**
 * Strangers cannot starve trusted peers. Frames from peers that are not
 * preferred (trusted or infrastructure, as the composition root decides) are
 * not verified as they arrive: they wait in one bounded queue that is worked
 * off in slices of at most {@link SLICE_MS} per event-loop turn, so frames from
 * trusted peers (verified at once, between the slices) never wait behind a
 * flood. A full queue refuses with `Busy`. Requests a stranger has in flight
 * (handed to a service, not yet answered) are bounded per peer in count and
 * bytes, so large bodies from a few identities cannot fill the memory.
 */
import type { Channel } from './channel.ts'

/** Time one slice of queued untrusted frames may take, ms */
const SLICE_MS = 4
/** Untrusted frames waiting at most, all peers together */
const MAX_QUEUED_FRAMES = 4096
/** Bytes of untrusted frames waiting at most, all peers together */
const MAX_QUEUED_BYTES = 32 * 1024 * 1024
export interface PressureInit {
  /** Bytes of request bodies one untrusted peer may have in flight */
  untrustedInFlightBytes: number
  /** Requests one untrusted peer may have in flight */
  untrustedInFlightRequests: number
}

export class InboundPressure {
  private readonly init: PressureInit
  private readonly handle: (channel: Channel, frame: Uint8Array) => void
  private readonly queue: Array<{ channel: Channel, frame: Uint8Array }> = []
  private head = 0
  private queuedBytes = 0
  private scheduled = false
  private readonly inFlight = new Map<string, { count: number, bytes: number }>()

  constructor (init: PressureInit, handle: (channel: Channel, frame: Uint8Array) => void) {
    this.init = init
    this.handle = handle
  }

  /** Frames queued now (for tests and metrics) */
  get queued (): number {
    return this.queue.length - this.head
  }

  /** Queue an untrusted peer's frame; `false` when the queue is full (answer `Busy`) */
  defer (channel: Channel, frame: Uint8Array): boolean {
    if (this.queued >= MAX_QUEUED_FRAMES || this.queuedBytes + frame.byteLength > MAX_QUEUED_BYTES) {
      return false
    }
    this.queue.push({ channel, frame })
    this.queuedBytes += frame.byteLength
    if (!this.scheduled) {
      this.scheduled = true
      setImmediate(this.drain)
    }
    return true
  }

  private readonly drain = (): void => {
    this.scheduled = false
    const until = performance.now() + SLICE_MS
    while (this.head < this.queue.length && performance.now() < until) {
      const item = this.queue[this.head] as { channel: Channel, frame: Uint8Array }
      this.queue[this.head] = undefined as unknown as { channel: Channel, frame: Uint8Array }
      this.head++
      this.queuedBytes -= item.frame.byteLength
      if (!item.channel.closed) this.handle(item.channel, item.frame)
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    if (this.head < this.queue.length && !this.scheduled) {
      this.scheduled = true
      setImmediate(this.drain)
    }
  }

  /** Take an untrusted peer's in-flight slot for a request of `bytes`; `false` when it has too much in flight */
  take (peer: string, bytes: number): boolean {
    const used = this.inFlight.get(peer) ?? { count: 0, bytes: 0 }
    if (used.count >= this.init.untrustedInFlightRequests || (used.count > 0 && used.bytes + bytes > this.init.untrustedInFlightBytes)) {
      return false
    }
    used.count++
    used.bytes += bytes
    this.inFlight.set(peer, used)
    return true
  }

  release (peer: string, bytes: number): void {
    const used = this.inFlight.get(peer)
    if (used == null) return
    used.count--
    used.bytes -= bytes
    if (used.count <= 0) this.inFlight.delete(peer)
  }

  clear (): void {
    this.queue.length = 0
    this.head = 0
    this.queuedBytes = 0
    this.inFlight.clear()
  }
}
