/**
 * The group frame body codec, the peer-bound authentication service, and the
 * encrypted state store.
 */

import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createGroup } from 'ts-mls'
import { decodeBody, decodeReply, encodeBody, peerAuthenticationService, sealFrame, GroupsError } from '../../../src/groups/index.ts'
import { encodeReply } from '../../../src/groups/wire.ts'
import { createSigner, MLS_SIGNATURE_SCHEME } from '../../../src/protocol/index.ts'
import { cipherSuite, clientConfig, members, newKeyPackage } from '../../../src/groups/identity.ts'
import { GroupStore, StateWriter } from '../../../src/groups/store.ts'
import type { GroupRecord } from '../../../src/groups/store.ts'
import { successors } from '../../../src/groups/inbound.ts'

const enc = new TextEncoder()

describe('groups: frame body codec', () => {
  it('round-trips every field', () => {
    const frame = { groupId: new Uint8Array(16).fill(7), epoch: 300, term: 2 ** 40, mls: new Uint8Array([1, 2, 3]), meta: { hash: 'ab', confirm: ['x'] } }
    const back = decodeBody(encodeBody(frame))
    assert.deepEqual({ ...back, groupId: [...back.groupId], mls: [...back.mls] }, { ...frame, groupId: [...frame.groupId], mls: [1, 2, 3] })
  })

  it('refuses anything but exactly one well-formed body', () => {
    const good = encodeBody({ groupId: new Uint8Array([1]), epoch: 1, term: 1 })
    const bad = [
      new Uint8Array(0),
      Uint8Array.from([2, ...good.subarray(1)]),
      Uint8Array.from([...good, 0]),
      good.subarray(0, good.length - 1),
      encodeBody({ groupId: new Uint8Array(0) }),
      Uint8Array.from([...good.subarray(0, good.length - 1), 2, 0x7b, 0x7b])
    ]
    for (const b of bad) assert.throws(() => decodeBody(b), (err: unknown) => err instanceof GroupsError && err.code === 'MalformedGroupFrame')
  })
})

describe('groups: unsigned reply codec', () => {
  const malformed = (err: unknown): boolean => err instanceof GroupsError && err.code === 'MalformedGroupFrame'

  it('matches the vector in the README', () => {
    const bytes = encodeReply('r1', { groupId: new Uint8Array([0xaa]), epoch: 5, term: 1 })
    // 0x1a len "r1" 0x22 len body(0x01 len(1) 0xaa epoch=5 term=1 mls=0 meta=0)
    assert.equal(Buffer.from(bytes).toString('hex'), '1a0272312207' + '0101aa05010000')
    const back = decodeReply(bytes)
    assert.equal(back.inReplyTo, 'r1')
    assert.deepEqual([...back.frame.groupId], [0xaa])
    assert.equal(back.frame.epoch, 5)
    assert.equal(back.frame.term, 1)
  })

  it('round-trips an error reply with meta', () => {
    const id = '6f1c2e0a-8d7b-4c1e-9f3a-2b5d7e9c1a3f'
    const back = decodeReply(encodeReply(id, { groupId: new Uint8Array([0]), meta: { error: { code: 'WrongEpoch', message: 'x' }, epoch: 3 } }))
    assert.equal(back.inReplyTo, id)
    assert.deepEqual(back.frame.meta, { error: { code: 'WrongEpoch', message: 'x' }, epoch: 3 })
  })

  it('refuses a signed envelope, a truncated or padded reply, a bad id and a bad body', async () => {
    const key = await generateKeyPair('Ed25519')
    const signed = sealFrame(createSigner(key, MLS_SIGNATURE_SCHEME), peerIdFromPrivateKey(key), 'mls.heartbeat', { groupId: new Uint8Array([1]) }).bytes
    const good = encodeReply('r1', { groupId: new Uint8Array([1]), epoch: 1, term: 1 })
    const bad = [
      new Uint8Array(0),
      signed,
      Uint8Array.from([...good, 0]),
      good.subarray(0, good.length - 1),
      // body field missing
      good.subarray(0, 4),
      // id not UTF-8
      Uint8Array.from([0x1a, 0x01, 0xff, 0x22, 0x00]),
      // id over 128 bytes
      Uint8Array.from([0x1a, 0x81, 0x01, ...new Uint8Array(129).fill(0x61), 0x22, 0x00]),
      // a well-framed reply whose body is not a frame body
      Uint8Array.from([0x1a, 0x02, 0x72, 0x31, 0x22, 0x01, 0x02])
    ]
    for (const b of bad) assert.throws(() => decodeReply(b), malformed)
    assert.throws(() => encodeReply('x'.repeat(129), { groupId: new Uint8Array([1]) }), malformed)
  })
})

