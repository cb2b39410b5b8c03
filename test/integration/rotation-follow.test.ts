/**
 * Senders follow a key rotation they were not told about (issue 15): C was
 * offline when A rotated, so it never got A's notice. When C's agent sends to
 * A's old ID, C's node follows the rotation on its own and the agent gets the
 * reply from A's new ID, without seeing an error:
 *
 * - the old ID answers with a signed `Moved` error carrying the succession
 *   record (no DHT: C knows where the old ID listens);
 * - the old ID is unreachable, and the DHT card under the old ID points to
 *   the new one (the realistic case: A restarted on the new key);
 *
 * either way C verifies the record, moves trust, petnames and tokens, writes
 * an audit record and sends once more, to the new ID. A thief answering as
 * the old ID with a record signed by the old key alone, or with someone
 * else's record, is refused.
 */

import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { noise } from '@libp2p/noise'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { AddressBook } from '../../src/addressbook/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import { AUDIT_LOG_FILE } from '../../src/audit/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { errorCodeOf } from '../../src/errors/index.ts'
import { loadIdentity, loadOrCreateIdentity } from '../../src/identity/index.ts'
import { encodeSuccession } from '../../src/identity/rotation.ts'
import { MSG_PROTOCOL } from '../../src/messaging/index.ts'
import { createSigner, openEnvelope, ReplayCache, sealEnvelope } from '../../src/protocol/index.ts'
import { rotateHome } from '../../src/rotation/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }
const encoder = new TextEncoder()
const decoder = new TextDecoder()
const GRACE_MS = 60_000

interface AuditLine { type: string, data?: Record<string, unknown> }

async function audit (home: string): Promise<AuditLine[]> {
  const text = await readFile(join(home, AUDIT_LOG_FILE), 'utf8')
  return text.split('\n').filter(l => l.trim() !== '').map(l => JSON.parse(l) as AuditLine)
}

