/**
 * One connected IPC client: what the node writes to it, coalesced per tick
 * into one `writev`, with backpressure both ways.
 */

import { EventEmitter } from 'node:events'
import { corkForTick, encodeFrame } from './frames.ts'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'

/** Features a client may ask for with `ipc.hello` */
export const IPC_FEATURES = ['binary'] as const
export type IpcFeature = typeof IPC_FEATURES[number]

export interface IpcSessionEvents {
  close: []
  /** The queued output shrank (written to the kernel); waiting senders may retry */
  drain: []
}

/** One connected local client */
export interface IpcSession {
  readonly id: number
  /**
   * Send a JSON-RPC notification; with `body`, as a binary frame (only when
   * {@link binary}). False if the client is gone.
   */
  notify: (method: string, params: unknown, body?: Uint8Array) => boolean
  /** Emits `close` once when the client disconnects, `drain` when its queued output shrank */
  readonly events: EventEmitter<IpcSessionEvents>
  readonly closed: boolean
  /** The client negotiated raw body frames (`ipc.hello {features: ["binary"]}`) */
  readonly binary: boolean
  /** Bytes written to this client and not yet taken by the kernel */
  readonly queuedBytes: number
  /** Bytes the kernel has taken from this client's queue so far (a reading client makes this grow) */
  readonly drainedBytes: number
}

export interface SessionLimits {
  /** Past this much queued output the node stops reading the client's requests until it drains */
  writeHighWaterBytes: number
  /** Past this much queued output a client that reads nothing for `stallMs` is disconnected, with a log line */
  dropQueuedBytes: number
  stallMs: number
}

export class Session implements IpcSession {
  readonly id: number
  readonly events = new EventEmitter<IpcSessionEvents>()
  readonly controller = new AbortController()
  closed = false
  binary = false
  private readonly socket: Socket
  private readonly limits: SessionLimits
  private readonly logger: Logger | undefined
  private inputPaused = false
  private written = 0
  private pollTimer: ReturnType<typeof setInterval> | undefined
  private overSince: number | undefined
  private drainedAtOver = 0

  constructor (id: number, socket: Socket, limits: SessionLimits, logger?: Logger) {
    this.id = id
    this.socket = socket
    this.limits = limits
    this.logger = logger
    socket.on('drain', () => { this.onDrain() })
  }

  get queuedBytes (): number {
    return this.closed ? 0 : this.socket.writableLength
  }

  get drainedBytes (): number {
    return this.written - this.queuedBytes
  }

  /** Queue one frame; flushed with the tick's other frames in one `writev` */
  send (header: Record<string, unknown>, body?: Uint8Array): boolean {
    if (this.closed || this.socket.destroyed) {
      return false
    }
    if (this.socket.writableLength > this.limits.dropQueuedBytes && this.stalled()) {
      // admission (LocalServices) keeps deliveries under their bound; only a client that
      // keeps asking and stopped reading gets here. Said loudly, never silently.
      this.logger?.error({ session: this.id, queuedBytes: this.socket.writableLength }, 'ipc client does not read its socket: disconnected')
      this.socket.destroy()
      return false
    }
    corkForTick(this.socket)
    let ok = true
    for (const chunk of encodeFrame(header, body).chunks) {
      ok = this.socket.write(chunk)
      this.written += chunk.byteLength
    }
    if (!ok && !this.inputPaused) {
      // stop taking this client's requests until what we owe it has drained to half
      this.inputPaused = true
      this.socket.pause()
    }
    if (this.inputPaused || this.events.listenerCount('drain') > 0) this.watchQueue()
    return true
  }

  /**
   * Over the drop bound: a client that still reads (the kernel took bytes
   * since we went over) is only slow and is kept; one that took nothing for
   * `stallMs`, or is 4× over, is not reading.
   */
  private stalled (): boolean {
    const now = Date.now()
    const drained = this.drainedBytes
    if (this.overSince === undefined || drained > this.drainedAtOver) {
      this.overSince = now
      this.drainedAtOver = drained
    }
    return now - this.overSince > this.limits.stallMs || this.socket.writableLength > 4 * this.limits.dropQueuedBytes
  }

  notify (method: string, params: unknown, body?: Uint8Array): boolean {
    return this.send({ jsonrpc: '2.0', method, params }, this.binary ? body : undefined)
  }

  /**
   * While input is paused or someone waits for room, look at the queue every
   * few ms: the socket's `drain` only fires once it is empty, and waiting for
   * that would stall a client that reads steadily.
   */
  private watchQueue (): void {
    if (this.pollTimer !== undefined) return
    let last = this.socket.writableLength
    this.pollTimer = setInterval(() => {
      const now = this.queuedBytes
      if (this.inputPaused && now <= this.limits.writeHighWaterBytes / 2) this.resumeInput()
      if (now < last) this.events.emit('drain')
      last = now
      if (this.closed || (!this.inputPaused && this.events.listenerCount('drain') === 0)) {
        clearInterval(this.pollTimer)
        this.pollTimer = undefined
      }
    }, 10)
    this.pollTimer.unref()
  }

  private onDrain (): void {
    this.resumeInput()
    this.events.emit('drain')
  }

  private resumeInput (): void {
    if (this.inputPaused && !this.closed) {
      this.inputPaused = false
      this.socket.resume()
    }
  }

  markClosed (): void {
    if (this.closed) {
      return
    }
    this.closed = true
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer)
    this.controller.abort(new Error('IPC client disconnected'))
    this.events.emit('close')
  }
}
