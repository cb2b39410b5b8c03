/**
 * Honest senders right after a peer's restart, and clocks that disagree,
 * between real nodes on 127.0.0.1:
 * - a node restarted after a crash refuses timestamps up to its floor with a
 *   signed `RestartedAt` naming the floor; the sending node re-seals once past
 *   it and the agent sees no error, while envelopes accepted before the crash
 *   stay refused;
 * - a sender whose clock is off gets `ClockSkew` naming the offset at once (not
 *   `RequestTimeout`), in both directions; answers to its own pending requests
 *   reach it whatever their timestamp; anything else out of the window is
 *   still refused; the node logs that its clock looks off.
 */

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/index.ts'
import { errorCodeOf } from '../../src/errors/index.ts'
import { ClockSkewError, encodeErrorBody, FrameDecoder, encodeFrame, JSON_TYPE, TEXT } from '../../src/messaging/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import { decodeMessage, decodeSignedMessage } from '../../src/protocol/index.ts'
import { Attacker, MSG_PROTOCOL, newId } from '../helpers/attacker.ts'
import type { ConfigOverrides } from '../../src/config/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

class Fixture {
  private readonly nodes = new Set<AgentNode>()
  private readonly homes: string[] = []
  private readonly attackers: Attacker[] = []
  readonly logs = new Map<AgentNode, string[]>()

  async home (): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'agentnet-restart-'))
    this.homes.push(dir)
    return dir
  }

  async node (options: { home?: string, key?: PrivateKey, afterCrash?: boolean, overrides?: ConfigOverrides, calls?: string[], clock?: () => number } = {}): Promise<AgentNode> {
    const home = options.home ?? await this.home()
    const key = options.key ?? await generateKeyPair('Ed25519')
    const config = await loadConfig({ overrides: { trust: { publicServices: ['echo', 'slow'] }, ...options.overrides, listen: ['/ip4/127.0.0.1/tcp/0'] } })
    const lines: string[] = []
    const logger = pino({ level: 'warn' }, new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } }))
    const node = await createAgentNode({ config, privateKey: key, home, afterCrash: options.afterCrash, clock: options.clock, logger })
    await node.start()
    this.nodes.add(node)
    this.logs.set(node, lines)
    const calls = options.calls
    node.registerService('echo', m => {
      calls?.push(m.id)
      return { body: m.body, contentType: m.contentType }
    })
    return node
  }

  async attacker (): Promise<Attacker> {
    const attacker = await Attacker.create()
    this.attackers.push(attacker)
    return attacker
  }

  /** A crash as far as state goes: nothing written (no replay-cache snapshot) */
  async crash (node: AgentNode): Promise<void> {
    this.nodes.delete(node)
    await node.messaging.stop()
    await node.tokens.stop()
    await node.libp2p.stop()
    await node.datastore.close()
  }

  async cleanup (): Promise<void> {
    await Promise.allSettled(this.attackers.map(async a => { await a.stop() }))
    await Promise.allSettled([...this.nodes].map(async n => { await n.stop() }))
    await Promise.allSettled(this.homes.map(async h => { await rm(h, { recursive: true, force: true }) }))
  }
}

function addrOf (node: AgentNode): Multiaddr {
  const addr = node.libp2p.getMultiaddrs()[0]
  assert.ok(addr, 'node has no listen address')
  return addr
}

async function waitDisconnected (libp2p: Libp2p, peer: PeerId): Promise<void> {
  const deadline = Date.now() + 5000
  while (libp2p.getConnections(peer).length > 0) {
    if (Date.now() > deadline) assert.fail(`still connected to ${peer.toString()}`)
    await sleep(10)
  }
}

async function echo (from: AgentNode, to: AgentNode, text: string, extra: { oneway?: boolean, timeoutMs?: number } = {}): Promise<string> {
  await from.libp2p.dial(addrOf(to))
  const reply = await from.send(to.peerId, 'echo', encoder.encode(text), TEXT, { timeoutMs: extra.timeoutMs ?? 10_000, oneway: extra.oneway })
  return reply.kind === 'ack' ? 'ack' : decoder.decode(reply.body)
}

const rejected = (node: AgentNode, code: string): number => node.messaging.metrics.rejected[code] ?? 0

