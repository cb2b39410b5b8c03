/**
 * The first-ping failure (`Too many outbound protocol streams for protocol
 * "/ipfs/ping/1.0.0" - 2/1`): kad-dht pings every new contact before adding
 * it to its routing table, so a user's ping on a fresh connection ran into
 * libp2p's default of one outbound ping stream per connection. Two pings at
 * once on one connection must both succeed.
 */

import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { after, describe, it } from 'node:test'
import { loadConfig } from '../../src/config/index.ts'
import { createAgentLibp2p } from '../../src/node/index.ts'
import type { AgentLibp2p } from '../../src/node/index.ts'

describe('ping on a fresh connection while the DHT pings too', () => {
  const nodes: AgentLibp2p[] = []
  after(async () => { await Promise.all(nodes.map(async n => n.stop())) })

  it('concurrent pings to one peer both succeed', async () => {
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
    const quiet = { ...config, relay: { ...config.relay, reserve: false }, nat: { ...config.nat, webrtc: false, autonat: false, dcutr: false, upnp: false } }
    for (let i = 0; i < 2; i++) {
      const node = await createAgentLibp2p({ config: quiet, privateKey: await generateKeyPair('Ed25519'), userAgent: 'test' })
      await node.start()
      nodes.push(node)
    }
    const [a, b] = nodes as [AgentLibp2p, AgentLibp2p]
    await b.dial(a.getMultiaddrs()[0]!)
    const rtts = await Promise.all([b.services.ping.ping(a.peerId), b.services.ping.ping(a.peerId), b.services.ping.ping(a.peerId)])
    assert.equal(rtts.length, 3)
  })
})
