/**
 * The messaging path with Ed25519 on worker threads (`crypto.workers: 1`,
 * `crypto.offloadUtilization: 0`, so every verify and sign goes to the
 * worker whatever the load): real nodes on 127.0.0.1, a real attacker
 * (test/helpers/attacker.ts). Honest traffic is answered, in order and in
 * bulk; forged, misdirected and replayed frames are refused exactly as on the
 * inline path, and the pool's counters show the worker did the crypto.
 */
import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { createAgentNode } from '../../src/agent/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { createSigner } from '../../src/protocol/index.ts'
import { Attacker, craftFrame, dissect, frameFromParts, tamper } from '../helpers/attacker.ts'
import type { AgentNode } from '../../src/agent/index.ts'
import type { AttackStream } from '../helpers/attacker.ts'

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const TEXT = 'text/plain; charset=utf-8'

describe('messaging with Ed25519 on worker threads', () => {
  const homes: string[] = []
  const nodes: AgentNode[] = []
  const calls: string[] = []
  let target: AgentNode
  let honest: AgentNode
  let attacker: Attacker
  let s: AttackStream

  async function node (): Promise<AgentNode> {
    const home = await mkdtemp(join(tmpdir(), 'agentnet-pool-'))
    homes.push(home)
    const config = await loadConfig({
      overrides: {
        listen: ['/ip4/127.0.0.1/tcp/0'],
        trust: { publicServices: ['echo'] },
        crypto: { workers: 1, offloadUtilization: 0 },
        // 300 at once from one (untrusted) peer: above a stranger's default bound of 32
        messaging: { untrustedInFlightRequests: 1024 }
      }
    })
    const n = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home })
    await n.start()
    nodes.push(n)
    n.registerService('echo', m => { calls.push(m.id); return { body: m.body, contentType: m.contentType } })
    return n
  }

  const rejected = (code: string): number => target.messaging.metrics.rejected[code] ?? 0

  before(async () => {
    target = await node()
    honest = await node()
    attacker = await Attacker.create()
    const addr = target.libp2p.getMultiaddrs()[0]
    assert.ok(addr)
    s = await attacker.open(addr)
    await honest.libp2p.dial(addr)
  })

  after(async () => {
    await attacker.stop().catch(() => {})
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
    await Promise.allSettled(homes.map(async h => { await rm(h, { recursive: true, force: true }) }))
  })

  it('answers 300 concurrent requests correctly, with the crypto done by the worker on both nodes', async () => {
    const before = target.messaging.cryptoPool.stats.offloaded
    const bodies = Array.from({ length: 300 }, (_, i) => `request ${i} ${'x'.repeat(i)}`)
    const replies = await Promise.all(bodies.map(async b => honest.send(target.peerId, 'echo', encoder.encode(b), TEXT, { timeoutMs: 60_000 })))
    replies.forEach((r, i) => {
      assert.equal(r.kind, 'response')
      assert.equal(decoder.decode(r.body), bodies[i])
    })
    // one verify (request) and one sign (answer) per request on the target, all on the worker
    assert.ok(target.messaging.cryptoPool.stats.offloaded - before >= 600, `offloaded ${target.messaging.cryptoPool.stats.offloaded - before}`)
    assert.equal(target.messaging.cryptoPool.workers, 1)
    assert.ok(honest.messaging.cryptoPool.stats.offloaded >= 600)
  })

  it('a large body (512 KiB) goes through, signed and verified over its digest', async () => {
    // high bytes only: random ASCII can spell an e-mail address by chance, which the guard would block
    const body = new Uint8Array(randomBytes(512 * 1024).map(x => x | 0x80))
    const reply = await honest.send(target.peerId, 'echo', body, 'application/octet-stream', { timeoutMs: 60_000 })
    assert.deepEqual(reply.body, body)
  })

  it('attack: tampered, re-signed-by-another-key and misdirected frames are refused; the forgeries use no nonce; a replay is refused', async () => {
    const seal = (to: AgentNode, body: string): { id: string, frame: Uint8Array } => {
      const id = randomUUID()
      return { id, frame: attacker.seal({ to: to.peerId, service: 'echo', kind: 'request', id, body: encoder.encode(body) }) }
    }
    const original = seal(target, 'pay 10 to bob')
    const { message, payload, signature } = dissect(original.frame)
    const flipped = payload.slice()
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] as number) ^ 1
    const other = createSigner(await generateKeyPair('Ed25519'))
    const badSigBefore = rejected('BadSignature')
    assert.equal(await s.expectError(frameFromParts(flipped, signature), original.id), 'BadSignature')
    assert.equal(await s.expectError(tamper(original.frame, { body: encoder.encode('pay 1000 to eve') }), original.id), 'BadSignature')
    assert.equal(await s.expectError(craftFrame(message, other), original.id), 'BadSignature')
    assert.equal(rejected('BadSignature') - badSigBefore, 3)
    const misdirected = seal(honest, 'not for you')
    const verifiedBefore = target.messaging.cryptoPool.stats.offloaded + target.messaging.cryptoPool.stats.inline
    assert.equal(await s.expectError(misdirected.frame, misdirected.id), 'WrongRecipient')
    // refused before the signature check: no verify job for it (the error reply is one sign)
    assert.ok(target.messaging.cryptoPool.stats.offloaded + target.messaging.cryptoPool.stats.inline - verifiedBefore <= 1)
    assert.equal(calls.filter(c => c === original.id || c === misdirected.id).length, 0, 'no forgery reached the service')
    // the genuine frame's nonce is unused, so it is answered once; sent again, it is a replay
    const reply = await s.exchange(original.frame, original.id)
    assert.ok(reply.type === 'message' && reply.message.kind === 'response' && reply.signatureValid)
    assert.equal(decoder.decode(reply.message.body), 'pay 10 to bob')
    assert.equal(await s.expectError(original.frame, original.id), 'Replay')
    assert.equal(calls.filter(c => c === original.id).length, 1)
  })
})
