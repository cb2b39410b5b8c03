/**
 * The keychain that keeps the WebRTC-direct certificate key: @libp2p/keychain
 * over the peer store, its pass derived from the node key
 * ({@link keychainPassFor}).
 *
 * The keychain turns its pass into the key that encrypts what it stores (its
 * DEK) with PBKDF2, by default 10,000 rounds of PBKDF2-SHA512 in JavaScript:
 * 35–60 ms of CPU at every start of a node that listens on WebRTC-direct.
 * Stretching protects a password a person chose; this pass is 256 bits from
 * HKDF over the node key, which no number of rounds makes harder to guess. The
 * node opens the keychain with 1,000 rounds, the least the keychain accepts
 * (NIST SP 800-132), and leaves everything else of the keychain's default.
 *
 * A home from before this change holds its key under the 10,000-round DEK:
 * {@link upgradeKeychain} moves it over once, before libp2p starts, so the
 * certificate (and so the certhash peers dialled) stays the same. The move is
 * crash-safe: the key is imported under a side name, the old entry removed,
 * the side entry renamed; a start after a crash between those steps finishes
 * them. A marker in the datastore records that the keychain is current, so a
 * start does not have to try the old DEK (a failed export waits out the
 * keychain's 200–1000 ms anti-guessing delay).
 *
 * @module
 */

import { hkdfSync } from 'node:crypto'
import { Key } from 'interface-datastore'
import type { ComponentLogger, PrivateKey } from '@libp2p/interface'
import type { Keychain, KeychainInit, DEKConfig } from '@libp2p/keychain'
import type { Datastore } from 'interface-datastore'

/** PBKDF2 rounds of the keychain's DEK: the least @libp2p/keychain accepts (see the module doc) */
export const KEYCHAIN_DEK_ITERATIONS = 1000

/** @libp2p/keychain's DEK settings before this change (its defaults) */
const LEGACY_DEK: DEKConfig = {
  keyLength: 512 / 8,
  iterationCount: 10_000,
  salt: 'you should override this value with a crypto secure random number',
  hash: 'sha2-512'
}

/** Datastore key that marks the keychain's entries as under {@link KEYCHAIN_DEK_ITERATIONS} rounds */
export const KEYCHAIN_DEK_MARKER = new Key('/agentnet/keychain/dek-iterations')

/** Suffix of a key's side name while it moves to the current DEK */
const MOVING_SUFFIX = '.moving'

/**
 * The keychain's pass phrase, derived from the node key so the certificate key
 * is encrypted at rest and needs no second secret (HKDF-SHA256, own label)
 */
export function keychainPassFor (privateKey: PrivateKey): string {
  return Buffer.from(hkdfSync('sha256', privateKey.raw, new Uint8Array(0), 'agentnet/keychain/v1', 32)).toString('base64url')
}

/** The keychain options of a node: `pass` and the current DEK (only its rounds differ from the default). */
export function keychainInit (pass: string): KeychainInit {
  return { pass, dek: { ...LEGACY_DEK, iterationCount: KEYCHAIN_DEK_ITERATIONS } }
}

/** The keychain options of a home from before {@link KEYCHAIN_DEK_ITERATIONS}. */
export function legacyKeychainInit (pass: string): KeychainInit {
  return { pass, dek: { ...LEGACY_DEK } }
}

/** @libp2p/keychain's factory (imported by the caller, so that a node without a keychain never loads it) */
export type KeychainFactory = (init?: KeychainInit) => (components: { datastore: Datastore, logger: ComponentLogger }) => Keychain

/* eslint-disable @typescript-eslint/no-empty-function */
const silent = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })
/** The keychain logs a failed export as an error; here a failure is an expected answer. */
export const quietLogger = { forComponent: () => silent } as unknown as ComponentLogger

/**
 * Move the keychain's keys to the current DEK if they are not yet (see the
 * module doc). Returns the names of the keys moved. A key that neither DEK
 * opens is left as it is: the transport then reports it, as before.
 */
export async function upgradeKeychain (make: KeychainFactory, datastore: Datastore, pass: string): Promise<string[]> {
  if (await datastore.has(KEYCHAIN_DEK_MARKER)) return []
  const components = { datastore, logger: quietLogger }
  const current = make(keychainInit(pass))(components)
  const names = new Set((await current.listKeys()).map(k => k.name))
  const moved: string[] = []
  let legacy: Keychain | undefined
  for (const name of names) {
    // a side entry is handled below; 'self' is the keychain's own name, which it refuses to remove (libp2p stores no key there)
    if (name.endsWith(MOVING_SUFFIX) || name === 'self') continue
    const side = name + MOVING_SUFFIX
    legacy ??= make(legacyKeychainInit(pass))(components)
    const key = await legacy.exportKey(name).catch(() => undefined)
    // already under the current DEK (a crash after the rename, before the marker), or under neither
    if (key === undefined) continue
    // a side entry left by a crash before the old entry was removed: made from this same key, made again
    if (names.has(side)) await current.removeKey(side)
    await current.importKey(side, key)
    await current.removeKey(name)
    await current.renameKey(side, name)
    names.delete(side)
    moved.push(name)
  }
  // a crash after the old entry was removed, before the rename: the side entry is the key
  for (const name of names) {
    if (!name.endsWith(MOVING_SUFFIX)) continue
    const original = name.slice(0, -MOVING_SUFFIX.length)
    if (names.has(original)) continue
    await current.renameKey(name, original)
    moved.push(original)
  }
  await datastore.put(KEYCHAIN_DEK_MARKER, new TextEncoder().encode(String(KEYCHAIN_DEK_ITERATIONS)))
  return moved
}
