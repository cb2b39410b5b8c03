import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadConfig } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'

const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }

describe('session tokens are issued to trusted peers only (for private services)', () => {
  const nodes: AgentNode[] = []
  const homes: string[] = []

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  })

  it('an untrusted peer cannot obtain a token; a trusted one can, and its messages get through', async () => {
    const home = async (): Promise<string> => {
      const dir = await mkdtemp(join(tmpdir(), 'an-tok-'))
      homes.push(dir)
      return dir
    }
    const friendKey = await generateKeyPair('Ed25519')
    const friendId = peerIdFromPrivateKey(friendKey).toString()
    const base = { listen: ['/ip4/127.0.0.1/tcp/0'], nat: quiet, relay: { reserve: false } }
    const target = await createAgentNode({
      config: await loadConfig({ overrides: { ...base, tokens: { protectedServices: ['vault'] }, trust: { peers: [friendId] } } }),
      privateKey: await generateKeyPair('Ed25519'),
      home: await home()
    })
    nodes.push(target)
    await target.start()
    target.registerService('vault', m => ({ body: m.body, contentType: m.contentType }))
    const address = target.libp2p.getMultiaddrs()[0]
    assert.ok(address != null)

    const stranger = await createAgentNode({ config: await loadConfig({ overrides: base }), privateKey: await generateKeyPair('Ed25519'), home: await home() })
    const friend = await createAgentNode({ config: await loadConfig({ overrides: base }), privateKey: friendKey, home: await home() })
    nodes.push(stranger, friend)
    await stranger.start()
    await friend.start()
    await stranger.libp2p.dial(address)
    await friend.libp2p.dial(address)

    // asking the token protocol directly: refused for a private service
    await assert.rejects(stranger.tokens.fetch(target.peerId, 'vault'), /trusted peers only/)
    // and the message itself is refused before any token matters
    await assert.rejects(stranger.send(target.peerId, 'vault', new Uint8Array([1]), 'application/octet-stream', { timeoutMs: 3000 }), { code: 'UntrustedPeer' })

    // the statically trusted friend fetches a token transparently and gets through
    const reply = await friend.send(target.peerId, 'vault', new Uint8Array([7]), 'application/octet-stream', { timeoutMs: 5000 })
    assert.deepEqual([...reply.body], [7])
  })
})