describe('groups: Welcome holders', () => {
  it('are the next members in succession after the term, among the commit\'s targets', () => {
    const list = ['a', 'b', 'c', 'd', 'e']
    // term 1 is a's; terms 2, 3, 4 are b's, c's, d's
    assert.deepEqual(successors(list, 1, ['b', 'c', 'd', 'e'], 3), ['b', 'c', 'd'])
    // term 4 (d commits): e, then a (term 6), b (term 7); c is not a target (a joiner, say)
    assert.deepEqual(successors(list, 4, ['a', 'b', 'e'], 3), ['e', 'a', 'b'])
    assert.deepEqual(successors(list, 1, ['e'], 3), ['e'])
    assert.deepEqual(successors([], 1, ['e'], 3), [])
  })
})

describe('groups: authentication service', () => {
  it('accepts a credential only with the peer key of the peer it names', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const id = peerIdFromPrivateKey(key).toString()
    const cred = { credentialType: 'basic' as const, identity: enc.encode(id) }
    assert.equal(await peerAuthenticationService.validateCredential(cred, key.publicKey.raw), true)
    assert.equal(await peerAuthenticationService.validateCredential(cred, other.publicKey.raw), false)
    assert.equal(await peerAuthenticationService.validateCredential({ credentialType: 'basic', identity: enc.encode('alice') }, key.publicKey.raw), false)
    assert.equal(await peerAuthenticationService.validateCredential({ credentialType: 'basic', identity: enc.encode(` ${id}`) }, key.publicKey.raw), false)
  })
})

/** A home with a GroupStore and a one-member group state in it, for the store tests */
async function storeFixture (fill: number) {
  const home = await mkdtemp(join(tmpdir(), 'agentnet-gstore-'))
  const key = await generateKeyPair('Ed25519')
  const peer = peerIdFromPrivateKey(key)
  const cs = await cipherSuite()
  const config = clientConfig(4)
  const kp = await newKeyPackage(key, peer, cs)
  const groupId = new Uint8Array(16).fill(fill)
  const state = await createGroup(groupId, kp.publicPackage, kp.privatePackage, [], cs, config)
  return { home, key, peer, config, groupId, state, store: new GroupStore(home, key, config), id: Buffer.from(groupId).toString('hex') }
}

