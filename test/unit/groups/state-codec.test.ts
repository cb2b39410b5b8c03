/**
 * The group state encoder of the store (src/groups/state-codec.ts) gives
 * ts-mls's `encodeGroupState` bytes for every state of a real group's life
 * (commits with and without a path, application messages that ratchet the
 * secret tree, historical epochs kept and dropped), also when the encodings
 * of earlier states' trees are reused, and the bytes decode back.
 */

import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createApplicationMessage, createCommit, createGroup, decodeGroupState, emptyPskIndex, encodeGroupState, joinGroup, processMessage, processPrivateMessage } from 'ts-mls'
import { cipherSuite, clientConfig, leafOf, newKeyPackage } from '../../../src/groups/identity.ts'
import { encodeState } from '../../../src/groups/state-codec.ts'
import type { ClientState } from 'ts-mls'

describe('groups: state encoding', () => {
  it('equals encodeGroupState over a group\'s life, and decodes back', async () => {
    const cs = await cipherSuite()
    const config = clientConfig(2)
    const keys = await Promise.all([0, 1, 2, 3].map(async () => generateKeyPair('Ed25519')))
    const kps = await Promise.all(keys.map(async k => newKeyPackage(k, peerIdFromPrivateKey(k), cs)))
    let a = await createGroup(new Uint8Array(16).fill(9), kps[0]!.publicPackage, kps[0]!.privatePackage, [], cs, config)
    const seen: ClientState[] = []
    const check = (s: ClientState): void => {
      seen.push(s)
      // every state seen so far, again: the reused encodings must still be right
      for (const x of seen) assert.deepEqual(encodeState(x), encodeGroupState(x))
      const back = decodeGroupState(encodeState(s), 0)?.[0]
      assert.ok(back)
      assert.deepEqual(encodeGroupState(back), encodeGroupState(s))
    }
    check(a)
    const add = await createCommit({ state: a, cipherSuite: cs }, { extraProposals: [1, 2].map(i => ({ proposalType: 'add' as const, add: { keyPackage: kps[i]!.publicPackage } })), ratchetTreeExtension: true })
    a = add.newState
    check(a)
    let b = await joinGroup(add.welcome!, kps[1]!.publicPackage, kps[1]!.privatePackage, emptyPskIndex, cs, undefined, undefined, config)
    check(b)
    for (let round = 0; round < 5; round++) {
      // application messages ratchet the sender's and the receiver's secret trees
      const msg = await createApplicationMessage(a, new Uint8Array([round]), cs)
      a = msg.newState
      check(a)
      const got = await processPrivateMessage(b, msg.privateMessage, emptyPskIndex, cs)
      assert.equal(got.kind, 'applicationMessage')
      b = got.newState
      check(b)
      // an empty commit (with a path) moves to a new epoch; the old one becomes historical (two kept)
      const c = await createCommit({ state: a, cipherSuite: cs })
      a = c.newState
      check(a)
      assert.equal(c.commit.wireformat, 'mls_private_message')
      if (c.commit.wireformat !== 'mls_private_message') return
      const next = await processMessage(c.commit, b, emptyPskIndex, () => 'accept', cs)
      assert.equal(next.kind, 'newState')
      b = next.newState
      check(b)
    }
    assert.equal(a.historicalReceiverData.size, 2)
    // a remove (with a path) and an add (without)
    const rm = await createCommit({ state: a, cipherSuite: cs }, { extraProposals: [{ proposalType: 'remove', remove: { removed: leafOf(a, peerIdFromPrivateKey(keys[2]!).toString())! } }] })
    check(rm.newState)
    const add2 = await createCommit({ state: rm.newState, cipherSuite: cs }, { extraProposals: [{ proposalType: 'add', add: { keyPackage: kps[3]!.publicPackage } }], ratchetTreeExtension: true })
    check(add2.newState)
  })
})
