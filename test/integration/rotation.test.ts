/**
 * Key rotation with succession between real agent nodes (issue 15): A,
 * trusted by B (strict mode) and C, rotates its key; B and C follow on
 * their own (trust, petnames, audit record) and messages flow to A's new ID;
 * a record signed by the old key alone is refused; the old ID answers with
 * a pointer during the grace period and stops after it; a node killed in the
 * middle of a rotation completes it at its next start.
 */

import assert from 'node:assert/strict'
import { mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { AddressBook } from '../../src/addressbook/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import { AUDIT_LOG_FILE } from '../../src/audit/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { loadIdentity, loadOrCreateIdentity } from '../../src/identity/index.ts'
import { encodeSuccession, verifySuccession } from '../../src/identity/rotation.ts'
import { NEXT_KEY_FILE, OLD_KEY_FILE, prepareRotation, readRotation, SUCCESSION_FILE } from '../../src/identity/succession.ts'
import { rotateHome } from '../../src/rotation/index.ts'
import { RawPeer } from './trust-helpers.ts'
import { Attacker } from '../helpers/attacker.ts'
import type { AgentNode } from '../../src/agent/index.ts'
import type { PrivateKey } from '@libp2p/interface'

const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }
const encoder = new TextEncoder()
const decoder = new TextDecoder()
const GRACE_MS = 6_000

async function exists (file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false)
}

async function auditTypes (home: string): Promise<string[]> {
  const text = await readFile(join(home, AUDIT_LOG_FILE), 'utf8')
  return text.split('\n').filter(l => l.trim() !== '').map(l => (JSON.parse(l) as { type: string }).type)
}

