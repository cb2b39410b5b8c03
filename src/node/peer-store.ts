import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { LevelDatastore } from 'datastore-level'
import type { Logger } from 'pino'

/** Folder in the home that holds the peer store, DHT records and the keychain */
export const PEER_STORE_DIR = 'peerstore'

/**
 * Open the node's datastore on disk: known peers and their addresses, DHT
 * records, and the keychain holding the WebRTC-direct certificate key. It is
 * a cache: when it cannot be opened (damaged files), it is removed and
 * rebuilt empty with a warning, unlike trust or tokens, which stop the node.
 */
export async function openPeerStore (home: string, logger?: Logger): Promise<LevelDatastore> {
  const path = join(home, PEER_STORE_DIR)
  const store = new LevelDatastore(path)
  try {
    await store.open()
    return store
  } catch (err) {
    logger?.warn({ path, err: (err as Error).message }, 'the peer store cannot be opened; rebuilding it empty (known peers and DHT records are relearnt)')
  }
  await rm(path, { recursive: true, force: true })
  const fresh = new LevelDatastore(path)
  await fresh.open()
  return fresh
}
