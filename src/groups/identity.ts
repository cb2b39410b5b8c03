/**
 * MLS identities bound to libp2p peer IDs.
 *
 * A member's MLS credential is a basic credential whose identity is its peer
 * ID (UTF-8 of the base58 string), and its leaf signature key is the peer's
 * own Ed25519 key: ts-mls accepts a raw 32-byte Ed25519 seed as the
 * signature key, so no second key and no binding signature are needed. The
 * {@link peerAuthenticationService} replaces ts-mls's default (which accepts
 * anything): a credential is valid only if its identity parses as an Ed25519
 * peer ID whose public key equals the leaf's signature key. MLS signatures
 * (`SignWithLabel`, prefix "MLS 1.0 ") and agentnet signatures (prefix
 * `uvarint(len) || "agentnet-…"`) have disjoint inputs, so one key serves both.
 *
 * @module
 */

import { peerIdFromString } from '@libp2p/peer-id'
import {
  defaultCapabilities, defaultLifetime, defaultKeyRetentionConfig, defaultLifetimeConfig,
  defaultKeyPackageEqualityConfig, defaultPaddingConfig, generateKeyPackageWithKey, getCiphersuiteFromName, getCiphersuiteImpl
} from 'ts-mls'
import { CIPHER_SUITE } from './constants.ts'
import { nodeCryptoProvider } from './crypto.ts'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { AuthenticationService, CiphersuiteImpl, ClientConfig, ClientState, Credential, KeyPackage, PrivateKeyPackage } from 'ts-mls'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** The suite implementation: node:crypto's synchronous primitives (crypto.ts says why not ts-mls's WebCrypto default). */
export async function cipherSuite (): Promise<CiphersuiteImpl> {
  return getCiphersuiteImpl(getCiphersuiteFromName(CIPHER_SUITE), nodeCryptoProvider)
}

/** credential → the peer it names: members() runs on every inbound frame, and parsing 100 peer IDs each time showed in profiles */
const namedPeers = new WeakMap<Credential, string | null>()

/** The peer ID a credential names, or undefined when it names none. */
export function credentialPeer (credential: Credential): string | undefined {
  const known = namedPeers.get(credential)
  if (known !== undefined) return known ?? undefined
  const peer = parseCredentialPeer(credential)
  namedPeers.set(credential, peer ?? null)
  return peer
}

function parseCredentialPeer (credential: Credential): string | undefined {
  if (credential.credentialType !== 'basic') return undefined
  try {
    const text = decoder.decode(credential.identity)
    const peer = peerIdFromString(text)
    return peer.type === 'Ed25519' && peer.toString() === text ? text : undefined
  } catch {
    return undefined
  }
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i])
}

/** Accepts a credential only if it names an Ed25519 peer whose key is the leaf's signature key. */
export const peerAuthenticationService: AuthenticationService = {
  async validateCredential (credential: Credential, signaturePublicKey: Uint8Array): Promise<boolean> {
    const id = credentialPeer(credential)
    if (id === undefined) return false
    const key = peerIdFromString(id).publicKey
    return key !== undefined && equal(key.raw, signaturePublicKey)
  }
}

/** The ts-mls client configuration of every group. */
export function clientConfig (retainEpochs: number): ClientConfig {
  return {
    keyRetentionConfig: { ...defaultKeyRetentionConfig, retainKeysForEpochs: retainEpochs },
    lifetimeConfig: defaultLifetimeConfig,
    keyPackageEqualityConfig: defaultKeyPackageEqualityConfig,
    paddingConfig: defaultPaddingConfig,
    authService: peerAuthenticationService
  }
}

/** A fresh key package for this node, signed with its peer key. */
export async function newKeyPackage (privateKey: PrivateKey, peerId: PeerId, impl: CiphersuiteImpl): Promise<{ publicPackage: KeyPackage, privatePackage: PrivateKeyPackage }> {
  return generateKeyPackageWithKey(
    { credentialType: 'basic', identity: encoder.encode(peerId.toString()) },
    defaultCapabilities(), defaultLifetime, [],
    { signKey: privateKey.raw.subarray(0, 32), publicKey: privateKey.publicKey.raw },
    impl
  )
}

/**
 * ratchet tree → its members: members() runs several times per inbound frame
 * (member check, committer of a term, rank); ts-mls copies a tree to change
 * it, so one array always has the same members.
 */
const treeLeaves = new WeakMap<ClientState['ratchetTree'], ReadonlyArray<{ index: number, peer: string }>>()

/** Members in leaf order (the succession order): leaf index and peer ID. */
export function leaves (state: ClientState): ReadonlyArray<{ index: number, peer: string }> {
  const known = treeLeaves.get(state.ratchetTree)
  if (known !== undefined) return known
  const out: Array<{ index: number, peer: string }> = []
  state.ratchetTree.forEach((node, i) => {
    if (node?.nodeType === 'leaf') {
      const peer = credentialPeer(node.leaf.credential)
      if (peer !== undefined) out.push({ index: i / 2, peer })
    }
  })
  treeLeaves.set(state.ratchetTree, out)
  return out
}

/** The peer IDs of the members, in leaf order. */
export function members (state: ClientState): string[] {
  return leaves(state).map(l => l.peer)
}

/** The leaf index of `peer`, if it is a member. */
export function leafOf (state: ClientState, peer: string): number | undefined {
  return leaves(state).find(l => l.peer === peer)?.index
}

/** Whether a key package's credential names `peer` (key packages from the wire must name the peer that sent them). */
export function keyPackagePeer (kp: KeyPackage): string | undefined {
  return credentialPeer(kp.leafNode.credential)
}
