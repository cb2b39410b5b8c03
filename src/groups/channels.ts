/**
 * Long-lived streams of `/agentnet/mls/2.0.0`: one outbound stream per peer
 * carries every request this node sends it, each answered on the same stream
 * (matched by the reply's `in_reply_to`); the peer's own requests come on
 * its own stream. A stream per frame cost a yamux open, a protocol header
 * and a close per frame: a commit to 100 members paid that 100 times.
 *
 * Frames are varint-length-prefixed (the messaging service's codec):
 * requests are signed envelopes, replies unsigned (`wire.ts`), so a stream that carries a single frame (an older peer,
 * `sendRawFrame` in tests) is read the same way. Requests on one inbound
 * stream are served concurrently: a slow request (an add that waits for a
 * whole commit round) does not hold up the heartbeats behind it.
 *
 * @module
 */

import { encodeFrame, FrameDecoder } from '../messaging/index.ts'
import { MAX_FRAME_BYTES, MLS_PROTOCOL } from './constants.ts'
import { PeerUnreachableError } from './errors.ts'
import type { GroupsLibp2p } from './wire.ts'
import type { PeerId, Stream } from '@libp2p/interface'

/** Unanswered requests one inbound stream may carry before it is cut (the rate limiter bounds the rate). */
export const MAX_IN_FLIGHT = 1024

/** One stream with one peer: frames out in order, frames in through `onFrame`. */
export class Channel {
  readonly stream: Stream
  readonly peer: string
  closed = false
  inFlight = 0
  remoteDone = false
  private readonly decoder = new FrameDecoder(MAX_FRAME_BYTES)
  private drained: Promise<void> = Promise.resolve()

  constructor (stream: Stream, peer: string, onFrame: (frame: Uint8Array) => void, onClose: (err?: Error) => void) {
    this.stream = stream
    this.peer = peer
    stream.addEventListener('message', (evt) => {
      let frames: Uint8Array[]
      try {
        frames = this.decoder.push(evt.data)
      } catch (err) {
        this.abort(err as Error)
        return
      }
      for (const f of frames) onFrame(f)
    })
    stream.addEventListener('remoteCloseWrite', () => {
      this.remoteDone = true
      if (this.inFlight === 0) this.finish()
    })
    stream.addEventListener('close', (evt) => {
      this.closed = true
      onClose((evt as { error?: Error }).error)
    })
  }

  /** Write one frame; waits only when the stream pushes back. */
  async write (frame: Uint8Array, signal?: AbortSignal): Promise<void> {
    await this.drained
    if (this.closed || this.stream.writeStatus !== 'writable') throw new PeerUnreachableError(`stream to ${this.peer} closed`)
    if (!this.stream.send(encodeFrame(frame))) {
      this.drained = this.stream.onDrain({ signal: signal ?? AbortSignal.timeout(30_000) }).catch((err: Error) => { this.abort(err) })
    }
  }

  /** A served request was answered: close once the peer is done and nothing is left. */
  settled (): void {
    this.inFlight--
    if (this.remoteDone && this.inFlight === 0) this.finish()
  }

  finish (): void {
    this.closed = true
    void this.stream.close().catch(() => { this.stream.abort(new Error('close failed')) })
  }

  abort (err: Error): void {
    this.closed = true
    this.stream.abort(err)
  }
}

interface Pending<T> { peer: string, channel: Channel, resolve: (reply: T) => void, reject: (err: Error) => void }

/** The outbound side: a stream per peer, opened on first use and again after it closes. */
export class Channels<T> {
  private readonly libp2p: GroupsLibp2p
  private readonly out = new Map<string, Promise<Channel>>()
  private readonly pending = new Map<string, Pending<T>>()
  /** Decodes a reply and names the request it answers (replies are unsigned: one counts only on the Noise stream its request went out on); throws on a malformed frame. */
  private readonly decodeReply: (frame: Uint8Array) => { inReplyTo: string, reply: T }

  constructor (libp2p: GroupsLibp2p, decodeReply: (frame: Uint8Array) => { inReplyTo: string, reply: T }) {
    this.libp2p = libp2p
    this.decodeReply = decodeReply
  }

  /** Send request `id` to `peer` and resolve with its opened reply. */
  async request (peer: PeerId, bytes: Uint8Array, id: string, signal: AbortSignal): Promise<T> {
    const key = peer.toString()
    const unanswered = (): Error => new PeerUnreachableError(`no answer from ${key}: ${String((signal.reason as Error | undefined)?.message ?? signal.reason)}`)
    if (signal.aborted) throw unanswered()
    const channel = await this.channelTo(peer, signal)
    if (signal.aborted) throw unanswered()
    const { promise, resolve, reject } = Promise.withResolvers<T>()
    this.pending.set(id, { peer: key, channel, resolve, reject })
    const onAbort = (): void => { reject(unanswered()) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await channel.write(bytes, signal)
      return await promise
    } finally {
      signal.removeEventListener('abort', onAbort)
      this.pending.delete(id)
    }
  }

  /** Abort every stream (the service stops). */
  close (err: Error): void {
    for (const c of this.out.values()) void c.then(ch => { ch.abort(err) }, () => {})
    this.out.clear()
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }

  private async channelTo (peer: PeerId, signal: AbortSignal): Promise<Channel> {
    const key = peer.toString()
    let opening = this.out.get(key)
    if (opening === undefined) {
      opening = this.open(peer, signal)
      this.out.set(key, opening)
      opening.catch(() => { if (this.out.get(key) === opening) this.out.delete(key) })
    }
    const channel = await opening
    if (channel.closed) {
      if (this.out.get(key) === opening) this.out.delete(key)
      return this.channelTo(peer, signal)
    }
    return channel
  }

  private async open (peer: PeerId, signal: AbortSignal): Promise<Channel> {
    const key = peer.toString()
    let stream: Stream
    try {
      // the protocol name goes out with the first frame (no negotiation round trip)
      stream = await this.libp2p.dialProtocol(peer, MLS_PROTOCOL, { signal, negotiateFully: false })
    } catch (err) {
      throw new PeerUnreachableError(`cannot reach ${key}: ${(err as Error).message}`)
    }
    const channel: Channel = new Channel(stream, key, (frame) => {
      let opened: { inReplyTo: string, reply: T }
      try {
        opened = this.decodeReply(frame)
      } catch (err) {
        // a malformed reply: this stream cannot be trusted to answer anything
        channel.abort(err as Error)
        return
      }
      const p = this.pending.get(opened.inReplyTo)
      // only a request sent on this stream: the reply is unsigned, and this stream is what vouches for it
      if (p?.channel === channel) p.resolve(opened.reply)
    }, (err) => {
      const current = this.out.get(key)
      void current?.then(c => { if (c === channel && this.out.get(key) === current) this.out.delete(key) }, () => {})
      for (const [id, p] of this.pending) {
        if (p.channel !== channel) continue
        this.pending.delete(id)
        p.reject(new PeerUnreachableError(`stream to ${key} closed${err !== undefined ? `: ${err.message}` : ''}`))
      }
    })
    return channel
  }
}