async function waitFor (what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('key rotation with succession (real nodes)', () => {
  const homes: string[] = []
  const running = new Set<AgentNode>()
  const raws: RawPeer[] = []

  after(async () => {
    for (const n of running) await n.stop().catch(() => {})
    for (const r of raws) await r.stop().catch(() => {})
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  })

  async function newHome (): Promise<string> {
    const home = await mkdtemp(join(tmpdir(), 'an-rot-'))
    homes.push(home)
    return home
  }

  /** A full agent node (src/agent) on `home`, on the key that home holds; `echo` registered */
  async function start (home: string, strict = false, listen = ['/ip4/127.0.0.1/tcp/0']): Promise<AgentNode> {
    // no committer failover by timeout during the test: a take-over is the rotation's doing
    const config = await loadConfig({ overrides: { listen, nat: quiet, relay: { reserve: false }, dht: { enabled: false }, trust: { strict }, groups: { committerTimeoutMs: 3_600_000 } } })
    const { privateKey } = await loadOrCreateIdentity(home)
    const node = await createAgentNode({ config, privateKey, home })
    await node.start()
    running.add(node)
    node.registerService('echo', m => ({ body: m.body, contentType: m.contentType }))
    return node
  }

  async function stop (node: AgentNode): Promise<void> {
    running.delete(node)
    await node.stop()
  }

  /** `peer` invites `node`: trust both ways */
  async function befriend (node: AgentNode, peer: AgentNode): Promise<void> {
    const invite = await peer.trust.createInvite()
    await node.trust.acceptInvite(invite.code)
    assert.ok(node.trust.isTrusted(peer.peerId) && peer.trust.isTrusted(node.peerId))
  }

  async function echo (from: AgentNode, to: string, text: string): Promise<string> {
    const { peerIdFromString } = await import('@libp2p/peer-id')
    const reply = await from.send(peerIdFromString(to), 'echo', encoder.encode(text), 'text/plain', { timeoutMs: 5000 })
    return decoder.decode(reply.body)
  }

  let homeA: string, homeB: string
  let a: AgentNode, b: AgentNode, c: AgentNode
  let oldA: string, newA: string
  let oldKeyA: PrivateKey
  let groupId: string
  let aGroupId: string

  before(async () => {
    homeA = await newHome()
    homeB = await newHome()
    a = await start(homeA)
    b = await start(homeB, true)
    c = await start(await newHome())
    await befriend(a, b)
    await befriend(a, c)
    oldA = a.peerId.toString()
    oldKeyA = (await loadIdentity(homeA)).privateKey
    await new AddressBook(homeB).add('alice', oldA)
    assert.equal(await echo(b, oldA, 'before'), 'before')
    // B commits a group A belongs to
    groupId = (await b.groups.create({ name: 'team' })).groupId
    await b.groups.add({ groupId, peer: oldA })
    await waitFor('A to join the group', () => a.groups.list().some(g => g.groupId === groupId))
    // and A commits a group B and C belong to
    aGroupId = (await a.groups.create({ name: 'crew' })).groupId
    await a.groups.add({ groupId: aGroupId, peer: b.peerId.toString() })
    await a.groups.add({ groupId: aGroupId, peer: c.peerId.toString() })
    await waitFor('B and C to join A\'s group', () => [b, c].every(n => n.groups.list().some(g => g.groupId === aGroupId)))
    // members of one group reach each other (a DHT would tell them where; here B learns C's address)
    await b.connect(c.addresses()[0] ?? assert.fail('no address'))
  })

  it('a record signed by the old key alone is refused (a thief with the old key cannot move trust)', async () => {
    const thief = await RawPeer.create()
    raws.push(thief)
    const record = encodeSuccession(oldKeyA, undefined, { ts: Date.now(), newPeerId: thief.peerId.toString() })
    await thief.libp2p.dial(c.libp2p.getMultiaddrs()[0] ?? assert.fail('no address'))
    const reply = await thief.exchange(c.peerId, thief.frame({ type: 'succession', to: c.peerId, succession: record }))
    assert.equal(reply.type, 'error')
    assert.equal(reply.code, 'NewKeySignatureMissing')
    assert.ok(c.trust.isTrusted(oldA), 'C still trusts A')
    assert.equal(c.trust.stateOf(thief.peerId), 'none')
    // a record signed by both keys but sent by a third peer is not about the sender
    const other = await RawPeer.create()
    raws.push(other)
    const { generateKeyPair } = await import('@libp2p/crypto/keys')
    const both = encodeSuccession(oldKeyA, await generateKeyPair('Ed25519'), { ts: Date.now() })
    await other.libp2p.dial(c.libp2p.getMultiaddrs()[0] ?? assert.fail('no address'))
    const reply2 = await other.exchange(c.peerId, other.frame({ type: 'succession', to: c.peerId, succession: both }))
    assert.equal(reply2.code, 'MalformedSuccession')
    assert.ok(c.trust.isTrusted(oldA))
  })

  it('A rotates; B (strict) and C follow without operator action; messages flow to the new ID', async () => {
    await stop(a)
    const rotated = await rotateHome(homeA, { graceMs: GRACE_MS })
    newA = rotated.new
    assert.equal(rotated.old, oldA)
    assert.equal((await readFile(join(homeA, OLD_KEY_FILE))).length > 0, true)
    a = await start(homeA)
    assert.equal(a.peerId.toString(), newA, 'the node runs on the new key')
    await a.rotation.announced()
    assert.deepEqual(a.rotation.status()?.notified.sort(), [b.peerId.toString(), c.peerId.toString()].sort())
    for (const peer of [b, c]) {
      assert.equal(peer.trust.stateOf(newA), 'trusted')
      assert.equal(peer.trust.stateOf(oldA), 'revoked', 'the old ID no longer passes the gate')
      assert.match(peer.trust.get(oldA)?.note ?? '', /rotated to/)
      assert.equal(await echo(peer, newA, 'after'), 'after')
    }
    assert.equal(await new AddressBook(homeB).resolve('alice'), newA, 'petnames follow')
    assert.ok((await auditTypes(homeB)).includes('trust.succession'), 'B recorded the succession')
    assert.ok((await auditTypes(homeA)).includes('identity.succession-delivered'))
    // A still trusts B and C: its own trust store is keyed by their IDs
    assert.ok(a.trust.isTrusted(b.peerId) && a.trust.isTrusted(c.peerId))

    // group membership follows: B, the committer, swaps the old ID for the new one
    const members = (): string[] => b.groups.list().find(g => g.groupId === groupId)?.members ?? []
    await waitFor('B to swap A in the group', () => members().includes(newA) && !members().includes(oldA), 30_000)
    await waitFor('A to join on its new ID', () => a.groups.list().some(g => g.groupId === groupId && g.members.includes(newA)), 30_000)
    const received: string[] = []
    a.groups.on('received', m => { if (m.groupId === groupId) received.push(decoder.decode(m.body)) })
    await b.sendToGroup(groupId, encoder.encode('hello team'), 'text/plain')
    await waitFor('the group message on the new ID', () => received.includes('hello team'))

  })

  it('the old ID answers with a pointer during the grace period, then stops; the old key is deleted', async () => {
    const status = a.rotation.status()
    assert.ok(status !== undefined && status.oldAddresses.length > 0)
    const oldAddr = multiaddr(status.oldAddresses[0] ?? '')
    assert.equal(oldAddr.getComponents().at(-1)?.value, oldA, 'the old ID listens under its own peer ID')
    const stranger = await RawPeer.create()
    raws.push(stranger)
    const { peerIdFromString } = await import('@libp2p/peer-id')
    await stranger.libp2p.dial(oldAddr)
    const reply = await stranger.exchange(peerIdFromString(oldA), stranger.frame({ type: 'request', to: oldA, reason: 'hello' }))
    assert.equal(reply.type, 'error')
    assert.equal(reply.code, 'Moved')
    const pointer = verifySuccession(reply.message ?? '')
    assert.deepEqual([pointer.old, pointer.new, pointer.signedBy], [oldA, newA, 'both'])
    await stranger.libp2p.hangUp(peerIdFromString(oldA))

    // an agent message to the old ID gets the same pointer, in a signed `error` envelope
    const sender = await Attacker.create()
    try {
      const s = await sender.open(oldAddr)
      const frame = sender.seal({ to: peerIdFromString(oldA), service: 'echo', kind: 'request', id: 'to-the-old-id', body: encoder.encode('hi'), contentType: 'text/plain' })
      const answer = await s.exchange(frame, 'to-the-old-id')
      assert.ok(answer.type === 'message' && answer.signatureValid, 'a signed answer from the old ID')
      assert.equal(answer.error?.code, 'Moved')
      const moved = verifySuccession(answer.error?.message ?? '')
      assert.deepEqual([moved.old, moved.new], [oldA, newA])
    } finally {
      await sender.stop()
    }

    await waitFor('the end of the grace period', async () => !(await exists(join(homeA, SUCCESSION_FILE))), GRACE_MS + 10_000)
    assert.equal(await exists(join(homeA, OLD_KEY_FILE)), false, 'the old key is deleted')
    assert.equal(a.rotation.status(), undefined)
    await assert.rejects(stranger.libp2p.dial(oldAddr, { signal: AbortSignal.timeout(3000) }), 'the old ID no longer answers')
    assert.ok((await auditTypes(homeA)).includes('identity.rotation-finished'))
    assert.equal(await echo(b, newA, 'still'), 'still')
  })

  it('a committer that rotated while stopped: the next member takes over at once (term + 1) and re-adds it under its new ID', async () => {
    // A committed this group and rotated while stopped (no hand-over): B, next in
    // the succession, takes over at once instead of after the committer timeout, and swaps A's IDs; C does not
    const crew = (n: AgentNode): { committer: string, term: number, members: string[] } | undefined => n.groups.list().find(g => g.groupId === aGroupId)
    await waitFor('B to take over A\'s group and re-add A', () => crew(b)?.committer === b.peerId.toString() && (crew(b)?.members.includes(newA) ?? false) && !(crew(b)?.members.includes(oldA) ?? true), 30_000)
    assert.equal(crew(b)?.term, 2, 'the next term')
    await waitFor('C to follow B as committer', () => crew(c)?.committer === b.peerId.toString(), 30_000)
    await waitFor('A to join its former group on its new ID', () => a.groups.list().some(g => g.groupId === aGroupId), 30_000)
    const crewReceived: string[] = []
    a.groups.on('received', m => { if (m.groupId === aGroupId) crewReceived.push(decoder.decode(m.body)) })
    await c.sendToGroup(aGroupId, encoder.encode('welcome back'), 'text/plain')
    await waitFor('C\'s message on A\'s new ID', () => crewReceived.includes('welcome back'))
  })

  it('a node killed in the middle of a rotation completes it at its next start', async () => {
    const homeD = await newHome()
    let d = await start(homeD)
    await befriend(d, b)
    // E trusts D too, and is offline while D restarts
    const homeE = await newHome()
    let e = await start(homeE)
    const addrE = e.libp2p.getMultiaddrs()[0]?.toString().replace(/\/p2p\/.*$/, '') ?? assert.fail('no address')
    await befriend(d, e)
    await stop(e)
    const oldD = d.peerId.toString()
    await stop(d)
    // killed after the new key and the record were written, and after the
    // first of the two renames: identity.key is missing
    const prepared = await prepareRotation(homeD, { graceMs: GRACE_MS })
    assert.equal((await readRotation(homeD))?.state, 'prepared')
    await rename(join(homeD, 'identity.key'), join(homeD, OLD_KEY_FILE))
    d = await start(homeD)
    assert.equal(d.peerId.toString(), prepared.new, 'the restart finished the swap')
    assert.equal(await exists(join(homeD, NEXT_KEY_FILE)), false)
    assert.equal((await readRotation(homeD))?.state, 'grace')
    await d.rotation.announced()
    await waitFor('B to follow', () => b.trust.isTrusted(prepared.new))
    assert.equal(b.trust.stateOf(oldD), 'revoked')
    assert.equal(await echo(b, prepared.new, 'resumed'), 'resumed')

    // E comes back (same address): the notice reaches it at the next retry
    assert.deepEqual(d.rotation.status()?.pending, [e.peerId.toString()])
    e = await start(homeE, false, [addrE])
    assert.equal(e.trust.stateOf(oldD), 'trusted', 'E missed the notice')
    await d.rotation.announceNow()
    assert.equal(e.trust.stateOf(prepared.new), 'trusted')
    assert.equal(e.trust.stateOf(oldD), 'revoked')
    assert.equal(await echo(e, prepared.new, 'late'), 'late')
    assert.deepEqual(d.rotation.status()?.pending, [])
  })

  it('the WebRTC-direct certificate key in the keychain is re-encrypted under the new key', async () => {
    const home = await newHome()
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/udp/0/webrtc-direct'], nat: { ...quiet, webrtc: true }, relay: { reserve: false }, dht: { enabled: false } } })
    const certhash = (node: AgentNode): string | undefined => node.addresses().find(x => x.includes('/certhash/'))?.split('/certhash/')[1]?.split('/')[0]
    let node = await createAgentNode({ config, privateKey: (await loadOrCreateIdentity(home)).privateKey, home })
    await node.start()
    const before = certhash(node)
    await node.stop()
    await rotateHome(home, { graceMs: 1000 })
    node = await createAgentNode({ config, privateKey: (await loadIdentity(home)).privateKey, home })
    await node.start()
    running.add(node)
    assert.ok(before !== undefined)
    assert.equal(certhash(node), before, 'the same certificate, opened with the new key\'s pass')
    running.delete(node)
    await node.stop()
  })
})
