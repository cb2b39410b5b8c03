import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Libp2pRecord } from '@libp2p/record'
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { cardKey, createCardValidator, decodeCard, encodeCard, InvalidCardError, MAX_CARD_BYTES, selectCard, StaleCardError } from '../../src/cards/index.ts'

const content = { name: 'translator', services: ['translate'], metadata: { languages: ['fr', 'en'] } }

describe('agent cards', async () => {
  const key = await generateKeyPair('Ed25519')
  const peer = peerIdFromPrivateKey(key)
  const otherKey = await generateKeyPair('Ed25519')
  const other = peerIdFromPrivateKey(otherKey)

  it('round-trips a card signed by its peer', () => {
    const card = decodeCard(cardKey(peer), encodeCard(content, key, 5))
    assert.deepEqual(card, { peerId: peer.toString(), seq: 5, ...content })
  })

  it('refuses a card stored under another peer\'s key (forged for that peer)', async () => {
    const forged = encodeCard(content, otherKey, 9)
    assert.throws(() => decodeCard(cardKey(peer), forged), InvalidCardError)
    await assert.rejects(createCardValidator()(cardKey(peer), forged), InvalidCardError)
  })

  it('refuses a card whose bytes were altered', () => {
    const value = encodeCard(content, key, 5)
    for (const i of [3, 20, value.length - 1]) {
      const altered = Uint8Array.from(value)
      altered[i] = (altered[i] as number) ^ 1
      assert.throws(() => decodeCard(cardKey(peer), altered), InvalidCardError, `byte ${i}`)
    }
  })

  it('refuses oversized cards on both sides', () => {
    assert.throws(() => encodeCard({ ...content, metadata: { blob: 'x'.repeat(MAX_CARD_BYTES) } }, key, 1), InvalidCardError)
    assert.throws(() => decodeCard(cardKey(peer), new Uint8Array(MAX_CARD_BYTES + 1)), InvalidCardError)
    assert.throws(() => encodeCard({ ...content, name: 'n'.repeat(65) }, key, 1), InvalidCardError)
  })

  it('a DHT node refuses a card older than the one it stores; the selector picks the newest', async () => {
    const datastore = new MemoryDatastore()
    const validate = createCardValidator(datastore)
    const newer = encodeCard(content, key, 200)
    const older = encodeCard({ ...content, name: 'old' }, key, 100)
    await validate(cardKey(peer), newer)
    const record = new Libp2pRecord(cardKey(peer), newer, new Date())
    await datastore.put(new Key(`/dht/record/${uint8ArrayToString(cardKey(peer), 'base32')}`, false), record.serialize())
    await assert.rejects(validate(cardKey(peer), older), StaleCardError)
    await validate(cardKey(peer), encodeCard(content, key, 300))
    assert.equal(selectCard(cardKey(peer), [older, newer, older]), 1)
    assert.equal(other.toString() === peer.toString(), false)
  })
})
