/**
 * The stream muxer of every agentnet node: @libp2p/yamux, with one change to
 * when a stream grants its peer more receive window.
 *
 * @libp2p/yamux 8 sends a WindowUpdate frame after every data frame a stream
 * receives. On the request/response streams agentnet keeps open (messaging,
 * groups, IPC relays), a request and its reply so cost four frames instead of
 * two: each one a Noise encryption, two socket writes, a read and a wake-up
 * of the other side. Here a stream sends its WindowUpdate once half of its
 * receive window or more is consumed, as hashicorp/yamux and rust-yamux do:
 * the peer never runs short (it can still send the other half while the
 * update travels), and yamux's own logic still runs for every update sent
 * (window growth when the window fills within four round trips), for the
 * SYN and ACK flags of a new stream, and for a paused stream.
 *
 * Measured (test/bench/messaging.bench.ts, 32 B requests between two
 * processes): the CPU per request went from 617–632 to 523–552 µs at the
 * client and from 770–780 to 660–710 µs at the server; socket writes per
 * request and side from 4 to 2.
 *
 * The change reaches into the stream's fields (`state`, `recvWindow`,
 * `recvWindowCapacity`) and the muxer's `_newStream`; if a yamux release
 * renames them, streams keep yamux's own behaviour (a WindowUpdate per frame)
 * and `test/integration/muxer-window.test.ts` fails.
 *
 * @module
 */

import { yamux } from '@libp2p/yamux'
import { StreamState } from '@libp2p/yamux/stream'
import type { StreamMuxerFactory } from '@libp2p/interface'

/** What this module reads and replaces on a yamux stream. */
interface WindowedStream {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

/** yamux whose streams send a WindowUpdate only once half their receive window is consumed. */
export function agentnetMuxer (): () => StreamMuxerFactory {
  const base = yamux()
  return () => {
    const factory = base()
    // the factory's protocol and capabilities through the prototype; only the muxer it makes changes
    const wrapped: StreamMuxerFactory = Object.create(factory)
    wrapped.createStreamMuxer = (maConn) => halfWindowUpdates(factory.createStreamMuxer(maConn))
    return wrapped
  }
}

function halfWindowUpdates<M> (muxer: M): M {
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
  if (typeof stream.sendWindowUpdate !== 'function' || typeof stream.recvWindow !== 'number' || typeof stream.recvWindowCapacity !== 'number') return
  const update = stream.sendWindowUpdate.bind(stream)
  stream.sendWindowUpdate = () => {
    // an established stream with more than half its window left needs no update yet
    if (stream.state === StreamState.Established && stream.recvWindowCapacity * 2 > stream.recvWindow) return
    update()
  }
}
