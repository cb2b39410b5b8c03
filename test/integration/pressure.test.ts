/**
 * Strangers cannot starve trusted peers, against a real node:
 * - streams holding half-sent frames are reset once `frameTimeoutMs` passes;
 * - an untrusted peer's requests in flight are bounded in bytes (`Busy`
 *   beyond `untrustedInFlightBytes`) while a trusted peer's still get in;
 * - a burst of signed frames from a stranger waits in a bounded queue
 *   (`Busy` beyond it) and a trusted peer's request is answered before the
 *   stranger's burst is worked off.
 */

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import * as varint from 'uint8-varint'
import { loadConfig } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import { MSG_PROTOCOL, TEXT } from '../../src/messaging/index.ts'
import { Attacker, newId } from '../helpers/attacker.ts'
import type { ConfigOverrides } from '../../src/config/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'
import type { AttackStream } from '../helpers/attacker.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function until (check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

describe('pressure from untrusted peers', () => {
  const homes: string[] = []
  const nodes: AgentNode[] = []
  let target: AgentNode
  let friend: AgentNode
  let attacker: Attacker
  const gate = { open: Promise.withResolvers<void>() }
  let slowCalls = 0

  async function node (overrides: ConfigOverrides = {}): Promise<AgentNode> {
    const home = await mkdtemp(join(tmpdir(), 'agentnet-pressure-'))
    homes.push(home)
    const config = await loadConfig({ overrides: { ...overrides, listen: ['/ip4/127.0.0.1/tcp/0'] } })
    const n = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home })
    await n.start()
    nodes.push(n)
    return n
  }

  before(async () => {
    target = await node({ trust: { publicServices: ['echo', 'slow'] }, messaging: { frameTimeoutMs: 1000, untrustedInFlightBytes: 2 * 1024 * 1024 } })
    target.registerService('echo', m => ({ body: m.body, contentType: m.contentType }))
    target.registerService('slow', async m => {
      slowCalls++
      await gate.open.promise
      return { body: encoder.encode(`done ${m.body.byteLength}`), contentType: TEXT }
    })
    friend = await node()
    await friend.libp2p.dial(target.libp2p.getMultiaddrs()[0]!)
    await friend.requestTrust(target.peerId, 'friend')
    await target.trust.approve(friend.peerId.toString())
    attacker = await Attacker.create()
  })
  after(async () => {
    gate.open.resolve()
    await attacker?.stop()
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
    await Promise.allSettled(homes.map(async h => { await rm(h, { recursive: true, force: true }) }))
  })

  it('streams holding half-sent frames are reset after frameTimeoutMs; a frame completed in time is answered', async () => {
    const addr = target.libp2p.getMultiaddrs()[0]!
    const before = target.messaging.metrics.rejected.MalformedFrame ?? 0
    const held: AttackStream[] = []
    for (let i = 0; i < 20; i++) {
      const s = await attacker.open(addr)
      const prefix = varint.encode(1000)
      await s.sendRaw(Uint8Array.from([...prefix, ...new Uint8Array(10)]))
      held.push(s)
    }
    // one honest slow writer: half now, the rest well within the limit
    const slow = await attacker.open(addr)
    const id = newId('slow-writer')
    const frame = attacker.seal({ to: target.peerId, service: 'echo', kind: 'request', id, body: encoder.encode('in two halves'), contentType: TEXT })
    const encoded = Uint8Array.from([...varint.encode(frame.byteLength), ...frame])
    await slow.sendRaw(encoded.subarray(0, 40))
    await sleep(100)
    await slow.sendRaw(encoded.subarray(40))
    const reply = await slow.replyTo(id)
    assert.ok(reply.type === 'message' && reply.message.kind === 'response')

    await until(() => held.every(s => s.closed), 'the held streams to be reset')
    assert.equal((target.messaging.metrics.rejected.MalformedFrame ?? 0) - before, 20)
    assert.equal(slow.closed, false, 'the completed stream stays open')
  })

  it('an untrusted peer gets Busy beyond its in-flight byte budget; a trusted peer still gets in', async () => {
    const s = await attacker.open(target.libp2p.getMultiaddrs()[0]!)
    const big = new Uint8Array(900 * 1024).fill(7)
    const ids: string[] = []
    const frames: Uint8Array[] = []
    for (let i = 0; i < 6; i++) {
      const id = newId('big')
      ids.push(id)
      frames.push(attacker.seal({ to: target.peerId, service: 'slow', kind: 'request', id, body: big, contentType: 'application/octet-stream', ttl: 30_000 }))
    }
    const mark = s.mark()
    for (const f of frames) await s.sendFrames(f)
    // 2 MiB budget: two 900 KiB bodies in flight, the other four refused at once
    await until(() => s.received.slice(mark).filter(r => r.type === 'message' && r.error?.code === 'Busy').length === 4, 'four Busy answers')
    assert.equal(slowCalls, 2, 'two requests reached the service')
    // the trusted friend is not bounded by the strangers' budget
    const friendReply = friend.send(target.peerId, 'slow', big, 'application/octet-stream', { timeoutMs: 20_000 })
    await until(() => slowCalls === 3, 'the friend\'s request to reach the service')
    gate.open.resolve()
    assert.equal(decoder.decode((await friendReply).body), `done ${big.byteLength}`)
    await until(() => s.received.slice(mark).filter(r => r.type === 'message' && r.message.kind === 'response').length === 2, 'the two accepted requests answered')
  })

  it('a burst of signed frames from a stranger is queued (bounded: Busy beyond it); a trusted peer is answered before the burst is worked off', async () => {
    const s = await attacker.open(target.libp2p.getMultiaddrs()[0]!)
    const burst: Uint8Array[] = []
    for (let i = 0; i < 6000; i++) {
      burst.push(attacker.seal({ to: target.peerId, service: 'echo', kind: 'request', id: newId('b'), body: encoder.encode('flood'), contentType: TEXT }))
    }
    const mark = s.mark()
    await s.sendFrames(...burst)
    const answered = (): number => s.received.length - mark
    // the friend asks while the burst is being worked off
    await until(() => answered() > 0, 'the first answers to the burst')
    const friendReply = await friend.send(target.peerId, 'echo', encoder.encode('friend first'), TEXT, { timeoutMs: 20_000 })
    assert.equal(decoder.decode(friendReply.body), 'friend first')
    const atFriend = s.received.slice(mark).filter(r => r.type === 'message' && r.message.kind === 'response').length
    assert.ok(atFriend < 6000, `the friend was answered before the stranger's burst was done (${atFriend} of its requests answered then)`)
    await until(() => answered() >= 6000, 'every frame of the burst answered', 60_000)
    const busy = s.received.slice(mark).filter(r => r.type === 'message' && r.error?.code === 'Busy').length
    // at most 4,096 wait at once: a burst of 6,000 written in one go overflows it (how many depends on how fast it drains meanwhile)
    assert.ok(busy > 0, 'the queue is bounded: some frames were refused with Busy')
    const responses = s.received.slice(mark).filter(r => r.type === 'message' && r.message.kind === 'response').length
    assert.equal(responses + busy, 6000, 'every frame was answered: run, or refused with Busy')
  })

  it('idle inbound streams of strangers are closed after untrustedIdleStreamMs; a trusted peer\'s idle stream stays', async () => {
    const idleTarget = await node({ trust: { publicServices: ['echo'] }, messaging: { untrustedIdleStreamMs: 1000 } })
    idleTarget.registerService('echo', m => ({ body: m.body, contentType: m.contentType }))
    await friend.libp2p.dial(idleTarget.libp2p.getMultiaddrs()[0]!)
    await friend.requestTrust(idleTarget.peerId, 'friend')
    await idleTarget.trust.approve(friend.peerId.toString())
    // the friend's stream: opened first, then idle as long as the strangers'
    assert.equal(decoder.decode((await friend.send(idleTarget.peerId, 'echo', encoder.encode('hi'), TEXT)).body), 'hi')
    const strangers: AttackStream[] = []
    for (let i = 0; i < 30; i++) strangers.push(await attacker.open(idleTarget.libp2p.getMultiaddrs()[0]!))
    await until(() => strangers.every(st => st.closed), 'the strangers\' idle streams to be closed')
    const friendStreams = idleTarget.libp2p.getConnections(friend.peerId).flatMap(c => c.streams).filter(st => st.protocol === MSG_PROTOCOL && st.status === 'open')
    assert.ok(friendStreams.length >= 1, 'the trusted peer\'s idle stream is still open')
    // a stranger that needs a stream again simply opens one
    const again = await attacker.open(idleTarget.libp2p.getMultiaddrs()[0]!)
    const reply = await attacker.request(again, 'echo', 'back again')
    assert.ok(reply.type === 'message' && reply.message.kind === 'response')
  })
})
