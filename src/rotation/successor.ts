/**
 * The old identity during a key rotation's grace period. While
 * `succession.json` says `grace`, the node (running on the new key) starts a
 * second, minimal libp2p node on the old key that:
 *
 * - tells every trusted peer, over the trust protocol (`/agentnet/trust/2.0.0`), with a
 *   `succession` message signed by the old key (so a strict peer, which
 *   admits only peers it trusts, lets it in), carrying the record signed by
 *   both keys; peers that were offline are retried until the grace period
 *   ends. Once a peer answers `ok`, the new node dials it, so messages flow
 *   to the new ID at once;
 * - answers anything else on the trust protocol with an `error` of code
 *   `Moved` whose message is the record (a peer verifies it and follows),
 *   and every agent message with a signed `error` envelope whose body is
 *   `{code: "Moved", message: record, addresses: [the new ID's addresses]}`
 *   (the sending node follows and sends again to the new ID: src/rotation/follow.ts);
 * - publishes, when the DHT is on, an agent card for the old ID (signed by
 *   the old key, a higher `seq` than its last card) that points to the new
 *   one: `{name: "moved", services: [], metadata: {successor, succession,
 *   until}}`, republished like any card until the grace period ends;
 * - stops when the grace period ends; the old key is then deleted.
 *
 * It listens on the TCP listen addresses of the config with port 0 (the
 * configured ports belong to the new ID).
 *
 * @module
 */

import { randomUUID } from 'node:crypto'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { CARD_REPUBLISH_MS, cardKey, encodeCard } from '../cards/index.ts'
import { connectionEncryptersFor } from '../node/libp2p.ts'
import { createSigner, openEnvelope, ReplayCache, sealEnvelope, TRUST_SIGNATURE_SCHEME } from '../protocol/index.ts'
import { MSG_PROTOCOL } from '../messaging/index.ts'
import { openTrustFrame, sealTrustFrame } from '../trust/codec.ts'
import { MAX_FRAME_BYTES, TRUST_PROTOCOL } from '../trust/constants.ts'
import { inGracePeriod } from '../identity/rotation.ts'
import { loadOldKey, readRotation, writeRotation } from '../identity/succession.ts'
import { finishRotation } from './migrate.ts'
import type { RotationState } from '../identity/succession.ts'
import type { Config } from '../config/index.ts'
import type { MessageSigner } from '../protocol/index.ts'
import type { ContentRouting, Libp2p, PeerId, PrivateKey, Startable, Stream } from '@libp2p/interface'
import type { Logger } from 'pino'

/** How often peers that did not take note yet are told again, ms */
export const DEFAULT_ANNOUNCE_RETRY_MS = 30_000
/** One notice, dial included, ms */
const NOTICE_TIMEOUT_MS = 10_000
/** Frames the old ID reads on the agent protocol: it answers them, it never delivers their bodies */
const MAX_MOVED_FRAME_BYTES = 64 * 1024
const encoder = new TextEncoder()
/** Addresses of the new ID a `Moved` answer carries at most */
const MAX_MOVED_ADDRESSES = 16
/** First retry of a pointer card that could not be put in the DHT, ms */
const POINTER_FIRST_RETRY_MS = 2_000
/** Longest setTimeout delay */
const MAX_TIMER_MS = 2 ** 31 - 1

export interface SuccessorComponents {
  home: string
  /** The node on the new key: its peer store knows the trusted peers' addresses */
  libp2p: Pick<Libp2p, 'peerId' | 'peerStore' | 'dial' | 'getMultiaddrs'>
  /** Peer IDs this node trusts (they are told) */
  trustedPeers: () => string[]
  /** The new node's DHT, to publish the old ID's pointer card; undefined when the DHT is off */
  contentRouting?: Pick<ContentRouting, 'put'>
  /** Audit records (`identity.*`) */
  audit?: (type: string, data: Record<string, string | number | boolean | string[]>) => Promise<void>
  logger?: Logger
}

export interface SuccessorInit {
  config: Pick<Config, 'listen' | 'security'>
  /** @default 30000 */
  announceRetryMs?: number
}

