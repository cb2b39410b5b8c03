/**
 * @packageDocumentation
 *
 * Short-lived, scoped session tokens over `/agentnet/token/1.0.0`.
 *
 * Issuer side: a peer asks for a token for some services; we sign one bound
 * to that (Noise-authenticated) peer, valid for `lifetimeMs`. Services listed
 * in `protectedServices` refuse requests without a valid token: the inbound
 * gate ({@link TokenService.gate}) is the one place tokens are checked.
 * `revoke(peer)` invalidates every token issued to that peer so far, at once,
 * and survives restarts.
 *
 * Holder side: the sending node attaches a token when it holds one for the
 * (peer, service), refreshes it in the background once less than a third of
 * its life remains, and on a token error fetches a new one and retries once —
 * agents never see tokens.
 *
 * @example
 *
 * ```ts
 * import { tokens } from './index.ts'
 *
 * const service = tokens({ home, protectedServices: ['payments'] })({ libp2p, privateKey })
 * await service.start()
 * messaging.addInboundGate(service.gate)
 * ```
 */

import { anySignal } from 'any-signal'
import type { Clock } from '../utils/clock.ts'
import { AgentnetError, StateWriteError } from '../errors/index.ts'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { lpStream } from '@libp2p/utils'
import { isPeerId } from '../node/target.ts'
import { readStateFile, writeFileAtomic } from '../utils/fs.ts'
import { RateLimiter } from '../utils/rate-limit.ts'
import { decodeToken, encodeToken, TOKEN_ERROR_CODES, TokenError } from './token.ts'
import type { TokenProvider } from '../messaging/index.ts'
import type { Message } from '../protocol/index.ts'
import type { Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Logger } from 'pino'

export { encodeToken, decodeToken, TokenError, TOKEN_ERROR_CODES, MAX_TOKEN_BYTES } from './token.ts'
export type { TokenClaims, TokenErrorCode } from './token.ts'

export const TOKEN_PROTOCOL = '/agentnet/token/1.0.0'
/** File in the home folder holding revocations */
export const TOKENS_FILE = 'tokens.json'

export interface TokensInit {
  /** Node home folder, where revocations persist */
  home: string
  /** Services that refuse requests without a valid token. @default [] */
  protectedServices?: string[]
  /** Lifetime of issued tokens, ms. @default 60000 */
  lifetimeMs?: number
  /** Longest lifetime a peer may ask for, ms. @default 3600000 */
  maxLifetimeMs?: number
  /** Token requests accepted from one peer per minute. @default 60 */
  maxRequestsPerMinute?: number
  /** Timeout of one token request, ms. @default 5000 */
  requestTimeoutMs?: number
}

export interface TokensComponents {
  /** Wall clock for windows and expiry. @default Date.now */
  clock?: Clock
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'peerId'>
  privateKey: PrivateKey
  logger?: Logger
  /** Who may be issued a token for these services (e.g. trusted peers); default: anyone */
  mayIssue?: (peer: PeerId, services: string[]) => boolean
  /** Told of every issue and revocation (for the audit log) */
  onEvent?: (event: { type: 'token.issued' | 'token.revoked', peer: string, services?: string[], expiresAt?: number }) => void
}

export class CorruptTokenStateError extends AgentnetError { override readonly code = 'CorruptTokenState' }

interface HeldToken {
  token: Uint8Array
  issuedAt: number
  expiresAt: number
  refreshing?: Promise<void>
}

interface TokenState {
  version: 1
  /** tokens issued to a peer at or before this time (ms) are revoked */
  revokedBefore: Record<string, number>
}

const MAX_SERVICES = 32
const MAX_SERVICE_NAME = 128

export class TokenService implements TokenProvider {
  private readonly components: TokensComponents
  private readonly init: Required<TokensInit>
  private readonly protectedServices: Set<string>
  private state: TokenState = { version: 1, revokedBefore: {} }
  private readonly held = new Map<string, HeldToken>()
  private readonly limiter: RateLimiter
  private saving: Promise<void> = Promise.resolve()

  private readonly now: () => number

  constructor (components: TokensComponents, init: TokensInit) {
    this.now = components.clock ?? Date.now
    this.components = components
    this.init = {
      protectedServices: [],
      lifetimeMs: 60_000,
      maxLifetimeMs: 3_600_000,
      maxRequestsPerMinute: 60,
      requestTimeoutMs: 5_000,
      ...init
    }
    this.protectedServices = new Set(this.init.protectedServices)
    // a minute's worth of requests at once, refilled steadily; at most 10,000 peers tracked
    this.limiter = new RateLimiter(this.init.maxRequestsPerMinute / 60, this.init.maxRequestsPerMinute, 10_000)
  }