describe('honest senders right after a peer restarted after a crash', () => {
  const fx = new Fixture()
  const calls: string[] = []
  let home: string
  let key: PrivateKey
  let target: AgentNode
  let sender: AgentNode
  let attacker: Attacker
  const captured: Array<{ id: string, frame: Uint8Array }> = []

  before(async () => {
    home = await fx.home()
    key = await generateKeyPair('Ed25519')
    // the default skew (30 s): without the retry every request would be refused for ~30 s
    target = await fx.node({ home, key, calls })
    sender = await fx.node()
    attacker = await fx.attacker()
  })
  after(async () => { await fx.cleanup() })

  it('a request and a one-way message sent right after the restart succeed; the agent sees no error; pre-crash envelopes stay refused', async () => {
    assert.equal(await echo(sender, target, 'before the crash'), 'before the crash')
    // an envelope a captor holds: accepted before the crash
    const s = await attacker.open(addrOf(target))
    const id = newId('cap')
    const frame = attacker.seal({ to: target.peerId, service: 'echo', kind: 'request', id, body: encoder.encode('run once'), contentType: TEXT })
    const first = await s.exchange(frame, id)
    assert.ok(first.type === 'message' && first.message.kind === 'response')
    captured.push({ id, frame })

    await fx.crash(target)
    const restartedAt = Date.now()
    target = await fx.node({ home, key, calls, afterCrash: true })
    await waitDisconnected(sender.libp2p, target.peerId)
    const floor = target.messaging.replayCache.notBefore
    assert.ok(floor >= restartedAt + 29_000, 'the after-crash floor is start + the 30 s skew')

    // well inside the floor: the first attempt is refused with RestartedAt, the re-sealed one runs
    assert.ok(Date.now() < floor - 20_000)
    assert.equal(await echo(sender, target, 'right after the restart'), 'right after the restart')
    assert.equal(rejected(target, 'RestartedAt'), 1, 'one refusal, then the re-sealed request ran')
    assert.equal(rejected(target, 'Replay'), 0)
    // the floor is remembered: later messages are stamped past it at once
    assert.equal(await echo(sender, target, 'and the next one'), 'and the next one')
    assert.equal(await echo(sender, target, 'one-way', { oneway: true }), 'ack')
    assert.equal(rejected(target, 'RestartedAt'), 1, 'no further refusal')

    // the captured envelope: refused (at or below the floor), never run twice
    const s2 = await attacker.open(addrOf(target))
    const code = await s2.expectError(frame, id)
    assert.equal(code, 'RestartedAt')
    assert.equal(calls.filter(c => c === id).length, 1, 'the captured request ran exactly once')
  })

  it('a sender that itself restarted after a crash gets its answers (they are stamped before its own floor)', async () => {
    const senderHome = await fx.home()
    const senderKey = await generateKeyPair('Ed25519')
    let crashed = await fx.node({ home: senderHome, key: senderKey })
    assert.equal(await echo(crashed, target, 'from the sender before its crash'), 'from the sender before its crash')
    await fx.crash(crashed)
    crashed = await fx.node({ home: senderHome, key: senderKey, afterCrash: true })
    assert.ok(crashed.messaging.replayCache.notBefore > Date.now() + 20_000)
    const before = rejected(crashed, 'RestartedAt')
    assert.equal(await echo(crashed, target, 'answer me below my floor', { timeoutMs: 5000 }), 'answer me below my floor')
    assert.equal(rejected(crashed, 'RestartedAt'), before, 'the answer was not refused')
  })

  it('a floor far in the future (a hostile peer) is not followed: the agent gets RestartedAt, nothing is re-sent', async () => {
    const hostile = await fx.attacker()
    let requests = 0
    await hostile.libp2p.handle(MSG_PROTOCOL, (stream) => {
      const frames = new FrameDecoder(1024 * 1024)
      stream.addEventListener('message', evt => {
        for (const frame of frames.push(evt.data)) {
          const request = decodeMessage(decodeSignedMessage(frame).payload)
          requests++
          const reply = hostile.seal({ to: request.from, service: request.service, kind: 'error', id: newId('err'), inReplyTo: request.id, contentType: JSON_TYPE, body: encodeErrorBody('RestartedAt', 'restarted', Date.now() + 3_600_000) })
          stream.send(encodeFrame(reply))
        }
      })
    })
    await hostile.connect(addrOf(sender))
    const deadline = Date.now() + 5000
    while (sender.libp2p.getConnections(hostile.peerId).length === 0 && Date.now() < deadline) await sleep(10)
    await assert.rejects(sender.send(hostile.peerId, 'echo', encoder.encode('x'), TEXT, { timeoutMs: 10_000 }), (err: unknown) => errorCodeOf(err) === 'RestartedAt')
    assert.equal(requests, 1, 'no re-send stamped an hour ahead')
  })
})