export interface RotationStatus {
  old: string
  new: string
  ts: number
  graceMs: number
  notified: string[]
  /** Trusted peers not told yet */
  pending: string[]
  /** Where the old ID answers */
  oldAddresses: string[]
  /** The old ID's card in the DHT points to the new ID (put at least once) */
  pointerPublished: boolean
}

/** TCP listen addresses with port 0 (the configured ports belong to the new ID) */
function oldListen (listen: string[]): string[] {
  const out = listen.filter(a => /^\/ip[46]\/[^/]+\/tcp\/\d+$/.test(a)).map(a => a.replace(/\/tcp\/\d+$/, '/tcp/0'))
  return out.length > 0 ? [...new Set(out)] : ['/ip4/127.0.0.1/tcp/0']
}

/**
 * Runs the old identity during the grace period (see the module doc). A
 * no-op when no rotation is in progress.
 */
export class SuccessorService implements Startable {
  private readonly components: SuccessorComponents
  private readonly init: SuccessorInit
  private state: RotationState | undefined
  private oldNode: Libp2p | undefined
  private signer: MessageSigner | undefined
  /**
   * Nonces the old ID saw, trust frames and agent messages alike (both are
   * envelopes with random nonces). In memory only: the old ID answers
   * nothing but `Moved`, so a replay across a restart gains nothing.
   */
  private readonly replayCache = new ReplayCache({ windowMs: 60_000 })
  private msgSigner: MessageSigner | undefined
  private graceTimer: ReturnType<typeof setTimeout> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private cardTimer: ReturnType<typeof setTimeout> | undefined
  private announcing: Promise<void> | undefined
  private pointerPublished = false
  private stopped = false

  constructor (components: SuccessorComponents, init: SuccessorInit) {
    this.components = components
    this.init = init
  }

  async start (): Promise<void> {
    this.stopped = false
    const state = await readRotation(this.components.home)
    if (state?.state !== 'grace') return
    if (state.new !== this.components.libp2p.peerId.toString()) {
      this.components.logger?.warn({ old: state.old, new: state.new }, 'a rotation is in progress but this node runs on neither of its keys; ignored')
      return
    }
    const oldKey = await loadOldKey(this.components.home)
    if (!inGracePeriod(state, Date.now()) || oldKey === undefined || peerIdFromPrivateKey(oldKey).toString() !== state.old) {
      await this.finish(state)
      return
    }
    this.state = state
    this.signer = createSigner(oldKey, TRUST_SIGNATURE_SCHEME)
    this.oldNode = await createLibp2p({
      privateKey: oldKey,
      addresses: { listen: oldListen(this.init.config.listen) },
      transports: [tcp()],
      connectionEncrypters: await connectionEncryptersFor(this.init.config),
      streamMuxers: [yamux()]
    })
    await this.oldNode.handle(TRUST_PROTOCOL, (stream, connection) => { void this.answerMoved(stream, connection.remotePeer) }, { runOnLimitedConnection: true })
    // agent messages to the old ID get the pointer too: an `error` envelope `Moved` whose message is the record
    this.msgSigner = createSigner(oldKey)
    await this.oldNode.handle(MSG_PROTOCOL, (stream, connection) => { void this.answerMovedMessages(stream, connection.remotePeer) }, { runOnLimitedConnection: true })
    await this.oldNode.start()
    await this.components.audit?.('identity.rotation-grace', { old: state.old, new: state.new, ts: state.ts, graceMs: state.graceMs })
    this.scheduleGraceEnd()
    this.announcing = this.announce()
    void this.publishPointer(oldKey, state)
  }

