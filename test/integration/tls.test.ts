/**
 * TLS 1.3 as an alternative to Noise (`security` config): real agentnet nodes
 * on 127.0.0.1 with the full messaging stack exchange signed messages over
 * TLS only, over a node that offers both, and refuse each other when they
 * share no encrypter. Both encrypters authenticate the same peer ID.
 */

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { loadConfig, profilePath } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import type { SecurityProtocol } from '../../src/config/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'

const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }
const encoder = new TextEncoder()
const decoder = new TextDecoder()

async function waitFor (condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

describe('TLS 1.3 connection encrypter (config security)', () => {
  const nodes: AgentNode[] = []
  const homes: string[] = []

  async function node (security: SecurityProtocol[]): Promise<AgentNode> {
    const home = await mkdtemp(join(tmpdir(), 'an-tls-'))
    homes.push(home)
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], nat: quiet, relay: { reserve: false }, dht: { enabled: false }, security, trust: { publicServices: ['echo'] } } })
    const n = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home })
    nodes.push(n)
    await n.start()
    n.registerService('echo', m => ({ body: m.body, contentType: m.contentType }))
    return n
  }

  function address (n: AgentNode): ReturnType<typeof multiaddr> {
    const a = n.libp2p.getMultiaddrs()[0]
    assert.ok(a !== undefined)
    return a
  }

  async function roundTrip (from: AgentNode, to: AgentNode, text: string): Promise<string> {
    const reply = await from.send(to.peerId, 'echo', encoder.encode(text), 'text/plain', { timeoutMs: 5000 })
    return decoder.decode(reply.body)
  }

  let tlsA: AgentNode
  let tlsB: AgentNode
  let both: AgentNode
  let noiseOnly: AgentNode

  before(async () => {
    tlsA = await node(['tls'])
    tlsB = await node(['tls'])
    both = await node(['noise', 'tls'])
    noiseOnly = await node(['noise'])
  })

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  })

  it('two TLS-only nodes exchange signed messages over TLS, each authenticating the other\'s peer ID', async () => {
    const connection = await tlsA.libp2p.dial(address(tlsB))
    assert.equal(connection.encryption, '/tls/1.0.0')
    assert.equal(connection.remotePeer.toString(), tlsB.peerId.toString())
    assert.equal(await roundTrip(tlsA, tlsB, 'over tls'), 'over tls')
    assert.equal(await roundTrip(tlsB, tlsA, 'and back'), 'and back')
    await waitFor(() => tlsB.libp2p.getConnections(tlsA.peerId).length > 0)
    const inbound = tlsB.libp2p.getConnections(tlsA.peerId)[0]
    assert.equal(inbound?.encryption, '/tls/1.0.0')
    assert.equal(inbound?.remotePeer.toString(), tlsA.peerId.toString())
  })

  it('a node offering noise and tls talks TLS to a TLS-only node and Noise to a Noise-only node', async () => {
    const toTls = await both.libp2p.dial(address(tlsA))
    assert.equal(toTls.encryption, '/tls/1.0.0')
    assert.equal(await roundTrip(both, tlsA, 'mixed→tls'), 'mixed→tls')
    const fromTls = await tlsB.libp2p.dial(address(both))
    assert.equal(fromTls.encryption, '/tls/1.0.0')
    assert.equal(await roundTrip(tlsB, both, 'tls→mixed'), 'tls→mixed')
    const toNoise = await both.libp2p.dial(address(noiseOnly))
    assert.equal(toNoise.encryption, '/noise')
    // the responder registers the connection a moment after the dialler's dial resolves
    await waitFor(() => noiseOnly.libp2p.getConnections(both.peerId).length > 0)
    assert.equal(noiseOnly.libp2p.getConnections(both.peerId)[0]?.encryption, '/noise')
    assert.equal(await roundTrip(noiseOnly, both, 'noise→mixed'), 'noise→mixed')
  })

  it('nodes without a common encrypter do not connect', async () => {
    await assert.rejects(noiseOnly.libp2p.dial(address(tlsA)))
    assert.equal(noiseOnly.libp2p.getConnections(tlsA.peerId).length, 0)
  })

  it('TLS refuses a dial that expects another peer ID at the address', async () => {
    // a peer ID tlsA has no connection to (an existing connection would be reused)
    const impostorId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const wrong = multiaddr(address(tlsB).toString().replace(/\/p2p\/.*$/, '') + `/p2p/${impostorId}`)
    await assert.rejects(tlsA.libp2p.dial(wrong))
  })

  it('the config refuses unknown or repeated encrypters', async () => {
    await assert.rejects(loadConfig({ overrides: { security: ['ssl' as SecurityProtocol] } }), /security must be a non-empty list/)
    await assert.rejects(loadConfig({ overrides: { security: [] } }), /security must be a non-empty list/)
    await assert.rejects(loadConfig({ overrides: { security: ['tls', 'tls'] } }), /security must be a non-empty list/)
    assert.deepEqual((await loadConfig()).security, ['noise'])
    assert.deepEqual((await loadConfig({ defaultsFile: profilePath('bootstrap') })).security, ['noise', 'tls'], 'bootstrap nodes admit agents of either kind')
  })
})