describe('clock skew between sender and receiver', () => {
  const fx = new Fixture()
  const calls: string[] = []
  let target: AgentNode

  before(async () => {
    target = await fx.node({ calls })
  })
  after(async () => { await fx.cleanup() })

  for (const skewMs of [-90_000, 600_000, 45_000]) {
    it(`a sender ${skewMs > 0 ? 'ahead' : 'behind'} by ${Math.abs(skewMs) / 1000} s gets ClockSkew naming the offset at once, not RequestTimeout`, async () => {
      const sender = await fx.node({ clock: () => Date.now() + skewMs })
      const before = calls.length
      await sender.libp2p.dial(addrOf(target))
      const started = Date.now()
      const final = await sender.send(target.peerId, 'echo', encoder.encode('skewed'), TEXT, { timeoutMs: 30_000 }).then(() => undefined, (e: unknown) => e)
      assert.ok(final instanceof ClockSkewError, `expected ClockSkew, got ${String(final)}`)
      assert.equal(final.code, 'ClockSkew')
      // the receiver's clock minus ours: the opposite of the sender's skew
      assert.ok(Math.abs(final.offsetMs + skewMs) < 5000, `offset ${final.offsetMs} ms measured for a ${skewMs} ms skew`)
      assert.match(final.message, new RegExp(`${skewMs > 0 ? '-' : '\\+'}${Math.abs(skewMs) / 1000}\\.\\d s`))
      assert.ok(Date.now() - started < 15_000, 'answered by the refusal, not by the 30 s timeout')
      assert.equal(calls.length, before, 'the receiver did not run it')
      assert.ok(rejected(target, skewMs > 0 ? 'FutureMessage' : 'StaleMessage') >= 1)
    })
  }

  it('a sender 50 s behind: ClockSkew when its deadline looks passed to the peer; with a longer timeout it gets the answer the peer sent, and logs that its clock looks off', async () => {
    const sender = await fx.node({ clock: () => Date.now() - 50_000 })
    await sender.libp2p.dial(addrOf(target))
    const before = calls.length
    // timestamp + ttl (10 s) is 40 s in the peer's past: not run, and the agent is told why
    const err = await sender.send(target.peerId, 'echo', encoder.encode('short'), TEXT, { timeoutMs: 10_000 }).then(() => undefined, (e: unknown) => e)
    assert.ok(err instanceof ClockSkewError, `expected ClockSkew, got ${String(err)}`)
    assert.ok(Math.abs(err.offsetMs - 50_000) < 5000)
    assert.match(err.message, /DeadlineExceeded|stopped waiting/)
    assert.equal(calls.length, before, 'not run')
    // inside the window and the deadline: the peer runs it; its answer (50 s ahead of us) is ours
    const reply = await sender.send(target.peerId, 'echo', encoder.encode('late clock'), TEXT, { timeoutMs: 120_000 })
    assert.equal(decoder.decode(reply.body), 'late clock')
    assert.equal(calls.length, before + 1, 'run exactly once')
    const warning = (fx.logs.get(sender) ?? []).find(l => l.includes('clock is probably behind'))
    assert.ok(warning, 'the sender logs that its clock looks behind')
    assert.match(warning, /\+50\.\d s over 1 peer/)
  })

  it('the exception is narrow: an out-of-window answer that matches no pending request of ours from that peer is refused', async () => {
    const sender = await fx.node()
    const attacker = await fx.attacker()
    const s = await attacker.open(addrOf(sender))
    // a stale answer naming a request the sender is not waiting for (from this peer)
    const stale = attacker.seal({ to: sender.peerId, service: 'echo', kind: 'error', id: newId('x'), inReplyTo: newId('none'), contentType: JSON_TYPE, body: encodeErrorBody('StaleMessage', 'x'), timestamp: Date.now() - 120_000 })
    const before = rejected(sender, 'StaleMessage')
    await s.sendFrames(stale)
    const deadline = Date.now() + 5000
    while (rejected(sender, 'StaleMessage') === before && Date.now() < deadline) await sleep(10)
    assert.equal(rejected(sender, 'StaleMessage'), before + 1)

    // an answer naming the sender's real pending request to *another* peer is refused too
    let pendingId: string | undefined
    const gate = Promise.withResolvers<void>()
    target.registerService('slow', async m => {
      pendingId = m.id
      await gate.promise
      return { body: m.body, contentType: m.contentType }
    })
    await sender.libp2p.dial(addrOf(target))
    const sent = sender.send(target.peerId, 'slow', encoder.encode('the real answer'), TEXT, { timeoutMs: 10_000 })
    while (pendingId === undefined && Date.now() < deadline + 5000) await sleep(10)
    assert.ok(pendingId)
    const forged = attacker.seal({ to: sender.peerId, service: 'slow', kind: 'response', id: newId('f'), inReplyTo: pendingId, contentType: TEXT, body: encoder.encode('forged'), timestamp: Date.now() - 120_000 })
    await s.sendFrames(forged)
    while (rejected(sender, 'StaleMessage') === before + 1 && Date.now() < deadline + 10_000) await sleep(10)
    assert.equal(rejected(sender, 'StaleMessage'), before + 2)
    gate.resolve()
    assert.equal(decoder.decode((await sent).body), 'the real answer')
  })
})
