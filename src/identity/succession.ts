/**
 * Key rotation on disk: the steps of `agentnet identity rotate`, each one
 * written before the next begins, so a node killed at any point completes
 * the rotation at its next start.
 *
 * ```
 * prepare   identity.next.key (0600), then succession.json {state: "prepared"}
 * swap      identity.key → identity.old.key, identity.next.key → identity.key,
 *           fsync the home, then succession.json {state: "grace"}
 migrate   src/rotation moves what the home keeps under the node key (keychain,
 *           baseline, group state), then succession.json {migrated: true}
 * grace     the node runs on the new key; the old key answers with a pointer
 *           (src/rotation/successor.ts) and tells trusted peers until
 *           ts + graceMs; `notified` lists peers that took note
 * finish    identity.old.key and succession.json removed
 * ```
 *
 * Only the key files are handled here (this layer imports nothing above
 * it); the migrate step and the grace period belong to `src/rotation`.
 * {@link completeRotationSwap} is idempotent and runs in `loadIdentity`, so
 * whatever reads the identity after a crash sees the new key.
 *
 * @module
 */

import { readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { AgentnetError, StateWriteError } from '../errors/index.ts'
import { fsyncDir, pathExists, readStateFile, writeFileAtomic } from '../utils/fs.ts'
import { decodeSuccession, DEFAULT_GRACE_MS, encodeSuccession } from './rotation.ts'
import type { PrivateKey } from '@libp2p/interface'

/** The key in use (the same name as `KEY_FILE` of `./index.ts`) */
const KEY_FILE = 'identity.key'
/** The new key, between prepare and swap */
export const NEXT_KEY_FILE = 'identity.next.key'
/** The old key, during the grace period */
export const OLD_KEY_FILE = 'identity.old.key'
/** The rotation in progress */
export const SUCCESSION_FILE = 'succession.json'

export class RotationInProgressError extends AgentnetError { override readonly code = 'RotationInProgress' }

export class CorruptSuccessionStateError extends AgentnetError { override readonly code = 'CorruptSuccessionState' }

export interface RotationState {
  version: 1
  state: 'prepared' | 'grace'
  /** The succession record (both signatures) */
  record: string
  old: string
  new: string
  ts: number
  graceMs: number
  /** Peers that answered the succession notice with `ok` */
  notified: string[]
  /**
   * The home's state bound to the node key (keychain, baseline, group state)
   * was moved to the new key; set by `src/rotation` after the swap
   */
  migrated?: boolean
}


async function readKey (file: string): Promise<PrivateKey> {
  return privateKeyFromProtobuf(await readFile(file))
}

/** The rotation in progress, if any */
export async function readRotation (home: string): Promise<RotationState | undefined> {
  const text = await readStateFile(join(home, SUCCESSION_FILE))
  if (text === undefined) return undefined
  let state: RotationState
  try {
    state = JSON.parse(text) as RotationState
    if (state.version !== 1 || (state.state !== 'prepared' && state.state !== 'grace') || !Array.isArray(state.notified)) throw new Error('unexpected shape')
    const { succession } = decodeSuccession(state.record)
    if (succession.old !== state.old || succession.new !== state.new || succession.ts !== state.ts || succession.graceMs !== state.graceMs) throw new Error('fields differ from the record')
  } catch (err) {
    throw new CorruptSuccessionStateError(`${join(home, SUCCESSION_FILE)} is damaged (${(err as Error).message}); the rotation cannot resume`)
  }
  return state
}

export async function writeRotation (home: string, state: RotationState): Promise<void> {
  await writeFileAtomic(join(home, SUCCESSION_FILE), JSON.stringify(state, null, 2) + '\n', 0o600)
}

/**
 * Step 1: make the new key and the succession record, both on disk, the key
 * in use untouched. Refuses while another rotation is in progress.
 */
export async function prepareRotation (home: string, options: { graceMs?: number, now?: number } = {}): Promise<RotationState> {
  if (await readRotation(home) !== undefined) throw new RotationInProgressError(`a key rotation is in progress (${join(home, SUCCESSION_FILE)}); it finishes when its grace period ends`)
  const oldKey = await readKey(join(home, KEY_FILE))
  const newKey = await generateKeyPair('Ed25519')
  const ts = options.now ?? Date.now()
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS
  const record = encodeSuccession(oldKey, newKey, { ts, graceMs })
  const state: RotationState = {
    version: 1,
    state: 'prepared',
    record,
    old: peerIdFromPrivateKey(oldKey).toString(),
    new: peerIdFromPrivateKey(newKey).toString(),
    ts,
    graceMs,
    notified: []
  }
  try {
    await writeFileAtomic(join(home, NEXT_KEY_FILE), privateKeyToProtobuf(newKey), 0o600)
    await writeRotation(home, state)
  } catch (err) {
    // no succession record: the rotation did not start, and a next key without one must not linger
    await rm(join(home, NEXT_KEY_FILE), { force: true }).catch(() => {})
    throw new StateWriteError(`could not write the rotation's new key and record in ${home} (${(err as Error).message}); nothing changed, the key in use stays`, { cause: err })
  }
  return state
}

/**
 * Step 2, idempotent: put the new key in place and keep the old one for the
 * grace period. Safe to repeat after a crash between any two of its steps.
 * Does nothing when no prepared rotation exists.
 */
export async function completeRotationSwap (home: string): Promise<RotationState | undefined> {
  const state = await readRotation(home)
  if (state?.state !== 'prepared') return state
  const key = join(home, KEY_FILE)
  const next = join(home, NEXT_KEY_FILE)
  const old = join(home, OLD_KEY_FILE)
  if (await pathExists(next)) {
    // killed between the two renames, the old key is already identity.old.key
    const current = await pathExists(key) ? peerIdFromPrivateKey(await readKey(key)).toString() : undefined
    if (current === state.old) await rename(key, old)
    else if (current !== undefined && current !== state.new) throw new CorruptSuccessionStateError(`${key} is neither the old nor the new key of the rotation in progress`)
    await rename(next, key)
    await fsyncDir(home)
  }
  const swapped: RotationState = { ...state, state: 'grace' }
  await writeRotation(home, swapped)
  return swapped
}

/** Prepare and swap the keys (`src/rotation` then moves the home's key-bound state) */
export async function rotateIdentity (home: string, options: { graceMs?: number, now?: number } = {}): Promise<RotationState> {
  await prepareRotation(home, options)
  const state = await completeRotationSwap(home)
  if (state === undefined) throw new CorruptSuccessionStateError('the rotation vanished while it was being completed')
  return state
}

/** The old key, during the grace period */
export async function loadOldKey (home: string): Promise<PrivateKey | undefined> {
  try {
    return await readKey(join(home, OLD_KEY_FILE))
  } catch {
    return undefined
  }
}

/** Step 4: the grace period is over; the old key is deleted */
export async function finishRotation (home: string): Promise<void> {
  await rm(join(home, OLD_KEY_FILE), { force: true })
  await rm(join(home, SUCCESSION_FILE), { force: true })
  await fsyncDir(home)
}
