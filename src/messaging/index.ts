/**
 * @packageDocumentation
 *
 * Signed, replay-protected agent messages over `/agentnet/msg/2.0.0`. One
 * long-lived stream per peer and direction carries varint-length-prefixed
 * frames; requests and one-way messages go out on our stream to the peer,
 * answers come back on the stream the request arrived on. Every frame is
 * checked by `openEnvelope` in `src/protocol` (the one place where messages
 * are verified and rejected) before it reaches a service.
 *
 * @example
 *
 * ```ts
 * import { messaging } from './index.ts'
 *
 * const service = messaging({ requestTimeoutMs: 5000 })({ libp2p, privateKey })
 * await service.start()
 * service.registerService('echo', async msg => ({ body: msg.body, contentType: msg.contentType }))
 * const reply = await service.send(peerId, 'echo', new TextEncoder().encode('hi'), 'text/plain; charset=utf-8')
 * ```
 */

import type { Clock } from '../utils/clock.ts'
import { MessagingService } from './messaging.ts'
import type { ReplayCache } from '../protocol/index.ts'
import type { Connection, Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Message } from '../protocol/index.ts'
import type { Logger } from 'pino'
import type { GuardedBody } from '../outbox/index.ts'

export { MessagingService, MSG_PROTOCOL } from './messaging.ts'
export { encodeAck } from './channel.ts'
export * from './errors.ts'
export * from './body.ts'
export { encodeFrame, FrameDecoder, FrameTooLargeError } from './frames.ts'

export interface MessagingInit {
  /** Largest body accepted or sent, bytes. @default 1048576 */
  maxBodyBytes?: number
  /** Replay and idempotence window, ms (30 000–300 000). @default 60000 */
  replayWindowMs?: number
  /** Allowed clock skew into the future, ms. @default 30000 */
  maxClockSkewMs?: number
  /** Default request timeout, retries included, ms. @default 10000 */
  requestTimeoutMs?: number
  /** Re-sends of a timed-out request. @default 2 */
  retries?: number
  /** Concurrent inbound msg streams per connection. @default 64 */
  maxInboundStreams?: number
  /** Requests from one peer handled at once; more get `Busy`. @default 1024 */
  maxInFlightPerPeer?: number
  /** Answers kept for duplicate request IDs. @default 100000 */
  maxIdempotenceEntries?: number
  /** Bytes of answers kept for duplicate request IDs. @default 67108864 */
  maxIdempotenceBytes?: number
  /** A frame must arrive whole within this long of its first byte, else the stream is reset, ms. @default 20000 */
  frameTimeoutMs?: number
  /** Bytes of request bodies one untrusted peer may have in flight; more get `Busy`. @default 4194304 */
  untrustedInFlightBytes?: number
  /** Requests one untrusted peer may have in flight; more get `Busy`. @default 32 */
  untrustedInFlightRequests?: number
  /** An untrusted peer's inbound stream with no traffic for this long is closed, ms. @default 60000 */
  untrustedIdleStreamMs?: number
  /** A replay cache to use (e.g. restored from a snapshot) */
  replayCache?: ReplayCache
  /** Worker threads for Ed25519 (`'auto'`: one per core beyond the first; 0: all inline). @default 'auto' */
  cryptoWorkers?: 'auto' | number
  /** Main-thread event-loop utilisation from which Ed25519 goes to the workers (0..1). @default 0.5 */
  cryptoOffloadUtilization?: number
}

/** Attaches session tokens to outgoing messages (see `src/tokens`) */
export interface TokenProvider {
  tokenFor: (peer: PeerId, service: string, signal?: AbortSignal) => Promise<Uint8Array | undefined>
  /** Drop the held token and fetch a new one (after the peer refused it) */
  renew: (peer: PeerId, service: string, signal?: AbortSignal) => Promise<void>
  isTokenError: (code: string) => boolean
}

export interface RejectionEvent {
  peer: string
  id?: string
  service?: string
  code: string
  reason: string
}

export interface MessagingComponents {
  /** Wall clock for windows and expiry. @default Date.now */
  clock?: Clock
  libp2p: Pick<Libp2p, 'handle' | 'unhandle' | 'dial' | 'addEventListener' | 'removeEventListener'>
  /** How to reach a peer; the node prefers a direct (e.g. WebRTC) connection over a relayed one. Default: `libp2p.dial` */
  connect?: (peer: PeerId, signal: AbortSignal) => Promise<Connection>
  privateKey: PrivateKey
  logger?: Logger
  tokenProvider?: TokenProvider
  /**
   * The inbound stages between `open` (verification, replay) and delivery to
   * the service, in order (the composition root in `src/agent` declares them)
   */
  inboundGates?: readonly InboundStage[]
  /**
   * Peers served first (trusted and infrastructure peers): frames from any
   * other peer wait in a bounded queue worked off between theirs, and its
   * requests in flight are bounded (see `pressure.ts`). Default: every peer
   */
  isPreferred?: (peer: PeerId) => boolean
  /** Called for every rejected frame (for the audit log) */
  onReject?: (event: RejectionEvent) => void
  /** Per-message outcomes for the metrics endpoint (`src/metrics`); absent when metrics are off */
  observer?: MessagingObserver
}

/** What the metrics endpoint learns of each message (service names are label values: the observer bounds them) */
export interface MessagingObserver {
  /** A `send` settled: `result` is `ok` or the error code; `seconds` from the call to the answer when one came (response or error) */
  sent: (service: string, kind: 'request' | 'oneway', result: string, seconds?: number) => void
  /** An inbound message was delivered (`ok`), answered from the idempotence cache (`duplicate`) or rejected (the code; service `""` when the frame did not verify) */
  received: (service: string, kind: string, result: string) => void
}

/** A request or one-way message as a local service receives it */
export interface InboundMessage {
  from: PeerId
  id: string
  service: string
  kind: 'request' | 'oneway'
  body: Uint8Array
  contentType: string
}

export interface ServiceReply {
  /** Agent-authored: it passed the outbox (see `src/outbox`) */
  body: GuardedBody
  contentType: string
}

/** Handles inbound messages for one service; throw a MessagingError to answer with an error */
export type ServiceHandler = (message: InboundMessage) => Promise<ServiceReply | undefined> | ServiceReply | undefined

/** Runs before a service sees a message; throws a typed error to refuse it */
export type InboundGate = (message: Message, remotePeer: PeerId) => void | Promise<void>

/** A named inbound gate (trust, tokens, …) */
export interface InboundStage {
  readonly name: string
  check: InboundGate
}

export interface SendOptions {
  oneway?: boolean
  timeoutMs?: number
  retries?: number
  signal?: AbortSignal
}

export interface Reply {
  from: string
  /** The request ID */
  id: string
  /** `ack` for a one-way message the receiver accepted */
  kind: 'response' | 'ack'
  body: Uint8Array
  contentType: string
}

export interface MessagingMetrics {
  sent: number
  received: number
  /** Rejected inbound frames by error code */
  rejected: Record<string, number>
  retries: number
  duplicates: number
}

export function messaging (init: MessagingInit = {}): (components: MessagingComponents) => MessagingService {
  return (components) => new MessagingService(components, init)
}
