/**
 * Invites: issuing and withdrawing codes, using one (invitee side), and
 * honouring one presented over the handshake (inviter side).
 *
 * @module
 */

import { createHash, randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { createSigner, InvalidArgumentError } from '../protocol/index.ts'
import { errorCodeOf } from '../errors/index.ts'
import { DEFAULT_INVITE_TTL_MS, DEFAULT_INVITE_USES, INVITE_SECRET_BYTES, MAX_INVITE_ADDRESSES, MAX_INVITE_TTL_MS, MAX_INVITE_USES } from './constants.ts'
import {
  HandshakeRefusedError,
  InviteExpiredError,
  InviteInvalidError,
  InviteLimitError,
  InviteUsedUpError,
  RefusedError,
  TrustError
} from './errors.ts'
import { decodeInvite, encodeInvite, INVITE_SIGNATURE_SCHEME } from './invite-code.ts'
import type { HandshakeMessage } from './codec.ts'
import type { TrustContext } from './context.ts'
import type { Answer, TrustProtocol } from './handshake.ts'
import type { AcceptedInvite, CreatedInvite, CreateInviteOptions, TrustAbortOptions } from './index.ts'
import type { MessageSigner } from '../protocol/index.ts'
import type { Multiaddr } from '@multiformats/multiaddr'

/** An invite's name in the store and the audit log: the hex SHA-256 of its secret. */
export function inviteId (secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest('hex')
}

export class TrustInvites {
  private readonly ctx: TrustContext
  private readonly signer: MessageSigner
  /** Set once the protocol exists (it needs {@link onInvite}) */
  protocol: TrustProtocol | undefined

  constructor (ctx: TrustContext) {
    this.ctx = ctx
    this.signer = createSigner(ctx.components.privateKey, INVITE_SIGNATURE_SCHEME)
  }

  /**
   * Issue an invite code: signed by this node, naming its peer ID and
   * addresses, an expiry and a number of uses, with a random secret. The
   * invite (by the SHA-256 of its secret) and its uses left are persisted
   * before the code is returned.
   *
   * @throws {InvalidArgumentError} on an invalid ttl, uses or address
   * @throws {InviteLimitError} when `maxInvites` live invites exist
   */
  async create (options: CreateInviteOptions = {}): Promise<CreatedInvite> {
    const { records } = this.ctx
    const ttlMs = options.ttlMs ?? DEFAULT_INVITE_TTL_MS
    const uses = options.uses ?? DEFAULT_INVITE_USES
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_INVITE_TTL_MS) throw new InvalidArgumentError(`ttlMs must be an integer in 1..${MAX_INVITE_TTL_MS}`)
    if (!Number.isSafeInteger(uses) || uses < 1 || uses > MAX_INVITE_USES) throw new InvalidArgumentError(`uses must be an integer in 1..${MAX_INVITE_USES}`)
    let addresses: Multiaddr[]
    try {
      addresses = (options.addresses ?? this.ctx.components.libp2p.getMultiaddrs()).map(a => typeof a === 'string' ? multiaddr(a) : a)
    } catch (err) {
      throw new InvalidArgumentError(`invalid invite address: ${(err as Error).message}`)
    }
    if (options.addresses !== undefined && addresses.length > MAX_INVITE_ADDRESSES) throw new InvalidArgumentError(`an invite holds at most ${MAX_INVITE_ADDRESSES} addresses`)
    addresses = addresses.slice(0, MAX_INVITE_ADDRESSES)
    const now = this.ctx.now()
    records.purgeInvites(now)
    if (records.invites.size >= this.ctx.init.maxInvites) throw new InviteLimitError(`this node already holds ${records.invites.size} live invites`)
    const secret = Uint8Array.from(randomBytes(INVITE_SECRET_BYTES))
    const expiresAt = now + ttlMs
    let code: string
    try {
      code = encodeInvite({ secret, expiresAt, uses, addresses }, this.signer)
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message)
    }
    const id = inviteId(secret)
    records.invites.set(id, { createdAt: now, expiresAt, uses, usesLeft: uses, usedBy: [] })
    await records.writeOr(() => { records.invites.delete(id) }, async () => { await records.persist() })
    const shown = decodeInvite(code).addresses.map(a => a.toString())
    await this.ctx.audit('trust.invite-created', undefined, { invite: id, expiresAt, uses, addresses: shown })
    return { code, id, expiresAt, uses, addresses: shown }
  }

  /** Withdraw an invite this node issued (by its id). @returns whether it existed */
  async cancel (id: string): Promise<boolean> {
    const records = this.ctx.records
    const invite = records.invites.get(id)
    if (invite === undefined || !records.invites.delete(id)) return false
    await records.writeOr(() => { records.invites.set(id, invite) }, async () => { await records.persist() })
    await this.ctx.audit('trust.invite-cancelled', undefined, { invite: id })
    return true
  }

  /**
   * Use an invite code: check it locally (signature under the peer ID it
   * names, expiry), dial the inviter at the addresses it holds, present it
   * (in a message signed by this node), and trust the inviter once it
   * answers with its approval.
   *
   * @throws {InviteInvalidError} | {InviteExpiredError} | {InviteUsedUpError} (locally or from the inviter)
   * @throws {PeerUnreachableError}
   */
  async accept (code: string, options: TrustAbortOptions = {}): Promise<AcceptedInvite> {
    const { records } = this.ctx
    const invite = decodeInvite(code)
    const id = invite.inviter.toString()
    if (invite.inviter.equals(this.ctx.self)) throw new InviteInvalidError('this is an invite of this node itself')
    if (invite.expiresAt <= this.ctx.now()) throw new InviteExpiredError(`the invite expired at ${new Date(invite.expiresAt).toISOString()}`)
    const addresses = invite.addresses.map(a => a.toString())
    let reply: HandshakeMessage
    try {
      if (this.protocol === undefined) throw new InvalidArgumentError('the trust protocol is not wired')
      reply = await this.protocol.exchange(invite.inviter, { type: 'invite', invite: code.trim() }, { ...options, addresses: invite.addresses })
    } catch (err) {
      await this.ctx.audit('trust.invite-refused', id, { side: 'invitee', code: errorCodeOf(err) ?? 'InternalError', reason: (err as Error).message })
      throw err
    }
    if (reply.type !== 'approve') throw new HandshakeRefusedError('InvalidReply', `${id} answered an invite with ${reply.type}`)
    const now = this.ctx.now()
    const old = records.latest(id)
    await records.commit(id, {
      state: 'trusted',
      since: old?.state === 'trusted' ? old.since : now,
      updatedAt: now,
      reason: 'invite accepted',
      direction: 'outbound',
      via: 'invite'
    }, 'trust.invite-accepted', { addresses })
    return { peerId: id, state: 'trusted', addresses }
  }

  /** Inviter side: `id` presents `code` over the handshake. Throws a TrustError to refuse. */
  async onInvite (id: string, code: string): Promise<Answer> {
    const { records } = this.ctx
    const refuse = async (err: TrustError, invite?: string): Promise<never> => {
      await this.ctx.audit('trust.invite-refused', id, { side: 'inviter', code: err.code, reason: err.message, ...(invite === undefined ? {} : { invite }) })
      throw err
    }
    const state = records.latestState(id)
    if (state === 'revoked') return refuse(new RefusedError('this node revoked its trust in you'))
    let invite
    try {
      invite = decodeInvite(code)
    } catch (err) {
      return refuse(err instanceof TrustError ? err : new InviteInvalidError('invalid invite code'))
    }
    if (!invite.inviter.equals(this.ctx.self)) return refuse(new InviteInvalidError('this invite was not issued by this node'))
    const now = this.ctx.now()
    const key = inviteId(invite.secret)
    if (invite.expiresAt <= now) return refuse(new InviteExpiredError(`the invite expired at ${new Date(invite.expiresAt).toISOString()}`), key)
    const stored = records.invites.get(key)
    if (stored === undefined || stored.expiresAt !== invite.expiresAt || stored.uses !== invite.uses) {
      return refuse(new InviteInvalidError('this node holds no such invite (unknown or withdrawn)'), key)
    }
    if (state === 'trusted') return { type: 'approve' }
    if (!stored.usedBy.includes(id)) {
      if (stored.usesLeft <= 0) return refuse(new InviteUsedUpError('the invite has no uses left'), key)
      // decided synchronously: two peers racing for the last use cannot both get it
      stored.usesLeft--
      stored.usedBy.push(id)
    }
    const old = records.latest(id)
    await records.commit(id, {
      state: 'trusted',
      since: now,
      updatedAt: now,
      reason: old?.state === 'pending-inbound' ? old.reason : `invite ${key.slice(0, 12)}`,
      direction: 'inbound',
      via: 'invite'
    }, 'trust.invite-used', { invite: key, usesLeft: stored.usesLeft })
    return { type: 'approve' }
  }
}