  async start (): Promise<void> {
    this.state = await loadState(join(this.init.home, TOKENS_FILE))
    await this.components.libp2p.handle(TOKEN_PROTOCOL, (stream, connection) => this.serve(stream, connection.remotePeer), { maxInboundStreams: 8, runOnLimitedConnection: true })
  }

  async stop (): Promise<void> {
    await this.components.libp2p.unhandle(TOKEN_PROTOCOL).catch(() => {})
    await this.saving
  }

  isProtected (service: string): boolean {
    return this.protectedServices.has(service)
  }

  /** Issue a token for `audience` (used by the protocol handler and by tests) */
  issue (audience: PeerId, services: string[], lifetimeMs = this.init.lifetimeMs): { token: Uint8Array, expiresAt: number } {
    const aud = audience.toString()
    // strictly after any revocation, even within the same millisecond
    const iat = Math.max(this.now(), (this.state.revokedBefore[aud] ?? 0) + 1)
    const exp = iat + Math.min(lifetimeMs, this.init.maxLifetimeMs)
    const token = encodeToken({ iss: this.components.libp2p.peerId.toString(), aud, svc: services, iat, exp, jti: randomBytes(8).toString('hex') }, this.components.privateKey)
    this.components.onEvent?.({ type: 'token.issued', peer: aud, services, expiresAt: exp })
    return { token, expiresAt: exp }
  }

  /** Invalidate every token issued to `peer` so far; persisted before it returns */
  async revoke (peer: PeerId): Promise<{ peerId: string, revokedBefore: number }> {
    const key = peer.toString()
    const revokedBefore = this.now()
    await this.update(state => ({ ...state, revokedBefore: { ...state.revokedBefore, [key]: revokedBefore } }))
    this.components.onEvent?.({ type: 'token.revoked', peer: key })
    return { peerId: key, revokedBefore }
  }

  /**
   * A peer rotated its key (`src/rotation`): tokens held from its old ID
   * were signed by the old key and no longer open anything, so they are
   * dropped (the new ID issues new ones the first time a service asks); a
   * revocation of tokens issued to the old ID carries over to the new ID.
   */
  async follow (old: PeerId | string, next: PeerId | string): Promise<{ dropped: number }> {
    const from = old.toString()
    const to = next.toString()
    let dropped = 0
    for (const key of [...this.held.keys()]) {
      if (key.startsWith(`${from}/`)) {
        this.held.delete(key)
        dropped++
      }
    }
    const revoked = this.state.revokedBefore[from]
    if (revoked !== undefined && revoked > (this.state.revokedBefore[to] ?? -1)) {
      await this.update(state => ({ ...state, revokedBefore: { ...state.revokedBefore, [to]: Math.max(revoked, state.revokedBefore[to] ?? -1) } }))
    }
    return { dropped }
  }

  /**
   * The inbound check: a message to a protected service must carry a token
   * this node issued, to the message's sender, for that service, unexpired and
   * not revoked. Runs after the envelope's signature and replay checks.
   */
  readonly gate = (message: Message, remotePeer: PeerId): void => {
    if (!this.protectedServices.has(message.service)) {
      return
    }
    if (message.token.length === 0) {
      throw new TokenError('TokenRequired', `service ${JSON.stringify(message.service)} requires a session token`)
    }
    const claims = decodeToken(message.token, this.components.libp2p.peerId)
    const sender = remotePeer.toString()
    if (claims.aud !== sender) {
      throw new TokenError('TokenAudience', 'session token was issued to another peer')
    }
    if (!claims.svc.includes(message.service)) {
      throw new TokenError('TokenScope', `session token does not cover service ${JSON.stringify(message.service)}`)
    }
    if (this.now() >= claims.exp) {
      throw new TokenError('TokenExpired', 'session token has expired')
    }
    if (claims.iat <= (this.state.revokedBefore[sender] ?? -1)) {
      throw new TokenError('TokenRevoked', 'session token has been revoked')
    }
  }

  // --- holder side (TokenProvider) ---

  async tokenFor (peer: PeerId, service: string, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const key = `${peer.toString()}/${service}`
    const held = this.held.get(key)
    if (held == null) {
      return undefined
    }
    const now = this.now()
    if (now >= held.expiresAt - 1000) {
      this.held.delete(key)
      await this.fetch(peer, service, signal)
      return this.held.get(key)?.token
    }
    if (now > held.expiresAt - (held.expiresAt - held.issuedAt) / 3 && held.refreshing == null) {
      held.refreshing = this.fetch(peer, service).catch(err => {
        this.components.logger?.debug({ err, peer: peer.toString() }, 'token refresh failed')
      }).finally(() => { held.refreshing = undefined })
    }
    return held.token
  }

  async renew (peer: PeerId, service: string, signal?: AbortSignal): Promise<void> {
    this.held.delete(`${peer.toString()}/${service}`)
    await this.fetch(peer, service, signal)
  }

