/**
 * Key rotation on disk: the steps of `agentnet identity rotate`, each one
 * written before the next begins, so a node killed at any point completes
 * the rotation at its next start.
 *
 * ```
 * prepare   identity.next.key (0600), then succession.json {state: "prepared"}
 * swap      identity.key → identity.old.key, identity.next.key → identity.key,
 *           fsync the home, then succession.json {state: "grace"}
 * grace     the node runs on the new key; the old key answers with a pointer
 *           (src/identity/successor.ts) and tells trusted peers until
 *           ts + graceMs; `notified` lists peers that took note
 * finish    identity.old.key and succession.json removed
 * ```
 *
 * {@link completeRotationSwap} is idempotent and runs in `loadIdentity`, so
 * whatever reads the identity after a crash sees the new key.
 *
 * @module
 */

import { readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { AgentnetError } from '../errors/index.ts'
import { fsyncDir, readStateFile, writeFileAtomic } from '../utils/fs.ts'
import { STATE_DIR } from '../groups/constants.ts'
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
/** The old ID's group state, during the grace period */
export const OLD_GROUPS_DIR = `${STATE_DIR}.old`

export class RotationInProgressError extends AgentnetError {
  override readonly code = 'RotationInProgress'
}

export class CorruptSuccessionStateError extends AgentnetError {
  override readonly code = 'CorruptSuccessionState'
}

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
}

async function exists (file: string): Promise<boolean> {
  try {
    await stat(file)
    return true
  } catch {
    return false
  }
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
  await writeFileAtomic(join(home, NEXT_KEY_FILE), privateKeyToProtobuf(newKey), 0o600)
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
  await writeRotation(home, state)
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
  if (await exists(next)) {
    // killed between the two renames, the old key is already identity.old.key
    const oldKey = await readKey(await exists(key) ? key : old)
    const newKey = await readKey(next)
    await rekeyKeychain(home, oldKey, newKey)
    await resignBaseline(home, oldKey, newKey)
    // MLS group state is the old ID's membership, encrypted under the old key:
    // set aside (the committers add the new ID, which joins by Welcome) and deleted with the old key
    if (await exists(join(home, STATE_DIR)) && !await exists(join(home, OLD_GROUPS_DIR))) await rename(join(home, STATE_DIR), join(home, OLD_GROUPS_DIR))
    const current = await exists(key) ? peerIdFromPrivateKey(await readKey(key)).toString() : undefined
    if (current === state.old) await rename(key, old)
    else if (current !== undefined && current !== state.new) throw new CorruptSuccessionStateError(`${key} is neither the old nor the new key of the rotation in progress`)
    await rename(next, key)
    await fsyncDir(home)
  }
  const swapped: RotationState = { ...state, state: 'grace' }
  await writeRotation(home, swapped)
  return swapped
}

/* eslint-disable @typescript-eslint/no-empty-function */
const silent = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })
const quietLogger = { forComponent: () => silent }

/**
 * The keychain in the peer store (the WebRTC-direct certificate key) is
 * encrypted under a pass derived from the node key: re-encrypt it under the
 * new key's pass. Idempotent (a key already under the new pass is kept); a
 * key neither pass opens is dropped, and WebRTC-direct makes a new one.
 */
async function rekeyKeychain (home: string, oldKey: PrivateKey, newKey: PrivateKey): Promise<void> {
  if (!await exists(join(home, 'peerstore'))) return
  const { keychainPassFor, openPeerStore } = await import('../node/peer-store.ts')
  const { keychain } = await import('@libp2p/keychain')
  const store = await openPeerStore(home)
  try {
    const components = { datastore: store, logger: quietLogger } as unknown as Parameters<ReturnType<typeof keychain>>[0]
    const before = keychain({ pass: keychainPassFor(oldKey) })(components)
    const after = keychain({ pass: keychainPassFor(newKey) })(components)
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
  const { BASELINE_FILE } = await import('../posture/constants.ts')
  const file = join(home, BASELINE_FILE)
  const text = await readStateFile(file)
  if (text === undefined) return
  const { checkBaseline, encodeBaseline } = await import('../posture/baseline.ts')
  const check = checkBaseline(text, peerIdFromPrivateKey(oldKey).toString())
  if (check.status !== 'intact' || check.baseline === undefined) return
  await writeFileAtomic(file, encodeBaseline(check.baseline.posture, newKey, check.baseline.recordedAt), 0o600)
}

/** Prepare and swap: the whole of `agentnet identity rotate` (the node is stopped) */
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
  await rm(join(home, OLD_GROUPS_DIR), { recursive: true, force: true })
  await rm(join(home, SUCCESSION_FILE), { force: true })
  await fsyncDir(home)
}
