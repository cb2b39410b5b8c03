/**
 * Invite codes: a compact signed token an inviter hands out of band. Pure
 * functions, no network. See the package doc in `index.ts` for the byte-exact
 * description.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { SIGNATURE_BYTES, signatureScheme, TRUST_SIGNATURE_SCHEME, uvarint, verifySignature } from '../protocol/index.ts'
import {
  INVITE_PAYLOAD_TYPE,
  INVITE_SECRET_BYTES,
  INVITE_VERSION,
  MAX_INVITE_ADDRESS_BYTES,
  MAX_INVITE_ADDRESSES,
  MAX_INVITE_CODE_CHARS,
  MAX_INVITE_USES
} from './constants.ts'
import { InviteInvalidError } from './errors.ts'
import type { MessageSigner, SignatureScheme } from '../protocol/index.ts'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Invite codes: domain `agentnet-trust` (as {@link TRUST_SIGNATURE_SCHEME}),
 * payload type `/agentnet/trust/invite/1.0.0`, so an invite signature is never
 * valid as a handshake signature or the other way round.
 */
export const INVITE_SIGNATURE_SCHEME: SignatureScheme = signatureScheme(TRUST_SIGNATURE_SCHEME.domain, INVITE_PAYLOAD_TYPE)

/** The content of an invite code. */
export interface Invite {
  /** The inviter; it signed the code */
  inviter: PeerId
  /** Where to dial the inviter (without the trailing `/p2p/<inviter>`) */
  addresses: Multiaddr[]
  /** ms since the epoch; the code is refused from then on */
  expiresAt: number
  /** How many peers may use it */
  uses: number
  /** Random secret ({@link INVITE_SECRET_BYTES} bytes); the inviter keeps only its SHA-256 */
  secret: Uint8Array
}


class Reader {
  private pos = 0
  private readonly bytes: Uint8Array
  constructor (bytes: Uint8Array) { this.bytes = bytes }
  get offset (): number { return this.pos }
  take (n: number): Uint8Array {
    if (n > this.bytes.length - this.pos) throw new InviteInvalidError('invite code is truncated')
    const out = this.bytes.subarray(this.pos, this.pos + n)
    this.pos += n
    return out
  }

  /** A minimally encoded uvarint of at most 8 bytes, within the safe integers. */
  uvarint (): number {
    let value = 0
    let factor = 1
    for (let i = 0; i < 8; i++) {
      const byte = this.take(1)[0] as number
      value += (byte & 0x7f) * factor
      if ((byte & 0x80) === 0) {
        if (byte === 0 && i > 0) throw new InviteInvalidError('invite code has a non-minimal integer')
        if (!Number.isSafeInteger(value)) break
        return value
      }
      factor *= 128
    }
    throw new InviteInvalidError('invite code has an integer out of range')
  }
}

function stripOwnPeer (address: Multiaddr, inviter: string): Multiaddr {
  const components = address.getComponents()
  const last = components.at(-1)
  if (last?.name === 'p2p' && last.value === inviter) {
    return address.decapsulateCode(last.code)
  }
  return address
}

/**
 * Encode and sign an invite:
 * `0x01 || secret(16) || uvarint(expiresAt) || uvarint(uses) ||
 * uvarint(len(peerId)) || peerId || uvarint(n) || n × (uvarint(len(addr)) || addr) || signature(64)`,
 * then base64url without padding. `signer` must sign with
 * {@link INVITE_SIGNATURE_SCHEME} (`createSigner(key, INVITE_SIGNATURE_SCHEME)`).
 */
