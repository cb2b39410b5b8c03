/**
 * The keychain's DEK upgrade (src/node/keychain.ts) on a real @libp2p/keychain
 * over a real LevelDatastore: a key stored under the old 10,000-round DEK is
 * moved to the current one and stays the same key, and every crash point of
 * the move is finished by the next start.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { keychain } from '@libp2p/keychain'
import { LevelDatastore } from 'datastore-level'
import { KEYCHAIN_DEK_ITERATIONS, KEYCHAIN_DEK_MARKER, keychainInit, legacyKeychainInit, quietLogger, upgradeKeychain } from '../../../src/node/index.ts'
import type { PrivateKey } from '@libp2p/interface'

const PASS = 'a-pass-derived-from-the-node-key-0123456789'
const NAME = 'webrtc-direct-certificate-private-key'
const dirs: string[] = []

async function store (): Promise<LevelDatastore> {
  const dir = await mkdtemp(join(tmpdir(), 'an-kc-'))
  dirs.push(dir)
  const ds = new LevelDatastore(dir)
  await ds.open()
  return ds
}

const components = (datastore: LevelDatastore): { datastore: LevelDatastore, logger: typeof quietLogger } => ({ datastore, logger: quietLogger })
const current = (ds: LevelDatastore): ReturnType<ReturnType<typeof keychain>> => keychain(keychainInit(PASS))(components(ds))
const legacy = (ds: LevelDatastore): ReturnType<ReturnType<typeof keychain>> => keychain(legacyKeychainInit(PASS))(components(ds))
const same = (a: PrivateKey, b: PrivateKey): boolean => a.equals(b)

describe('keychain DEK upgrade', () => {
  after(async () => { await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true }))) })

  it('the current DEK uses fewer rounds than the old one and opens nothing the old one stored', async () => {
    assert.equal(KEYCHAIN_DEK_ITERATIONS, 1000)
    assert.equal(keychainInit(PASS).dek?.iterationCount, 1000)
    assert.equal(legacyKeychainInit(PASS).dek?.iterationCount, 10_000)
    const ds = await store()
    await legacy(ds).importKey(NAME, await generateKeyPair('ECDSA', 'P-256'))
    await assert.rejects(current(ds).exportKey(NAME))
    await ds.close()
  })

  it('moves a key stored under the old DEK, keeps it the same key, and marks the keychain current', async () => {
    const ds = await store()
    const key = await generateKeyPair('ECDSA', 'P-256')
    await legacy(ds).importKey(NAME, key)
    assert.deepEqual(await upgradeKeychain(keychain, ds, PASS), [NAME])
    assert.ok(same(await current(ds).exportKey(NAME), key), 'the current DEK opens the same key')
    assert.deepEqual((await current(ds).listKeys()).map(k => k.name), [NAME], 'no side entry is left')
    assert.ok(await ds.has(KEYCHAIN_DEK_MARKER))
    // a second start does nothing (and does not try the old DEK)
    assert.deepEqual(await upgradeKeychain(keychain, ds, PASS), [])
    assert.ok(same(await current(ds).exportKey(NAME), key))
    await ds.close()
  })

  it('an empty keychain (a new home) is marked current at once', async () => {
    const ds = await store()
    assert.deepEqual(await upgradeKeychain(keychain, ds, PASS), [])
    assert.ok(await ds.has(KEYCHAIN_DEK_MARKER))
    await ds.close()
  })

  // each crash point of the move, as the datastore holds it then: the next start finishes the move
  const crashes: Array<{ at: string, left: (ds: LevelDatastore, key: PrivateKey) => Promise<unknown>, moved: string[] }> = [
    {
      at: 'after the side entry was written, before the old entry was removed: the move is made again',
      left: async (ds, key) => { await legacy(ds).importKey(NAME, key); await current(ds).importKey(`${NAME}.moving`, key) },
      moved: [NAME]
    },
    {
      at: 'after the old entry was removed, before the rename: the side entry becomes the key',
      left: async (ds, key) => current(ds).importKey(`${NAME}.moving`, key),
      moved: [NAME]
    },
    {
      at: 'after the rename, before the marker: the key is kept as it is',
      left: async (ds, key) => current(ds).importKey(NAME, key),
      moved: []
    }
  ]
  for (const crash of crashes) {
    it(`a crash ${crash.at}`, async () => {
      const ds = await store()
      const key = await generateKeyPair('ECDSA', 'P-256')
      await crash.left(ds, key)
      assert.deepEqual(await upgradeKeychain(keychain, ds, PASS), crash.moved)
      assert.ok(same(await current(ds).exportKey(NAME), key), 'the current DEK opens the same key')
      assert.deepEqual((await current(ds).listKeys()).map(k => k.name), [NAME], 'no side entry is left')
      assert.ok(await ds.has(KEYCHAIN_DEK_MARKER))
      await ds.close()
    })
  }
})
