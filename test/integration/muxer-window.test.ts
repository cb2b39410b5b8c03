/**
 * The node's stream muxer (src/node/muxer.ts): yamux whose quiet streams
 * send a WindowUpdate once more than 16 KiB of their receive window is
 * consumed, not after every data frame, while a stream that receives fast
 * (a burst, a bulk transfer) gets yamux's updates and window growth. Real
 * libp2p nodes on 127.0.0.1 (TCP, Noise); frames counted at each muxer's
 * `sendFrame`.
 */

import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { agentnetMuxer } from '../../src/node/index.ts'
import type { Libp2p, Stream, StreamMuxerFactory } from '@libp2p/interface'

const ECHO = '/test/echo/1.0.0'
const SINK = '/test/sink/1.0.0'
/** yamux frame type of a WindowUpdate */
const WINDOW_UPDATE = 1

interface Counted { node: Libp2p, windowUpdates: () => number, largestUpdate: () => number }

/**
 * A node whose muxer counts the WindowUpdate frames it sends (flags-only
 * frames of a new or closing stream excluded). With `rttMs` the muxer starts
 * with that round-trip time, as if its first keep-alive ping had measured it
 * (run with keep-alive off, so that no ping on loopback overwrites it).
 */
async function start (muxer: () => StreamMuxerFactory, rttMs?: number): Promise<Counted> {
  let updates = 0
  let largest = 0
  const counting = (): StreamMuxerFactory => {
    const factory = muxer()
    const wrapped: StreamMuxerFactory = Object.create(factory)
    wrapped.createStreamMuxer = (maConn) => {
      const m = factory.createStreamMuxer(maConn) as unknown as { rtt: number, sendFrame: (header: { type: number, flag: number, length: number }, ...rest: unknown[]) => boolean }
      if (rttMs !== undefined) m.rtt = rttMs
      const send = m.sendFrame.bind(m)
      m.sendFrame = (header, ...rest) => {
        if (header.type === WINDOW_UPDATE && header.flag === 0 && header.length > 0) {
          updates++
          largest = Math.max(largest, header.length)
        }
        return send(header, ...rest)
      }
      return m as unknown as ReturnType<StreamMuxerFactory['createStreamMuxer']>
    }
    return wrapped
  }
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [counting]
  })
  await node.handle(ECHO, (stream: Stream) => { stream.addEventListener('message', (evt) => { stream.send(evt.data) }) })
  await node.handle(SINK, async (stream: Stream) => {
    // a slow reader: yamux pauses, the sender runs out of window, the reader resumes
    const hash = createHash('sha256')
    let n = 0
    for await (const chunk of stream) {
      hash.update(chunk.subarray())
      if (++n % 16 === 0) await new Promise(resolve => setTimeout(resolve, 1))
    }
    stream.send(hash.digest())
    await stream.close()
  })
  return { node, windowUpdates: () => updates, largestUpdate: () => largest }
}

/** `count` sequential 64-byte round trips on one stream */
async function pingPong (from: Libp2p, to: Libp2p, count: number): Promise<void> {
  const stream = await from.dialProtocol(to.getMultiaddrs(), ECHO)
  const body = new Uint8Array(64).fill(7)
  for (let i = 0; i < count; i++) {
    const { promise, resolve } = Promise.withResolvers<void>()
    let got = 0
    const onMessage = (evt: { data: { byteLength: number } }): void => { got += evt.data.byteLength; if (got >= body.length) resolve() }
    stream.addEventListener('message', onMessage)
    stream.send(body)
    await promise
    stream.removeEventListener('message', onMessage)
  }
  await stream.close()
}

/** Send `bytes` on one stream to the slow sink; resolves with the SHA-256 it read */
async function bulk (from: Libp2p, to: Libp2p, bytes: Uint8Array): Promise<Uint8Array> {
  const stream = await from.dialProtocol(to.getMultiaddrs(), SINK)
  const digest = new Promise<Uint8Array>((resolve) => { stream.addEventListener('message', (evt) => { resolve(evt.data.subarray()) }) })
  for (let i = 0; i < bytes.length; i += 16_384) {
    if (!stream.send(bytes.subarray(i, i + 16_384))) await stream.onDrain({ signal: AbortSignal.timeout(30_000) })
  }
  // close = no more writes (the sink reads to the end, then answers)
  await stream.close({ signal: AbortSignal.timeout(30_000) })
  return digest
}