export function encodeInvite (invite: Omit<Invite, 'inviter'>, signer: MessageSigner): string {
  const inviter = signer.peerId.toString()
  if (invite.secret.length !== INVITE_SECRET_BYTES) throw new InviteInvalidError(`invite secret must be ${INVITE_SECRET_BYTES} bytes`)
  if (!Number.isSafeInteger(invite.expiresAt) || invite.expiresAt <= 0) throw new InviteInvalidError('invite expiry must be a positive integer (ms)')
  if (!Number.isSafeInteger(invite.uses) || invite.uses < 1 || invite.uses > MAX_INVITE_USES) throw new InviteInvalidError(`invite uses must be 1..${MAX_INVITE_USES}`)
  const addresses = invite.addresses.map(a => stripOwnPeer(a, inviter).bytes)
  if (addresses.length > MAX_INVITE_ADDRESSES) throw new InviteInvalidError(`an invite holds at most ${MAX_INVITE_ADDRESSES} addresses`)
  const parts: number[] = [INVITE_VERSION, ...invite.secret, ...uvarint(invite.expiresAt), ...uvarint(invite.uses)]
  const peer = signer.from
  parts.push(...uvarint(peer.length), ...peer, ...uvarint(addresses.length))
  for (const a of addresses) {
    if (a.length > MAX_INVITE_ADDRESS_BYTES) throw new InviteInvalidError(`invite address longer than ${MAX_INVITE_ADDRESS_BYTES} bytes`)
    parts.push(...uvarint(a.length), ...a)
  }
  const signed = Uint8Array.from(parts)
  const signature = signer.sign(signed)
  return Buffer.concat([signed, signature]).toString('base64url')
}

/**
 * Parse an invite code and check the inviter's signature. Expiry and uses
 * are the caller's to check.
 *
 * @throws {InviteInvalidError} for anything but an intact code signed by the peer it names
 */
export function decodeInvite (code: string): Invite {
  if (typeof code !== 'string') throw new InviteInvalidError('invite code must be a string')
  code = code.trim()
  if (code.length === 0 || code.length > MAX_INVITE_CODE_CHARS || !/^[A-Za-z0-9_-]+$/.test(code)) {
    throw new InviteInvalidError('invite code is not base64url')
  }
  const bytes = Buffer.from(code, 'base64url')
  // base64url has spare bits in its last character: a code must be the one
  // canonical encoding of its bytes, or a changed character could go unnoticed
  if (bytes.toString('base64url') !== code) throw new InviteInvalidError('invite code is not canonical base64url')
  if (bytes.length < 1 + INVITE_SECRET_BYTES + SIGNATURE_BYTES + 4) throw new InviteInvalidError('invite code is truncated')
  const signed = bytes.subarray(0, bytes.length - SIGNATURE_BYTES)
  const signature = bytes.subarray(bytes.length - SIGNATURE_BYTES)
  const r = new Reader(signed)
  const version = r.take(1)[0]
  if (version !== INVITE_VERSION) throw new InviteInvalidError(`unsupported invite version ${String(version)}`)
  const secret = Uint8Array.from(r.take(INVITE_SECRET_BYTES))
  const expiresAt = r.uvarint()
  const uses = r.uvarint()
  if (expiresAt <= 0 || uses < 1 || uses > MAX_INVITE_USES) throw new InviteInvalidError('invite expiry or uses out of range')
  const peerLength = r.uvarint()
  if (peerLength > 64) throw new InviteInvalidError('invite peer ID is too long')
  const peerBytes = r.take(peerLength)
  let inviter: PeerId
  try {
    inviter = peerIdFromString(uint8ArrayToString(peerBytes, 'base58btc'))
  } catch {
    throw new InviteInvalidError('invite holds no valid peer ID')
  }
  if (inviter.type !== 'Ed25519' || !Buffer.from(inviter.toMultihash().bytes).equals(peerBytes)) {
    throw new InviteInvalidError('invite peer ID is not an Ed25519 peer ID')
  }
  const count = r.uvarint()
  if (count > MAX_INVITE_ADDRESSES) throw new InviteInvalidError('invite holds too many addresses')
  const addresses: Multiaddr[] = []
  for (let i = 0; i < count; i++) {
    const length = r.uvarint()
    if (length === 0 || length > MAX_INVITE_ADDRESS_BYTES) throw new InviteInvalidError('invite address has an invalid length')
    const raw = r.take(length)
    try {
      const address = multiaddr(Uint8Array.from(raw))
      if (!Buffer.from(address.bytes).equals(raw)) throw new Error('not canonical')
      addresses.push(address)
    } catch {
      throw new InviteInvalidError('invite holds an invalid address')
    }
  }
  if (r.offset !== signed.length) throw new InviteInvalidError('invite code has trailing bytes')
  let valid = false
  try {
    valid = verifySignature(inviter, signed, signature, INVITE_SIGNATURE_SCHEME)
  } catch {
    valid = false
  }
  if (!valid) throw new InviteInvalidError('invite signature does not verify under the inviter named in it (forged or altered)')
  return { inviter, addresses, expiresAt, uses, secret }
}
