/**
 * Connection slots against throwaway identities (trust.strict false), with
 * real libp2p nodes on 127.0.0.1:
 * - strangers fill `connections.maxConnections`; the ones beyond are closed,
 *   and a trusted peer's new dial still gets in and is served;
 * - one IP address gets at most `connections.maxPerIp` connections from
 *   untrusted peers;
 * - trusted peers carry a high peer-store tag, so libp2p's pruner spares them.
 */

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { loadConfig } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import { TEXT } from '../../src/messaging/index.ts'
import { Attacker } from '../helpers/attacker.ts'
import type { ConfigOverrides } from '../../src/config/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'

const encoder = new TextEncoder()
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function until (check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe('connection slots', () => {
  const homes: string[] = []
  const nodes: AgentNode[] = []
  const attackers: Attacker[] = []

  async function node (overrides: ConfigOverrides = {}): Promise<AgentNode> {
    const home = await mkdtemp(join(tmpdir(), 'agentnet-slots-'))
    homes.push(home)
    const config = await loadConfig({ overrides: { ...overrides, listen: ['/ip4/127.0.0.1/tcp/0'] } })
    const n = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home })
    await n.start()
    nodes.push(n)
    return n
  }

  /** `n` throwaway identities, each dialling `target` once; resolves with how many stay connected */
  async function throwaways (target: AgentNode, n: number): Promise<Attacker[]> {
    const created = await Promise.all(Array.from({ length: n }, async () => Attacker.create()))
    attackers.push(...created)
    const addr = target.libp2p.getMultiaddrs()[0]!
    await Promise.allSettled(created.map(async a => a.connect(addr)))
    return created
  }

  const strangersConnected = (target: AgentNode, strangers: Attacker[]): number =>
    strangers.filter(a => target.libp2p.getConnections(a.peerId).some(c => c.status === 'open')).length

  after(async () => {
    await Promise.allSettled(attackers.map(async a => { await a.stop() }))
    await Promise.allSettled(nodes.map(async n => { await n.stop() }))
    await Promise.allSettled(homes.map(async h => { await rm(h, { recursive: true, force: true }) }))
  })

  it('strangers are held to maxConnections; a trusted peer still connects and is served', async () => {
    const target = await node({ trust: { publicServices: ['echo'] }, connections: { maxConnections: 8, reservedConnections: 4, maxPerIp: 1000, maxPerSubnet: 1000, inboundConnectionThreshold: 1000 } })
    target.registerService('echo', m => ({ body: m.body, contentType: m.contentType }))
    const friend = await node()
    await friend.libp2p.dial(target.libp2p.getMultiaddrs()[0]!)
    await friend.requestTrust(target.peerId, 'friend')
    await target.trust.approve(friend.peerId.toString())
    // the friend's connection goes away; strangers fill the slots meanwhile
    await friend.libp2p.hangUp(target.peerId)
    await until(() => target.libp2p.getConnections(friend.peerId).length === 0, 'the friend to disconnect')
    const strangers = await throwaways(target, 14)
    await until(() => strangersConnected(target, strangers) <= 8, 'strangers over the limit to be closed')
    assert.equal(strangersConnected(target, strangers), 8, 'exactly maxConnections strangers keep a slot')

    await friend.libp2p.dial(target.libp2p.getMultiaddrs()[0]!)
    const reply = await friend.send(target.peerId, 'echo', encoder.encode('still room for me'), TEXT, { timeoutMs: 10_000 })
    assert.equal(new TextDecoder().decode(reply.body), 'still room for me')
    assert.ok(target.libp2p.getConnections(friend.peerId).length >= 1, 'the trusted peer keeps its connection')
    // its peer-store tag makes libp2p's pruner close strangers first
    const peer = await target.libp2p.peerStore.get(friend.peerId)
    assert.equal(peer.tags.get('agentnet-trusted')?.value, 100)
  })

  it('one IP address gets at most maxPerIp connections from untrusted peers', async () => {
    const target = await node({ connections: { maxConnections: 100, maxPerIp: 3, inboundConnectionThreshold: 1000 } })
    const strangers = await throwaways(target, 7)
    await until(() => strangersConnected(target, strangers) <= 3, 'connections over the per-IP limit to be closed')
    await sleep(100)
    assert.equal(strangersConnected(target, strangers), 3)
  })
})
