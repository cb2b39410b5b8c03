import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { InvalidTargetError, parseTarget } from '../../src/node/index.ts'

describe('parseTarget', async () => {
  const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

  it('accepts a peer ID, a multiaddr with /p2p and an agentnet URL', () => {
    const bare = parseTarget(peerId)
    assert.equal(bare.kind, 'peer')
    assert.equal(bare.peerId.toString(), peerId)

    const ma = parseTarget(`/ip4/127.0.0.1/tcp/4001/p2p/${peerId}`)
    assert.equal(ma.kind, 'multiaddr')
    assert.equal(ma.peerId?.toString(), peerId)

    const url = parseTarget(`agentnet://${peerId}/echo`)
    assert.equal(url.kind, 'peer')
    assert.equal(url.kind === 'peer' ? url.service : undefined, 'echo')
  })

  it('rejects garbage with InvalidTargetError', () => {
    for (const bad of ['', 'hello', '/ip4/999.1.1.1/tcp/1', '/nope', 'agentnet://xyz/echo', '12D3KooWshort']) {
      assert.throws(() => parseTarget(bad), InvalidTargetError, bad)
    }
  })
})