async function waitFor (what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const until = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('a sender that missed the notice follows the rotation (real nodes)', () => {
  const homes: string[] = []
  const running = new Set<AgentNode>()
  const extra: Libp2p[] = []

  after(async () => {
    for (const n of running) await n.stop().catch(() => {})
    for (const n of extra) await Promise.resolve(n.stop()).catch(() => {})
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  })

  async function newHome (): Promise<string> {
    const home = await mkdtemp(join(tmpdir(), 'an-rotf-'))
    homes.push(home)
    return home
  }

  async function start (home: string, options: { dht?: boolean, bootstrap?: string[] } = {}): Promise<AgentNode> {
    const dht = options.dht === true ? { enabled: true, mode: 'server' as const } : { enabled: false }
    // `vault` needs a session token from the node that serves it
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], nat: quiet, relay: { reserve: false }, dht, bootstrap: options.bootstrap ?? [], tokens: { protectedServices: ['vault'] } } })
    const { privateKey } = await loadOrCreateIdentity(home)
    const node = await createAgentNode({ config, privateKey, home })
    await node.start()
    running.add(node)
    node.registerService('echo', m => ({ body: encoder.encode(`${node.peerId.toString().slice(-6)}:${decoder.decode(m.body)}`), contentType: 'text/plain' }))
    node.registerService('vault', m => ({ body: encoder.encode(`vault:${decoder.decode(m.body)}`), contentType: 'text/plain' }))
    return node
  }

  async function stop (node: AgentNode): Promise<void> {
    running.delete(node)
    await node.stop()
  }

  async function befriend (node: AgentNode, peer: AgentNode): Promise<void> {
    const invite = await peer.trust.createInvite()
    await node.trust.acceptInvite(invite.code)
    assert.ok(node.trust.isTrusted(peer.peerId) && peer.trust.isTrusted(node.peerId))
  }

  async function echo (from: AgentNode, to: string, text: string, timeoutMs = 5000): Promise<string> {
    const reply = await from.send(peerIdFromString(to), 'echo', encoder.encode(text), 'text/plain', { timeoutMs })
    return decoder.decode(reply.body)
  }

  it('the old ID answers Moved: C verifies it, moves trust, petnames and tokens, and gets the reply from the new ID', async () => {
    const homeA = await newHome()
    const homeC = await newHome()
    let a = await start(homeA)
    let c = await start(homeC)
    await befriend(a, c)
    const oldA = a.peerId.toString()
    await new AddressBook(homeC).add('alice', oldA)
    assert.match(await echo(c, oldA, 'before'), /:before$/)
    // C holds a session token from A's old ID for `vault`
    assert.equal(decoder.decode((await c.send(peerIdFromString(oldA), 'vault', encoder.encode('v1'), 'text/plain', { timeoutMs: 5000 })).body), 'vault:v1')
    // C goes offline; A rotates and starts on the new key while C is away
    await stop(c)
    await stop(a)
    const rotated = await rotateHome(homeA, { graceMs: GRACE_MS })
    a = await start(homeA)
    await a.rotation.announced()
    assert.deepEqual(a.rotation.status()?.pending, [c.peerId.toString()], 'C missed the notice')
    c = await start(homeC)
    assert.equal(c.trust.stateOf(oldA), 'trusted', 'C knows nothing of the rotation')
    // C knows where the old ID listens now (as an earlier connection or a
    // lookup would tell it); without the DHT it has no other way to find it
    const oldAddresses = a.rotation.status()?.oldAddresses.map(s => multiaddr(s)) ?? []
    assert.ok(oldAddresses.length > 0)
    await c.libp2p.peerStore.merge(peerIdFromString(oldA), { multiaddrs: oldAddresses })

    const reply = await c.send(peerIdFromString(oldA), 'echo', encoder.encode('hello'), 'text/plain', { timeoutMs: 5000 })
    assert.equal(reply.from, rotated.new, 'the reply came from the new ID')
    assert.equal(decoder.decode(reply.body), `${rotated.new.slice(-6)}:hello`)
    assert.equal(c.trust.stateOf(rotated.new), 'trusted', 'trust moved')
    assert.equal(c.trust.stateOf(oldA), 'revoked')
    assert.equal(await new AddressBook(homeC).resolve('alice'), rotated.new, 'petnames follow')
    const lines = await audit(homeC)
    const followed = lines.find(l => l.type === 'rotation.followed')
    assert.deepEqual([followed?.data?.old, followed?.data?.new, followed?.data?.via, followed?.data?.trustMoved], [oldA, rotated.new, 'moved', true])
    assert.ok(lines.some(l => l.type === 'trust.succession'))
    // the next message to the old ID goes straight to the new one (the old ID is revoked, not an error for the agent)
    assert.equal(await echo(c, oldA, 'again'), `${rotated.new.slice(-6)}:again`)
    assert.equal((await audit(homeC)).filter(l => l.type === 'rotation.followed').length, 1, 'followed once')
    // the token-protected service: the new ID issues C a new token (the old ID's is dropped)
    const issuedToC = async (): Promise<number> => (await audit(homeA)).filter(l => l.type === 'token.issued' && l.data?.peer === c.peerId.toString()).length
    const before = await issuedToC()
    const vault = await c.send(peerIdFromString(oldA), 'vault', encoder.encode('v2'), 'text/plain', { timeoutMs: 5000 })
    assert.deepEqual([vault.from, decoder.decode(vault.body)], [rotated.new, 'vault:v2'])
    await waitFor('the new ID to record the token it issued', async () => await issuedToC() > before)
    await stop(a)
    await stop(c)
  })

  it('the old ID is gone: C finds the pointer card in the DHT and gets the reply from the new ID', async () => {
    const boot = await start(await newHome(), { dht: true })
    const bootstrap = [boot.addresses()[0] ?? assert.fail('no address')]
    const homeA = await newHome()
    const homeC = await newHome()
    let a = await start(homeA, { dht: true, bootstrap })
    let c = await start(homeC, { dht: true, bootstrap })
    await befriend(a, c)
    const oldA = a.peerId.toString()
    assert.match(await echo(c, oldA, 'before'), /:before$/)
    await stop(c)
    await stop(a)
    const rotated = await rotateHome(homeA, { graceMs: GRACE_MS })
    a = await start(homeA, { dht: true, bootstrap })
    await a.rotation.announced()
    await waitFor('the pointer card in the DHT', () => a.rotation.status()?.pointerPublished === true)
    // C returns; the old ID's addresses it knows are dead, and it never hears the notice
    c = await start(homeC, { dht: true, bootstrap })
    await waitFor('C to join the DHT', () => c.libp2p.getConnections().length > 0)
    assert.equal(c.trust.stateOf(oldA), 'trusted')

    const reply = await c.send(peerIdFromString(oldA), 'echo', encoder.encode('found you'), 'text/plain', { timeoutMs: 8000 })
    assert.equal(reply.from, rotated.new)
    assert.equal(decoder.decode(reply.body), `${rotated.new.slice(-6)}:found you`)
    assert.equal(c.trust.stateOf(rotated.new), 'trusted')
    const followed = (await audit(homeC)).find(l => l.type === 'rotation.followed')
    assert.deepEqual([followed?.data?.via, followed?.data?.new], ['card', rotated.new])
    assert.equal(a.rotation.status()?.pending.length, 1, 'C followed without the notice')
  })

  it('a thief with the old key answering Moved with an old-key-only record is refused; trust does not move', async () => {
    const homeV = await newHome()
    const homeC = await newHome()
    const v = await start(homeV)
    const c = await start(homeC)
    await befriend(v, c)
    const victim = v.peerId.toString()
    const stolen: PrivateKey = (await loadIdentity(homeV)).privateKey
    await stop(v)
    // the thief runs the victim's key and answers every message with Moved to its own ID
    const thiefKey = await generateKeyPair('Ed25519')
    const thiefId = peerIdFromPrivateKey(thiefKey)
    let record = encodeSuccession(stolen, undefined, { ts: Date.now(), graceMs: GRACE_MS, newPeerId: thiefId.toString() })
    const fake = await createLibp2p({ privateKey: stolen, addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    extra.push(fake)
    const signer = createSigner(stolen)
    const replay = new ReplayCache({ windowMs: 60_000 })
    await fake.handle(MSG_PROTOCOL, async (stream, connection) => {
      // the sender keeps one stream per peer: answer every frame on it
      const lp = lpStream(stream)
      try {
        while (true) {
          const data = await lp.read()
          const { message } = openEnvelope(data.subarray(), { localPeer: fake.peerId, remotePeer: connection.remotePeer, replayCache: replay })
          await lp.write(sealEnvelope({ to: connection.remotePeer.toMultihash().bytes, service: message.service, kind: 'error', id: randomUUID(), inReplyTo: message.id, contentType: 'application/json', body: encoder.encode(JSON.stringify({ code: 'Moved', message: record })) }, signer))
        }
      } catch {
        stream.abort(new Error('done'))
      }
    })
    await fake.start()
    await c.libp2p.peerStore.merge(fake.peerId, { multiaddrs: fake.getMultiaddrs() })

    const err = await c.send(peerIdFromString(victim), 'echo', encoder.encode('secret plans'), 'text/plain', { timeoutMs: 5000 }).then(() => undefined, (e: unknown) => e)
    assert.equal(errorCodeOf(err), 'NewKeySignatureMissing', 'the record is refused')
    assert.equal(c.trust.stateOf(victim), 'trusted', 'trust did not move')
    assert.equal(c.trust.stateOf(thiefId), 'none')
    assert.ok((await audit(homeC)).some(l => l.type === 'trust.succession-refused'))
    assert.ok(!(await audit(homeC)).some(l => l.type === 'rotation.followed'))

    // a genuine record (both signatures) about some other peer's rotation does not redirect messages to the victim
    record = encodeSuccession(await generateKeyPair('Ed25519'), await generateKeyPair('Ed25519'), { ts: Date.now(), graceMs: GRACE_MS })
    const err2 = await c.send(peerIdFromString(victim), 'echo', encoder.encode('more plans'), 'text/plain', { timeoutMs: 5000 }).then(() => undefined, (e: unknown) => e)
    assert.equal(errorCodeOf(err2), 'MalformedSuccession', 'the record is not about the peer that answered')
    assert.equal(c.trust.stateOf(victim), 'trusted')
    assert.ok(!(await audit(homeC)).some(l => l.type === 'rotation.followed'))
    await stop(c)
  })
})