  /**
   * The old ID's card in the DHT points to the new ID (best effort,
   * republished until the grace period ends). A failed put (no DHT peers yet,
   * most likely: the node has just started) is retried after 2 s, doubling up
   * to a minute: peers that missed the notice find the pointer through it.
   */
  private async publishPointer (oldKey: PrivateKey, state: RotationState, retryMs = POINTER_FIRST_RETRY_MS): Promise<void> {
    const routing = this.components.contentRouting
    if (routing === undefined || this.stopped || this.state === undefined) return
    let delay = CARD_REPUBLISH_MS
    let next = POINTER_FIRST_RETRY_MS
    try {
      const value = encodeCard({ name: 'moved', services: [], metadata: { successor: state.new, succession: state.record, until: state.ts + state.graceMs } }, oldKey, Date.now())
      await routing.put(cardKey(state.old), value, { signal: AbortSignal.timeout(30_000) })
      this.pointerPublished = true
    } catch (err) {
      this.components.logger?.debug({ err: (err as Error).message }, 'the old ID\'s pointer card was not published; retrying')
      delay = retryMs
      next = Math.min(retryMs * 2, 60_000)
    }
    if (this.stopped || this.state === undefined) return
    this.cardTimer = setTimeout(() => { void this.publishPointer(oldKey, state, next) }, delay)
    this.cardTimer.unref()
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.graceTimer)
    clearTimeout(this.retryTimer)
    clearTimeout(this.cardTimer)
    await this.announcing?.catch(() => {})
    await Promise.resolve(this.oldNode?.stop()).catch(() => {})
    this.oldNode = undefined
  }

  /** The rotation in progress, or undefined */
  status (): RotationStatus | undefined {
    const s = this.state
    if (s === undefined) return undefined
    const notified = new Set(s.notified)
    return {
      old: s.old,
      new: s.new,
      ts: s.ts,
      graceMs: s.graceMs,
      notified: [...s.notified],
      pending: this.components.trustedPeers().filter(p => !notified.has(p) && p !== s.old),
      oldAddresses: this.oldNode?.getMultiaddrs().map(a => a.toString()) ?? [],
      pointerPublished: this.pointerPublished
    }
  }

  /** Resolves once every trusted peer reachable now was told (tests, the CLI) */
  async announced (): Promise<void> {
    await this.announcing
  }

  /** Tell the peers that did not take note yet now, rather than at the next retry */
  async announceNow (): Promise<void> {
    await this.announcing
    clearTimeout(this.retryTimer)
    this.announcing = this.announce()
    await this.announcing
  }

  /** Tell every trusted peer that did not take note yet; retried until the grace period ends */
  private async announce (): Promise<void> {
    const state = this.state
    if (state === undefined || this.stopped) return
    const pending = this.status()?.pending ?? []
    await Promise.all(pending.map(async peer => this.tell(peer, state)))
    await writeRotation(this.components.home, state).catch(err => this.components.logger?.error({ err }, 'could not record notified peers'))
    if ((this.status()?.pending.length ?? 0) > 0 && !this.stopped) {
      this.retryTimer = setTimeout(() => { this.announcing = this.announce() }, this.init.announceRetryMs ?? DEFAULT_ANNOUNCE_RETRY_MS)
      this.retryTimer.unref()
    }
  }

  private async tell (id: string, state: RotationState): Promise<void> {
    const node = this.oldNode
    const signer = this.signer
    if (node === undefined || signer === undefined) return
    try {
      const peer = peerIdFromString(id)
      const known = await this.components.libp2p.peerStore.get(peer).catch(() => undefined)
      const targets = (known?.addresses ?? []).map(a => a.multiaddr.encapsulate(`/p2p/${id}`))
      const signal = AbortSignal.timeout(NOTICE_TIMEOUT_MS)
      const stream = await node.dialProtocol(targets.length > 0 ? targets : peer, TRUST_PROTOCOL, { signal, runOnLimitedConnection: true })
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      const requestId = randomUUID()
      await lp.write(sealTrustFrame({ type: 'succession', to: peer, succession: state.record, id: requestId }, signer), { signal })
      const data = await lp.read({ signal })
      await stream.close({ signal }).catch(() => {})
      const reply = openTrustFrame(data.subarray(), { localPeer: node.peerId, remotePeer: peer, replayCache: this.replayCache, windowMs: 60_000, maxSkewMs: 30_000 })
      if (reply.type === 'ok' && !reply.initiator && reply.re === requestId) {
        if (!state.notified.includes(id)) state.notified.push(id)
        await this.components.audit?.('identity.succession-delivered', { peer: id, new: state.new })
        // the peer follows the new ID now: open the connection messages will use
        await this.components.libp2p.dial(peer, { signal: AbortSignal.timeout(NOTICE_TIMEOUT_MS) }).catch(() => {})
        return
      }
      const code = reply.type === 'error' ? reply.code ?? 'Error' : `unexpected ${reply.type}`
      this.components.logger?.warn({ peer: id, code, message: reply.message }, 'a peer refused the succession notice')
      await this.components.audit?.('identity.succession-refused', { peer: id, code })
    } catch (err) {
      this.components.logger?.debug({ peer: id, err: (err as Error).message }, 'succession notice not delivered; retrying later')
    }
  }

  /** Anything sent to the old ID on the trust protocol: `error` `Moved`, the record as message */
  private async answerMoved (stream: Stream, remote: PeerId): Promise<void> {
    const node = this.oldNode
    const signer = this.signer
    const state = this.state
    if (node === undefined || signer === undefined || state === undefined) {
      stream.abort(new Error('stopping'))
      return
    }
    try {
      const signal = AbortSignal.timeout(NOTICE_TIMEOUT_MS)
      const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
      const data = await lp.read({ signal })
      const message = openTrustFrame(data.subarray(), { localPeer: node.peerId, remotePeer: remote, replayCache: this.replayCache, windowMs: 60_000, maxSkewMs: 30_000 })
      if (!message.initiator) throw new Error('a reply cannot open an exchange')
      await lp.write(sealTrustFrame({ type: 'error', to: remote, re: message.id, code: 'Moved', message: state.record }, signer), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
    }
  }

  /** Every request or one-way message sent to the old ID on the agent protocol: `error` `Moved`, the record as message */
  private async answerMovedMessages (stream: Stream, remote: PeerId): Promise<void> {
    const node = this.oldNode
    const signer = this.msgSigner
    const state = this.state
    if (node === undefined || signer === undefined || state === undefined) {
      stream.abort(new Error('stopping'))
      return
    }
    const lp = lpStream(stream, { maxDataLength: MAX_MOVED_FRAME_BYTES })
    try {
      while (true) {
        const data = await lp.read({ signal: AbortSignal.timeout(NOTICE_TIMEOUT_MS) })
        const { message } = openEnvelope(data.subarray(), { localPeer: node.peerId, remotePeer: remote, replayCache: this.replayCache, maxBodyBytes: MAX_MOVED_FRAME_BYTES })
        if (message.kind !== 'request' && message.kind !== 'oneway') continue
        // where the new ID listens: a sender that missed the notice may have no other way to find it (no DHT)
        const addresses = this.components.libp2p.getMultiaddrs().slice(0, MAX_MOVED_ADDRESSES).map(a => a.toString())
        const body = encoder.encode(JSON.stringify({ code: 'Moved', message: state.record, addresses }))
        await lp.write(sealEnvelope({ to: remote.toMultihash().bytes, service: message.service, kind: 'error', id: randomUUID(), inReplyTo: message.id, contentType: 'application/json', body }, signer))
      }
    } catch {
      // the peer closed its side, sent something unreadable, or went quiet: done with this stream
      stream.abort(new Error('done'))
    }
  }

  private scheduleGraceEnd (): void {
    const state = this.state
    if (state === undefined) return
    const left = state.ts + state.graceMs - Date.now()
    this.graceTimer = setTimeout(() => {
      if (inGracePeriod(state, Date.now())) {
        this.scheduleGraceEnd()
        return
      }
      void this.endGrace(state)
    }, Math.max(0, Math.min(left, MAX_TIMER_MS)))
    this.graceTimer.unref()
  }

  private async endGrace (state: RotationState): Promise<void> {
    clearTimeout(this.retryTimer)
    clearTimeout(this.cardTimer)
    await Promise.resolve(this.oldNode?.stop()).catch(() => {})
    this.oldNode = undefined
    this.state = undefined
    await this.finish(state)
  }

  private async finish (state: RotationState): Promise<void> {
    await finishRotation(this.components.home)
    await this.components.audit?.('identity.rotation-finished', { old: state.old, new: state.new, notified: state.notified })
    this.components.logger?.info({ old: state.old, new: state.new }, 'key rotation finished: the old key is deleted')
  }
}
