/**
 * Replies on `/agentnet/mls/2.0.0` are unsigned (see `src/groups/wire.ts`):
 * what stands in for the signature is that a reply only counts on the Noise
 * stream its request went out on. Here a peer tries to answer a request that
 * went to another peer, with that request's id (the worst case: it guessed
 * the random id), and a peer sends a reply where a request belongs.
 */

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { encodeFrame, FrameDecoder } from '../../src/messaging/index.ts'
import { decodeReply, MLS_PROTOCOL, GroupsError } from '../../src/groups/index.ts'
import { Channels } from '../../src/groups/channels.ts'
import { encodeReply } from '../../src/groups/wire.ts'
import type { GroupFrame } from '../../src/groups/index.ts'
import type { Libp2p, Stream } from '@libp2p/interface'

async function bareNode (): Promise<Libp2p> {
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
  await node.start()
  return node
}

/** Serve MLS streams: `answer(frame)` returns the bytes to write back, or undefined to stay silent */
function serve (node: Libp2p, answer: (frame: Uint8Array) => Uint8Array | undefined): void {
  void node.handle(MLS_PROTOCOL, (stream: Stream) => {
    const decoder = new FrameDecoder(1024 * 1024)
    stream.addEventListener('message', (evt) => {
      for (const f of decoder.push(evt.data)) {
        const out = answer(f)
        if (out !== undefined) stream.send(encodeFrame(out))
      }
    })
  })
}

describe('groups: unsigned replies count only on their own stream', () => {
  let a: Libp2p, b: Libp2p, m: Libp2p
  before(async () => {
    [a, b, m] = await Promise.all([bareNode(), bareNode(), bareNode()])
    await a.dial(b.getMultiaddrs()[0]!)
    await a.dial(m.getMultiaddrs()[0]!)
  })
  after(async () => { await Promise.all([a, b, m].map(async n => n.stop())) })

  it('a reply from another peer naming a pending request\'s id does not answer it', async () => {
    const channels = new Channels<GroupFrame>(a, (bytes) => {
      const { inReplyTo, frame } = decodeReply(bytes)
      return { inReplyTo, reply: frame }
    })
    const toB = 'request-to-b'
    // B stays silent; M answers whatever it gets with a reply naming A's request to B
    serve(b, () => undefined)
    let mAnswered = 0
    serve(m, () => { mAnswered++; return encodeReply(toB, { groupId: new Uint8Array([9]), epoch: 7 }) })

    const signal = AbortSignal.timeout(1500)
    const pendingB = channels.request(b.peerId, Uint8Array.from([0x0a, 0]), toB, signal)
    pendingB.catch(() => {})
    const pendingM = channels.request(m.peerId, Uint8Array.from([0x0a, 0]), 'request-to-m', signal)
    pendingM.catch(() => {})
    // both end unanswered: M's reply named a request that is not on M's stream
    await assert.rejects(pendingB, (err: unknown) => err instanceof GroupsError && err.code === 'PeerUnreachable')
    await assert.rejects(pendingM, (err: unknown) => err instanceof GroupsError && err.code === 'PeerUnreachable')
    assert.equal(mAnswered, 1, 'M did answer: the reply was refused, not lost')
    channels.close(new Error('done'))
  })

  it('a malformed reply cuts the stream and fails what is pending on it at once', async () => {
    await a.unhandle(MLS_PROTOCOL).catch(() => {})
    await m.unhandle(MLS_PROTOCOL)
    // a signed-envelope-shaped frame (field 1) where a reply belongs
    serve(m, () => Uint8Array.from([0x0a, 0x01, 0x00]))
    const channels = new Channels<GroupFrame>(a, (bytes) => {
      const { inReplyTo, frame } = decodeReply(bytes)
      return { inReplyTo, reply: frame }
    })
    const started = Date.now()
    await assert.rejects(channels.request(m.peerId, Uint8Array.from([0x0a, 0]), 'r', AbortSignal.timeout(10_000)),
      (err: unknown) => err instanceof GroupsError && err.code === 'PeerUnreachable')
    assert.ok(Date.now() - started < 5000, 'failed when the stream was cut, not at the deadline')
    channels.close(new Error('done'))
  })
})
