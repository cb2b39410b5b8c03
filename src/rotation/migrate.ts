/**
 * The migrate step of a key rotation (see `src/identity/succession.ts` for
 * the whole sequence): after the keys are swapped, what the home keeps under
 * the node key moves to the new key, each part idempotent, then
 * `succession.json` records `migrated: true`. Runs from `agentnet identity
 * rotate` and again at every node start until it is recorded, so a process
 * killed at any point completes it.
 *
 * @module
 */

import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { STATE_DIR } from '../groups/constants.ts'
import { completeRotationSwap, CorruptSuccessionStateError, finishRotation as finishKeys, loadOldKey, prepareRotation, writeRotation } from '../identity/succession.ts'
import { loadIdentity } from '../identity/index.ts'
import { keychainInit, keychainPassFor, openPeerStore, quietLogger, upgradeKeychain } from '../node/index.ts'
import { BASELINE_FILE } from '../posture/constants.ts'
import { checkBaseline, encodeBaseline } from '../posture/baseline.ts'
import { fsyncDir, pathExists, readStateFile, writeFileAtomic } from '../utils/fs.ts'
import type { RotationState } from '../identity/succession.ts'
import type { PrivateKey } from '@libp2p/interface'

/** The old ID's group state, during the grace period */
export const OLD_GROUPS_DIR = `${STATE_DIR}.old`


/**
 * The keychain in the peer store (the WebRTC-direct certificate key) is
 * encrypted under a pass derived from the node key: re-encrypt it under the
 * new key's pass. Idempotent (a key already under the new pass is kept); a
 * key neither pass opens is dropped, and WebRTC-direct makes a new one.
 */
async function rekeyKeychain (home: string, oldKey: PrivateKey, newKey: PrivateKey): Promise<void> {
  if (!await pathExists(join(home, 'peerstore'))) return
  // imported here, not with the module: this module is loaded at every start, a rotation is rare
  const { keychain } = await import('@libp2p/keychain')
  const store = await openPeerStore(home)
  try {
    const components = { datastore: store, logger: quietLogger }
    // the old key's keychain may still be under the keychain's old DEK (a home from before keychain.ts's rounds)
    await upgradeKeychain(keychain, store, keychainPassFor(oldKey))
    const before = keychain(keychainInit(keychainPassFor(oldKey)))(components)
    const after = keychain(keychainInit(keychainPassFor(newKey)))(components)
    for (const { name } of await before.listKeys()) {
      try {
        const key = await before.exportKey(name)
        await after.removeKey(name)
        await after.importKey(name, key)
      } catch {
        const kept = await after.exportKey(name).then(() => true, () => false)
        if (!kept) await after.removeKey(name).catch(() => {})
      }
    }
  } finally {
    await store.close()
  }
}

/**
 * The approved posture baseline (`agentnet doctor --record-baseline`) is
 * signed by the node key: one intact under the old key is signed again by the
 * new key, unchanged, so `doctor` does not report the rotation as tampering.
 * Anything else (absent, already re-signed, tampered) is left as it is.
 */
async function resignBaseline (home: string, oldKey: PrivateKey, newKey: PrivateKey): Promise<void> {
  const file = join(home, BASELINE_FILE)
  const text = await readStateFile(file)
  if (text === undefined) return
  const check = checkBaseline(text, peerIdFromPrivateKey(oldKey).toString())
  if (check.status !== 'intact' || check.baseline === undefined) return
  await writeFileAtomic(file, encodeBaseline(check.baseline.posture, newKey, check.baseline.recordedAt), 0o600)
}

/**
 * Complete the swap (if a crash interrupted it) and move the key-bound state
 * of the home to the new key. Idempotent; does nothing without a rotation in
 * progress. Call before the node opens its peer store and group state.
 */
export async function migrateHome (home: string): Promise<RotationState | undefined> {
  const state = await completeRotationSwap(home)
  if (state === undefined || state.migrated === true) return state
  const oldKey = await loadOldKey(home)
  const { privateKey: newKey } = await loadIdentity(home)
  if (peerIdFromPrivateKey(newKey).toString() !== state.new) throw new CorruptSuccessionStateError(`the key in ${home} is not the new key of the rotation in progress`)
  if (oldKey !== undefined) {
    await rekeyKeychain(home, oldKey, newKey)
    await resignBaseline(home, oldKey, newKey)
  }
  // MLS group state is the old ID's membership, encrypted under the old key:
  // set aside (the committers add the new ID, which joins by Welcome) and deleted with the old key
  if (await pathExists(join(home, STATE_DIR)) && !await pathExists(join(home, OLD_GROUPS_DIR))) {
    await rename(join(home, STATE_DIR), join(home, OLD_GROUPS_DIR))
    await fsyncDir(home)
  }
  const migrated: RotationState = { ...state, migrated: true }
  await writeRotation(home, migrated)
  return migrated
}

/**
 * The whole of a rotation on disk: prepare (new key and record), swap, migrate.
 * The node is stopped, or stops before this and starts again on the new key after.
 */
export async function rotateHome (home: string, options: { graceMs?: number, now?: number } = {}): Promise<RotationState> {
  await prepareRotation(home, options)
  const state = await migrateHome(home)
  if (state === undefined) throw new CorruptSuccessionStateError('the rotation vanished while it was being completed')
  return state
}

/** The grace period is over: the old key and the old ID's group state are deleted */
export async function finishRotation (home: string): Promise<void> {
  await rm(join(home, OLD_GROUPS_DIR), { recursive: true, force: true })
  await finishKeys(home)
}