  isTokenError (code: string): boolean {
    return TOKEN_ERROR_CODES.has(code)
  }

  /** Ask `peer` for a token for `service` and hold it for later messages */
  async fetch (peer: PeerId, service: string, signal?: AbortSignal): Promise<void> {
    const options = { signal: anySignal([signal, AbortSignal.timeout(this.init.requestTimeoutMs)]) }
    const stream = await this.components.libp2p.dialProtocol(peer, TOKEN_PROTOCOL, { ...options, runOnLimitedConnection: true })
    const lp = lpStream(stream, { maxDataLength: 16 * 1024 })
    try {
      await lp.write(new TextEncoder().encode(JSON.stringify({ services: [service] })), options)
      const reply = JSON.parse(new TextDecoder().decode((await lp.read(options)).subarray())) as { token?: string, expiresAt?: number, error?: { code: string, message: string } }
      if (reply.error != null || typeof reply.token !== 'string' || typeof reply.expiresAt !== 'number') {
        throw new TokenError('TokenInvalid', `token request refused: ${reply.error?.message ?? 'bad reply'}`)
      }
      const token = Buffer.from(reply.token, 'base64')
      this.held.set(`${peer.toString()}/${service}`, { token, issuedAt: this.now(), expiresAt: reply.expiresAt })
    } finally {
      options.signal.clear()
      await stream.close().catch(() => {})
    }
  }

  private async serve (stream: Stream, remotePeer: PeerId): Promise<void> {
    const options = { signal: AbortSignal.timeout(this.init.requestTimeoutMs) }
    const lp = lpStream(stream, { maxDataLength: 16 * 1024 })
    const respond = async (value: unknown): Promise<void> => {
      await lp.write(new TextEncoder().encode(JSON.stringify(value)), options)
      await stream.close(options).catch(() => {})
    }
    try {
      if (!this.limiter.take(remotePeer.toString()).allowed) {
        await respond({ error: { code: 'RateLimited', message: 'too many token requests' } })
        return
      }
      const request = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode((await lp.read(options)).subarray())) as { services?: unknown, lifetimeMs?: unknown }
      const services = request.services
      if (!Array.isArray(services) || services.length === 0 || services.length > MAX_SERVICES ||
          !services.every(s => typeof s === 'string' && s.length > 0 && s.length <= MAX_SERVICE_NAME)) {
        await respond({ error: { code: 'InvalidRequest', message: 'services must be 1–32 service names' } })
        return
      }
      if (this.components.mayIssue?.(remotePeer, services as string[]) === false) {
        await respond({ error: { code: 'UntrustedPeer', message: 'this node issues tokens to trusted peers only' } })
        return
      }
      const lifetime = typeof request.lifetimeMs === 'number' && request.lifetimeMs > 0 ? request.lifetimeMs : this.init.lifetimeMs
      const { token, expiresAt } = this.issue(remotePeer, services as string[], lifetime)
      await respond({ token: Buffer.from(token).toString('base64'), expiresAt })
    } catch (err) {
      this.components.logger?.debug({ err, peer: remotePeer.toString() }, 'token request failed')
      stream.abort(err as Error)
    }
  }

  /**
   * Persist first, then apply: `change` makes the next state from the
   * current one (in turn with other writes), the file is written, and only
   * then is it the state in force. A write that fails (a full disk) changes
   * nothing, on disk or in memory, and the caller gets `StateWriteFailed`.
   */
  private async update (change: (state: TokenState) => TokenState): Promise<void> {
    const file = join(this.init.home, TOKENS_FILE)
    const write = this.saving.then(async () => {
      const next = change(this.state)
      try {
        await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n')
      } catch (err) {
        this.components.logger?.error({ err: (err as Error).message, file }, 'could not write the token state; the change was not applied')
        throw new StateWriteError(`could not write ${file} (${(err as Error).message}); the change was not applied`, { cause: err })
      }
      this.state = next
    })
    this.saving = write.catch(() => {})
    await write
  }
}

async function loadState (file: string): Promise<TokenState> {
  const text = await readStateFile(file)
  if (text === undefined) {
    return { version: 1, revokedBefore: {} }
  }
  try {
    const parsed = JSON.parse(text) as TokenState
    if (parsed.version !== 1 || typeof parsed.revokedBefore !== 'object' || parsed.revokedBefore === null ||
        !Object.entries(parsed.revokedBefore).every(([k, v]) => Number.isSafeInteger(v) && isPeerId(k))) {
      throw new Error('unexpected shape')
    }
    return parsed
  } catch (err) {
    throw new CorruptTokenStateError(`${file} is corrupt (${(err as Error).message}); it holds token revocations, so the node will not start without it: restore it or remove it to forget them`)
  }
}


export function tokens (init: TokensInit): (components: TokensComponents) => TokenService {
  return (components) => new TokenService(components, init)
}
