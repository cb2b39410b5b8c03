import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { AddressBook } from '../../src/addressbook/index.ts'

const newPeer = async (): Promise<string> => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()

describe('address book: namesOf (asked for every outbound message)', () => {
  const homes: string[] = []
  after(async () => { await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true }))) })

  it("sees this instance's own writes at once", async () => {
    const home = await mkdtemp(join(tmpdir(), 'agentnet-book-'))
    homes.push(home)
    const book = new AddressBook(home)
    const bank = await newPeer()
    assert.deepEqual(await book.namesOf(bank), [])
    await book.add('bank', bank)
    assert.deepEqual(await book.namesOf(bank), ['bank'])
    await book.add('savings', bank)
    assert.deepEqual((await book.namesOf(bank)).sort(), ['bank', 'savings'])
    await book.remove('bank')
    assert.deepEqual(await book.namesOf(bank), ['savings'])
  })

  it("sees another process's write (another instance on the same home) within the re-check interval", async () => {
    const home = await mkdtemp(join(tmpdir(), 'agentnet-book-'))
    homes.push(home)
    const node = new AddressBook(home)
    const cli = new AddressBook(home)
    const peer = await newPeer()
    assert.deepEqual(await node.namesOf(peer), [])
    await cli.add('travel', peer)
    const deadline = Date.now() + 5000
    let names: string[] = []
    while (Date.now() < deadline) {
      names = await node.namesOf(peer)
      if (names.length > 0) break
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    assert.deepEqual(names, ['travel'])
  })
})