describe('groups: state at rest', () => {
  it('is encrypted, authenticated and bound to its file name', async () => {
    const { home, key, peer, config, groupId, state, store, id } = await storeFixture(9)
    try {
      await store.save({ id, groupId, name: 'very secret name', creator: peer.toString(), term: 1, committer: peer.toString(), state, log: [], lastHeartbeat: 0, lastUpdate: 0 }, false)
      const [file] = await readdir(join(home, 'groups'))
      assert.equal(file, `${id}.bin`)
      const bytes = await readFile(join(home, 'groups', file))
      assert.ok(!bytes.toString('latin1').includes('very secret name'))
      assert.ok(!bytes.toString('latin1').includes(peer.toString()))
      const [loaded] = await store.loadAll(0)
      assert.equal(loaded?.name, 'very secret name')
      assert.deepEqual(members(loaded!.state), [peer.toString()])
      assert.equal(loaded?.unclean, undefined)
      // another node's key cannot read it
      await assert.rejects(new GroupStore(home, await generateKeyPair('Ed25519'), config).loadAll(0), (err: unknown) => err instanceof GroupsError && err.code === 'CorruptGroupState')
      // a flipped byte is detected
      const flipped = Buffer.from(bytes)
      flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1
      await writeFile(join(home, 'groups', file), flipped)
      await assert.rejects(store.loadAll(0), (err: unknown) => err instanceof GroupsError && err.code === 'CorruptGroupState')
      // a file renamed to another group's name is refused
      await writeFile(join(home, 'groups', file), bytes)
      await rm(join(home, 'groups', file))
      await writeFile(join(home, 'groups', `${'ab'.repeat(16)}.bin`), bytes)
      await assert.rejects(store.loadAll(0), (err: unknown) => err instanceof GroupsError && err.code === 'CorruptGroupState')
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })

  it('stages a commit\'s record beside the state: not loaded (and deleted) until promoted, one rename then', async () => {
    const { home, peer, groupId, state, store, id } = await storeFixture(6)
    try {
      const writer = new StateWriter(store, 10_000, () => true)
      const rec: GroupRecord = { id, groupId, name: 'before', creator: peer.toString(), term: 1, committer: peer.toString(), state, log: [], lastHeartbeat: 0, lastUpdate: 0 }
      await writer.save(rec)
      // the node stops (or dies) with a commit staged and not promoted: the group loads as it was, and the side file goes
      assert.equal(await writer.stage({ ...rec, name: 'after', term: 2 }), true)
      assert.deepEqual((await readdir(join(home, 'groups'))).sort(), [`${id}.bin`, `${id}.next`])
      const [loaded] = await store.loadAll(0)
      assert.deepEqual([loaded?.name, loaded?.term], ['before', 1])
      assert.deepEqual(await readdir(join(home, 'groups')), [`${id}.bin`])
      // staged, then promoted: the staged record is the state, and no side file is left
      const staged = writer.stage({ ...rec, name: 'after', term: 2 })
      Object.assign(rec, { name: 'after', term: 2 })
      await writer.promote(rec, staged, false)
      assert.deepEqual(await readdir(join(home, 'groups')), [`${id}.bin`])
      const [promoted] = await store.loadAll(0)
      assert.deepEqual([promoted?.name, promoted?.term], ['after', 2])
      // abandoned: dropped
      const abandoned = writer.stage({ ...rec, name: 'never', term: 3 })
      await writer.unstage(id, abandoned)
      assert.deepEqual(await readdir(join(home, 'groups')), [`${id}.bin`])
      assert.equal((await store.loadAll(0))[0]?.name, 'after')
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })

  it('writes the whole record when staging failed or the staged file is gone', async () => {
    const { home, peer, groupId, state, store, id } = await storeFixture(7)
    try {
      const writer = new StateWriter(store, 10_000, () => true)
      const rec: GroupRecord = { id, groupId, name: 'one', creator: peer.toString(), term: 1, committer: peer.toString(), state, log: [], lastHeartbeat: 0, lastUpdate: 0 }
      await writer.save(rec)
      Object.assign(rec, { name: 'two' })
      await writer.promote(rec, Promise.resolve(false), false)
      assert.equal((await store.loadAll(0))[0]?.name, 'two')
      const staged = writer.stage({ ...rec, name: 'three' })
      await staged
      await rm(join(home, 'groups', `${id}.next`))
      Object.assign(rec, { name: 'three' })
      await writer.promote(rec, staged, false)
      assert.equal((await store.loadAll(0))[0]?.name, 'three')
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })

  it('keeps every field and the commit log across saves, and makes the folder again if it went away', async () => {
    const { home, key, peer, groupId, state, store, id } = await storeFixture(5)
    try {
      const entry = (i: number): GroupRecord['log'][number] => ({ epoch: i, term: 1, hash: String(i), commit: new Uint8Array(100 + i).fill(i), at: i, ...(i === 2 ? { welcome: new Uint8Array([9, 9]), welcomeTo: ['x'] } : {}) })
      // a name that JSON must escape (the large base64 fields are put into the JSON as they are)
      const name = 'g "quoted" \\ ü ✓ \n\u0001'
      const rec: GroupRecord = { id, groupId, name, creator: peer.toString(), term: 3, committer: peer.toString(), state, prev: state, last: { epoch: 1, term: 3, hash: 'ab' }, log: [entry(0), entry(1)], lastHeartbeat: 0, lastUpdate: 7 }
      await store.save(rec)
      rec.log.push(entry(2))
      rec.log.shift()
      await rm(join(home, 'groups'), { recursive: true })
      await store.save(rec)
      const [loaded] = await store.loadAll(0)
      assert.equal(loaded?.name, name)
      assert.deepEqual([loaded?.term, loaded?.last, loaded?.lastUpdate, loaded?.unclean], [3, { epoch: 1, term: 3, hash: 'ab' }, 7, true])
      assert.deepEqual(members(loaded!.prev!), [peer.toString()])
      assert.deepEqual(loaded?.log.map(e => [e.epoch, [...e.commit], e.welcome === undefined ? undefined : [...e.welcome], e.welcomeTo]), [
        [1, [...entry(1).commit], undefined, undefined], [2, [...entry(2).commit], [9, 9], ['x']]
      ])
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })
})
