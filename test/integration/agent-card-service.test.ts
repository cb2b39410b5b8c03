/**
 * The A2A card over the agent protocol between two real nodes: every node
 * serves its signed card (made from its configured card, as the outbox
 * admitted it) on the `agent-card` service; B asks A for it and verifies it
 * against A's peer ID; a node answering with another peer's card is refused.
 */

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { loadConfig } from '../../src/config/index.ts'
import { AGENT_CARD_SERVICE, fetchAgentCard } from '../../src/did/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'
import type { PrivateKey } from '@libp2p/interface'

const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }

describe('agent card over the agent protocol', () => {
  const nodes: AgentNode[] = []
  const homes: string[] = []
  after(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  })

  async function node (key: PrivateKey, name: string): Promise<AgentNode> {
    const home = await mkdtemp(join(tmpdir(), 'an-card-'))
    homes.push(home)
    const config = await loadConfig({
      overrides: {
        listen: ['/ip4/127.0.0.1/tcp/0'], nat: quiet, relay: { reserve: false }, dht: { enabled: false },
        trust: { publicServices: [AGENT_CARD_SERVICE, 'fake-card'] },
        card: { name, services: ['forecast'], metadata: {} }
      }
    })
    const n = await createAgentNode({ config, privateKey: key, home })
    nodes.push(n)
    await n.start()
    return n
  }

  it('B fetches A\'s signed card by A\'s peer ID and verifies it; a card of another peer is refused', async () => {
    const a = await node(await generateKeyPair('Ed25519'), 'A')
    const b = await node(await generateKeyPair('Ed25519'), 'B')
    const addr = a.libp2p.getMultiaddrs()[0]
    assert.ok(addr !== undefined)
    await b.libp2p.dial(addr)
    const { card, verified } = await fetchAgentCard(b, a.peerId, { timeoutMs: 5000 })
    assert.equal(verified.peerId, a.peerId.toString())
    assert.equal(card.name, 'A')
    assert.deepEqual(card.agentnet.services, ['forecast'])
    assert.equal(a.outbox.admitted.card, 1, 'the card content passed the outbox once, at start')
    assert.ok(a.outbox.admitted.reply >= 1, 'the card reply passed the outbox')

    // C answers with A's (validly signed) card: B refuses it as C's card
    const c = await node(await generateKeyPair('Ed25519'), 'C')
    // an agent's own service: its reply passes C's guard, which must let the signature through
    c.guard.setPolicy({ peer: '*', service: 'fake-card', allow: ['secret/high-entropy'] })
    c.registerService('fake-card', () => ({ body: new TextEncoder().encode(JSON.stringify(card)), contentType: 'application/json' }))
    const addrC = c.libp2p.getMultiaddrs()[0]
    assert.ok(addrC !== undefined)
    await b.libp2p.dial(addrC)
    await assert.rejects(fetchAgentCard(b, c.peerId, { timeoutMs: 5000, service: 'fake-card' }), { code: 'InvalidAgentCard' })
  })
})
