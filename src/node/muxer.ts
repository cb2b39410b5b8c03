/**
 * The stream muxer of every agentnet node: @libp2p/yamux, with one change to
 * when a stream that receives little grants its peer more receive window.
 *
 * @libp2p/yamux 8 answers every data frame a stream receives with a
 * WindowUpdate frame: one more Noise encryption and two socket writes at
 * the receiver, a read, a decryption and a wake-up at the sender. For
 * sparse traffic on a long-lived stream this doubles the frames. The worst
 * case is a group commit: the committer fans one frame out to every member,
 * each member answers on its own stream, and the committer wrote a
 * WindowUpdate for each of 99 acks while the others were still arriving
 * (~15 ms of the ~80 ms of CPU a commit to 100 members cost it).
 *
 * Here a stream skips that WindowUpdate only while all of these hold:
 * - it is established (SYN and ACK flags go out with the first frames as
 *   before, and a paused stream keeps yamux's handling);
 * - it has consumed at most {@link LAZY_WINDOW_BYTES} (16 KiB) since its last
 *   update, a sixteenth of yamux's initial 256 KiB window, so the peer always
 *   has ≥ 240 KiB of window left and no skipped update holds it back;
 * - yamux would not grow the window now. yamux doubles the window, up to
 *   its largest (16 MiB), when an update falls within four round trips of
 *   the previous one, i.e. while the stream receives fast: such a stream (a
 *   burst, a bulk transfer, requests back to back) gets every update exactly
 *   as yamux sends it until its window is at the largest.
 *
 * So streams with a frame now and then (acks, heartbeats, requests spaced by
 * more than four round trips) send one update per 16 KiB from the start, and
 * a stream that receives fast does once its window can grow no more (a
 * request stream whose requests come back to back sent an update after
 * every request: an encryption, two socket writes and a wake-up of the peer
 * per request, for a window already at 16 MiB).
 *
 * Two variants were tried and not kept. Granting the window back per half
 * window for every stream: a 3 MB burst of small frames to a loaded node then
 * saw updates far apart, its window never grew, and its frames arrived paced
 * by round trips through the busy node (`pressure.test.ts` timed out in 3 of
 * 6 runs under load). Per 16 KiB for every stream, growth or not: a stranger's
 * burst still arrived visibly slower than under yamux (fewer of its frames
 * overflowed the stranger queue), i.e. the change reached beyond sparse
 * traffic; and it took only 0.03–0.05 ms off the request RTT.
 *
 * The change reaches into the stream's fields (`state`, `recvWindow`,
 * `recvWindowCapacity`, `epochStart`, `maxStreamWindowSize`, `getRTT`) and the muxer's
 * `_newStream`; if a yamux release renames them, streams keep yamux's own
 * behaviour (a WindowUpdate per frame) and
 * `test/integration/muxer-window.test.ts` fails.
 *
 * @module
 */

import { yamux } from '@libp2p/yamux'
import { StreamState } from '@libp2p/yamux/stream'
import type { StreamMuxerFactory } from '@libp2p/interface'

/** Receive window a quiet stream may consume before it sends a WindowUpdate (yamux's initial window is 256 KiB). */
export const LAZY_WINDOW_BYTES = 16 * 1024

/** Options of {@link agentnetMuxer}; yamux's defaults otherwise. */
export interface AgentnetMuxerInit {
  /**
   * yamux's keep-alive pings, which also measure the round-trip time its
   * window growth uses (default true; tests turn it off to make every
   * stream quiet)
   */
  enableKeepAlive?: boolean
}

/** What this module reads and replaces on a yamux stream. */
interface WindowedStream {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
  epochStart: number
  maxStreamWindowSize: number
  getRTT: () => number
  sendWindowUpdate: () => void
}

/** yamux whose quiet streams send a WindowUpdate per 16 KiB received, not per frame (see the module doc); `init` goes to yamux. */
export function agentnetMuxer (init: AgentnetMuxerInit = {}): () => StreamMuxerFactory {
  const base = yamux(init)
  return () => {
    const factory = base()
    // the factory's protocol and capabilities through the prototype; only the muxer it makes changes
    const wrapped: StreamMuxerFactory = Object.create(factory)
    wrapped.createStreamMuxer = (maConn) => withLazyUpdates(factory.createStreamMuxer(maConn))
    return wrapped
  }
}

function withLazyUpdates<M> (muxer: M): M {
  const m = muxer as unknown as { _newStream?: (...args: unknown[]) => unknown }
  const newStream = m._newStream
  if (typeof newStream !== 'function') return muxer
  m._newStream = function (this: unknown, ...args: unknown[]) {
    const stream = newStream.apply(this, args)
    lazyWindowUpdates(stream as WindowedStream)
    return stream
  }
  return muxer
}

function lazyWindowUpdates (stream: WindowedStream): void {
  if (typeof stream.sendWindowUpdate !== 'function' || typeof stream.getRTT !== 'function' ||
    typeof stream.recvWindow !== 'number' || typeof stream.recvWindowCapacity !== 'number' || typeof stream.epochStart !== 'number' ||
    typeof stream.maxStreamWindowSize !== 'number') return
  const update = stream.sendWindowUpdate.bind(stream)
  stream.sendWindowUpdate = () => {
    if (stream.state === StreamState.Established && stream.recvWindow - stream.recvWindowCapacity <= LAZY_WINDOW_BYTES) {
      // yamux's growth test (stream.js, sendWindowUpdate): would this update grow the window? Not once it is at its
      // largest: a stream whose frames come within four round trips of each other would otherwise send an update per
      // frame for ever (requests back to back on a long-lived stream), each one growing nothing
      const rtt = stream.getRTT()
      const growing = rtt > -1 && Date.now() - stream.epochStart <= rtt * 4 && stream.recvWindow < stream.maxStreamWindowSize
      if (!growing) return
    }
    update()
  }
}