describe('node muxer: a WindowUpdate per 16 KiB received', () => {
  const nodes: Libp2p[] = []
  after(async () => { for (const n of nodes) await n.stop() })

  it('1,000 small round trips on a quiet stream: a handful of WindowUpdates, where yamux alone sends one per frame', async () => {
    // without keep-alive pings yamux knows no round-trip time and never grows a window, so every frame here counts
    // as quiet: the round trips come back to back, which with a measured RTT would be "receiving fast"
    const a = await start(agentnetMuxer({ enableKeepAlive: false }))
    const b = await start(agentnetMuxer({ enableKeepAlive: false }))
    const c = await start(yamux({ enableKeepAlive: false }))
    const d = await start(yamux({ enableKeepAlive: false }))
    nodes.push(a.node, b.node, c.node, d.node)
    await pingPong(a.node, b.node, 1000)
    // 64,000 bytes each way: at most 64,000 / 16,384 updates a side
    assert.ok(a.windowUpdates() <= 4 && b.windowUpdates() <= 4, `agentnet muxer sent ${a.windowUpdates()} + ${b.windowUpdates()} WindowUpdates`)
    await pingPong(c.node, d.node, 1000)
    assert.ok(c.windowUpdates() >= 1000 && d.windowUpdates() >= 1000, `bare yamux sent ${c.windowUpdates()} + ${d.windowUpdates()}`)
  })

  it('1,000 round trips back to back with a measured RTT: the window grows to its largest, then a WindowUpdate per 16 KiB, where yamux sends one per frame', async () => {
    // a 10 ms round trip (a peer across a LAN or WAN): every frame here comes within four round trips of the last,
    // so yamux counts the stream as receiving fast; once the window is at 16 MiB an update grows nothing
    const a = await start(agentnetMuxer({ enableKeepAlive: false }), 10)
    const b = await start(agentnetMuxer({ enableKeepAlive: false }), 10)
    const c = await start(yamux({ enableKeepAlive: false }), 10)
    const d = await start(yamux({ enableKeepAlive: false }), 10)
    nodes.push(a.node, b.node, c.node, d.node)
    await pingPong(a.node, b.node, 1000)
    // 256 KiB → 16 MiB is 6 doublings, then 64,000 bytes / 16 KiB: at most ~10 a side
    assert.ok(a.windowUpdates() <= 12 && b.windowUpdates() <= 12, `agentnet muxer sent ${a.windowUpdates()} + ${b.windowUpdates()} WindowUpdates`)
    assert.ok(b.largestUpdate() > 4 * 1024 * 1024, `the window grew first: largest grant ${b.largestUpdate()} bytes`)
    await pingPong(c.node, d.node, 1000)
    assert.ok(c.windowUpdates() >= 1000 && d.windowUpdates() >= 1000, `bare yamux sent ${c.windowUpdates()} + ${d.windowUpdates()}`)
  })

  it('8 MiB to a slow reader, both ways between the node muxer and bare yamux: every byte arrives, nothing stalls', async () => {
    const a = await start(agentnetMuxer())
    const c = await start(yamux())
    nodes.push(a.node, c.node)
    const data = randomBytes(8 * 1024 * 1024)
    const expected = createHash('sha256').update(data).digest()
    assert.deepEqual(Buffer.from(await bulk(c.node, a.node, data)), expected, 'bare yamux → node muxer')
    assert.deepEqual(Buffer.from(await bulk(a.node, c.node, data)), expected, 'node muxer → bare yamux')
    // the window grew past yamux's initial 256 KiB, as it does under yamux: a grant larger than the initial window
    assert.ok(a.largestUpdate() > 256 * 1024, `largest grant ${a.largestUpdate()} bytes`)
  })

  it('a 3 MB burst of 500-byte frames written at once: the window grows as under yamux, every byte arrives', async () => {
    const a = await start(agentnetMuxer())
    const c = await start(yamux())
    nodes.push(a.node, c.node)
    const frames = Array.from({ length: 6000 }, (_, i) => randomBytes(500).fill(i % 251, 0, 1))
    const data = Buffer.concat(frames)
    const stream = await c.node.dialProtocol(a.node.getMultiaddrs(), SINK)
    const digest = new Promise<Uint8Array>((resolve) => { stream.addEventListener('message', (evt) => { resolve(evt.data.subarray()) }) })
    // all written in one go: the sender is held back only by the receive window
    for (const f of frames) stream.send(f)
    await stream.close({ signal: AbortSignal.timeout(30_000) })
    assert.deepEqual(Buffer.from(await digest), createHash('sha256').update(data).digest())
    assert.ok(a.largestUpdate() > 256 * 1024, `the window grew under the burst: largest grant ${a.largestUpdate()} bytes`)
  })
})
