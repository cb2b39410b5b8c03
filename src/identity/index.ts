/**
 * @packageDocumentation
 *
 * The node's persistent identity: one Ed25519 libp2p key in the home folder.
 * The peer ID derived from it is the agent's address on the network, so the
 * key is created once, never overwritten, and refused if other users could
 * read it.
 *
 * @example
 *
 * ```ts
 * import { resolveHome, loadOrCreateIdentity } from './identity/index.ts'
 *
 * const home = resolveHome()
 * const { privateKey, peerId, created } = await loadOrCreateIdentity(home)
 * console.log(peerId.toString(), created)
 * ```
 */

import { AgentnetError } from '../errors/index.ts'
import type { ErrorCode } from '../errors/index.ts'
import { chmod, mkdir, readFile, stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pathExists, writeFileAtomic } from '../utils/fs.ts'
import { completeRotationSwap } from './succession.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'

/** File name of the private key inside the home folder */
export const KEY_FILE = 'identity.key'

export class IdentityError extends AgentnetError { override readonly code: ErrorCode = 'IdentityError' }

export class IdentityExistsError extends IdentityError { override readonly code = 'IdentityExists' }

export class MissingIdentityError extends IdentityError { override readonly code = 'MissingIdentity' }

/**
 * The home has state of a previous node (trust, audit, tokens) but no key:
 * starting would silently make this node a different peer
 */
export class IdentityLostError extends IdentityError { override readonly code = 'IdentityLost' }

export class InsecureKeyFileError extends IdentityError { override readonly code = 'InsecureKeyFile' }

export class CorruptKeyError extends IdentityError { override readonly code = 'CorruptKey' }

export interface Identity {
  privateKey: PrivateKey
  peerId: PeerId
  /** true when the key was created by this call */
  created: boolean
}

/** `--home` if given, else `$AGENTNET_HOME`, else `~/.agentnet` */
export function resolveHome (flag?: string): string {
  const chosen = flag ?? process.env.AGENTNET_HOME
  return resolve(chosen != null && chosen !== '' ? chosen : join(homedir(), '.agentnet'))
}

/**
 * Create the home folder with mode 0700, or tighten an existing one to 0700:
 * every file in it is private to the node's user.
 */
export async function ensureHome (home: string): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 })
  const info = await stat(home)
  if (!info.isDirectory()) {
    throw new IdentityError(`home ${home} is not a directory`)
  }
  if ((info.mode & 0o777) !== 0o700) {
    await chmod(home, 0o700)
  }
}

/** Create a new identity; refuses to replace an existing key */
export async function createIdentity (home: string): Promise<Identity> {
  await ensureHome(home)
  const file = join(home, KEY_FILE)
  if (await pathExists(file)) {
    throw new IdentityExistsError(`an identity already exists at ${file}; it is never overwritten`)
  }
  const privateKey = await generateKeyPair('Ed25519')
  await writeFileAtomic(file, privateKeyToProtobuf(privateKey), 0o600)
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), created: true }
}

/** Load the identity from `home`; refuses a key file that group or others can access */
export async function loadIdentity (home: string): Promise<Identity> {
  const file = join(home, KEY_FILE)
  // a key rotation interrupted between its steps completes here (src/identity/succession.ts)
  await completeRotationSwap(home)
  let info
  try {
    info = await stat(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new MissingIdentityError(`no identity in ${home}; run "agentnet init --home ${home}"`)
    }
    throw err
  }
  if ((info.mode & 0o077) !== 0) {
    throw new InsecureKeyFileError(`key file ${file} has mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}; it must be readable by its owner only (chmod 600 ${file})`)
  }
  const bytes = await readFile(file)
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(bytes)
  } catch (err) {
    throw new CorruptKeyError(`key file ${file} is corrupt: ${(err as Error).message}`)
  }
  if (privateKey.type !== 'Ed25519') {
    throw new CorruptKeyError(`key file ${file} holds a ${privateKey.type} key; agentnet needs Ed25519`)
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey), created: false }
}

export interface LoadOrCreateOptions {
  /**
   * Files (names in the home) that only a node that ran before leaves behind,
   * e.g. `trust.json`, `audit.log`. When the key is missing but one of them
   * exists, the key was lost (or the home restored without it): refuse with
   * {@link IdentityLostError} rather than come up as a different peer.
   */
  stateFiles?: readonly string[]
  /** Create a new key even when `stateFiles` exist (the operator's explicit choice) */
  newIdentity?: boolean
}

/** Load the identity, creating it first when the home holds none (see {@link LoadOrCreateOptions}) */
export async function loadOrCreateIdentity (home: string, options: LoadOrCreateOptions = {}): Promise<Identity> {
  await ensureHome(home)
  try {
    return await loadIdentity(home)
  } catch (err) {
    if (err instanceof MissingIdentityError) {
      if (options.newIdentity !== true) {
        const found: string[] = []
        for (const name of options.stateFiles ?? []) {
          if (await pathExists(join(home, name))) found.push(name)
        }
        if (found.length > 0) {
          throw new IdentityLostError(`${join(home, KEY_FILE)} is missing but ${home} holds state of a previous node (${found.join(', ')}): restore the key file, or start with --new-identity to become a new peer (peers that trusted the old one will not trust it)`)
        }
      }
      return await createIdentity(home)
    }
    throw err
  }
}

