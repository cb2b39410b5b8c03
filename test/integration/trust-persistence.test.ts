import assert from 'node:assert/strict'
import { Outbox } from '../../src/outbox/index.ts'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CorruptTrustStoreError, TRUST_FILE, trust } from '../../src/trust/index.ts'
import { bareLibp2p, connect, makeHome, removeHome, restart, send, startNode } from './trust-helpers.ts'
import type { TestNode } from './trust-helpers.ts'

describe('trust store persistence', () => {
  it('pending requests and trust survive restarts of both nodes', async () => {
    let a: TestNode = await startNode()
    let b: TestNode = await startNode()
    let c: TestNode = await startNode()
    try {
      await connect(a, b)
      await connect(c, b)
      await a.request(b.id, 'survive a restart')
      await c.request(b.id, 'me too')
      await b.trust.approve(c.id)
      const invite = await b.trust.createInvite({ ttlMs: 60_000, uses: 3 })

      const file = join(b.home, TRUST_FILE)
      assert.equal((await stat(file)).mode & 0o777, 0o600)

      ;[a, b, c] = await Promise.all([restart(a), restart(b), restart(c)])
      assert.deepEqual(b.trust.pending().map(p => [p.peerId, p.reason]), [[a.id, 'survive a restart']])
      assert.equal(a.trust.stateOf(b.id), 'pending-outbound')
      assert.equal(b.trust.isTrusted(c.id), true)
      assert.equal(c.trust.isTrusted(b.id), true)
      assert.deepEqual(b.trust.invites().map(i => [i.id, i.usesLeft]), [[invite.id, 3]])

      // the decision taken after the restart reaches the restarted requester
      await connect(b, a)
      const approved = await b.trust.approve(a.id)
      assert.equal(approved.delivered, true)
      assert.equal(a.trust.isTrusted(b.id), true)

      ;[a, b, c] = await Promise.all([restart(a), restart(b), restart(c)])
      assert.equal(a.trust.isTrusted(b.id), true)
      assert.equal(b.trust.isTrusted(a.id), true)
      assert.equal(b.trust.isTrusted(c.id), true)
      assert.deepEqual(b.trust.pending(), [])
      await connect(a, b)
      await connect(c, b)
      assert.equal(await send(a, b, 'echo', 'still trusted'), 'still trusted')
      assert.equal(await send(c, b, 'echo', 'me too'), 'me too')
    } finally {
      for (const n of [a, b, c]) {
        await n.stop()
        await removeHome(n.home)
      }
    }
  })

  it('static peers are trusted without a handshake and never written to the store', async () => {
    const friendKey = await generateKeyPair('Ed25519')
    const friend = peerIdFromPrivateKey(friendKey).toString()
    const a = await startNode({ init: { staticPeers: [friend] } })
    try {
      assert.equal(a.trust.isTrusted(friend), true)
      assert.deepEqual(a.trust.list().map(e => [e.peerId, e.state, e.via, e.static]), [[friend, 'trusted', 'static', true]])
      await a.trust.createInvite({ uses: 1 }) // forces a write
      const stored = JSON.parse(await readFile(join(a.home, TRUST_FILE), 'utf8')) as { peers: Record<string, unknown> }
      assert.deepEqual(stored.peers, {})
    } finally {
      await a.stop()
      await removeHome(a.home)
    }
  })

  it('a corrupt trust.json fails start with CorruptTrustStore and is left untouched', async () => {
    const key = await generateKeyPair('Ed25519')
    const cases = [
      '{"version":1,"peers":{',                                                                                    // truncated
      '{"version":1,"peers":{"not-a-peer":{"state":"trusted"}},"invites":{}}',                                    // bad peer ID
      `{"version":1,"peers":{"${peerIdFromPrivateKey(key).toString()}":{"state":"best-friends","since":1,"updatedAt":1,"reason":"","direction":"inbound","via":"request"}},"invites":{}}`,
      '{"version":2,"peers":{},"invites":{}}',
      '\u0000\u0001garbage'
    ]
    for (const content of cases) {
      const home = await makeHome()
      try {
        const file = join(home, TRUST_FILE)
        await writeFile(file, content, { mode: 0o600 })
        const before = await stat(file)
        const node = await startNode({ home, key }).catch((err: unknown) => err)
        assert.ok(node instanceof CorruptTrustStoreError, `rejected: ${JSON.stringify(content.slice(0, 40))}`)
        assert.equal(node.code, 'CorruptTrustStore')
        assert.equal(node.file, file)
        assert.equal(await readFile(file, 'utf8'), content)
        assert.equal((await stat(file)).mtimeMs, before.mtimeMs)
      } finally {
        await removeHome(home)
      }
    }
  })

  it('the service refuses to act before start', async () => {
    const key = await generateKeyPair('Ed25519')
    const home = await makeHome()
    const libp2p = await bareLibp2p(key)
    try {
      const service = trust({ home })({ libp2p, privateKey: key })
      await assert.rejects(service.request(peerIdFromPrivateKey(await generateKeyPair('Ed25519')), await new Outbox([]).admitText({ kind: 'trust-reason', text: 'x' })), { code: 'NotStarted' })
      await assert.rejects(service.createInvite(), { code: 'NotStarted' })
      assert.equal(service.admitsInbound(libp2p.peerId), true) // not strict
    } finally {
      await libp2p.stop()
      await removeHome(home)
    }
  })
})
