/**
 * The shapes the TypeScript SDK's methods take and return (`index.ts` has
 * the client; this file keeps it under the size limit).
 */

export interface ClientOptions {
  /** Node home folder; the socket is `<home>/agentnet.sock`. @default {@link defaultHome}() */
  home?: string
  /** Explicit socket path (wins over `home`) */
  socketPath?: string
  /** Ask for binary bodies (`ipc.hello`); off, every body travels in JSON. @default true */
  binary?: boolean
}

export interface RequestOptions {
  signal?: AbortSignal
}

export interface AgentnetClientEvents {
  /** A JSON-RPC notification from the node */
  notification: [method: string, params: unknown]
  /** An inbound message for a service this client registered (`msg.received`) */
  message: [message: ReceivedMessage]
  close: []
}

export interface SendParams {
  /** Peer ID or `agentnet://<peerId>/<service>` */
  to: string
  service?: string
  body?: unknown
  bodyBase64?: string
  /** Raw bytes (`application/octet-stream`): a binary frame when negotiated, else sent as base64 */
  bytes?: Uint8Array
  oneway?: boolean
  timeoutMs?: number
}

export interface SendResult {
  from: string
  /** The request ID */
  id: string
  body?: unknown
  bodyBase64?: string
  /** The raw body (binary sessions; not enumerable) */
  bytes?: Uint8Array
  contentType?: string
  /** true for an accepted one-way message */
  accepted?: boolean
}

export interface ReceivedMessage {
  /** Delivery ID on this node: answer with `reply({ id, … })` */
  id: string
  /** The sender's request ID */
  requestId: string
  from: string
  service: string
  kind: 'request' | 'oneway'
  body?: unknown
  bodyBase64?: string
  /** The raw body (binary sessions; not enumerable) */
  bytes?: Uint8Array
  contentType: string
}

export interface ReplyParams {
  id: string
  body?: unknown
  bodyBase64?: string
  /** Raw bytes (`application/octet-stream`) */
  bytes?: Uint8Array
  error?: { code?: string, message: string }
}

export interface TrustPending {
  peerId: string
  reason: string
  since: number
  updatedAt: number
}

/** A group as `group.list` shows it */
export interface GroupSummary {
  groupId: string
  name: string
  epoch: number
  term: number
  committer: string
  members: string[]
}

/** A registered guard value as `guard.list` shows it: never the value */
export interface ProtectedEntry {
  id: string
  label: string
  category: string
  scope?: string
  expiresAt?: number
  persist?: boolean
}

export interface GuardPolicyEntry {
  peer: string
  service?: string
  allow: string[]
  action: 'block' | 'redact' | 'warn'
}

export interface GuardFindingEntry {
  detector: string
  category: string
  label?: string
  id?: string
  start: number
  end: number
  variant?: string
  allowed?: boolean
}

/** The decision `msg.send` would take (`guard.check`) */
export interface GuardCheckResult {
  action: 'pass' | 'redact' | 'block' | 'warn'
  /** the redacted text, when `action` is `redact` */
  body?: string
  findings: GuardFindingEntry[]
}

export interface TrustEntry {
  peerId: string
  /** trusted, pending-inbound, pending-outbound, rejected, rejected-by-peer, revoked, revoked-by-peer */
  state: string
  since: number
  updatedAt: number
  reason: string
  direction: string
  via: string
  note?: string
  static: boolean
}

export interface TrustDecision {
  peerId: string
  state: string
  delivered: boolean
  error?: string
}

export interface NodeMetrics {
  messaging: { sent: number, received: number, rejected: Record<string, number>, retries: number, duplicates: number }
  replayCache: { entries: number }
  outbox?: { admitted: Record<string, number>, refused: Record<string, number> }
  /** the leakage guard's counters (`guard.stats()`) */
  guard?: { registered: number, patterns: number, checks: number, actions: Record<string, number>, blockedByCategory: Record<string, number> }
  /** the last posture review's counts, once one ran */
  posture?: PostureCounts
}

/** Finding counts of the node's own posture review (`agentnet doctor`'s checks, drift included) */
export interface PostureCounts {
  findings: { high: number, medium: number, low: number, info: number }
  /** `drift.*` findings: differences from the signed baseline */
  drift: number
  baseline: 'none' | 'intact' | 'tampered'
  /** ms since the epoch */
  checkedAt: number
  error?: string
}

/** `node.posture`: `checking` until the first review finished */
export type PostureState = ({ checking: false } & PostureCounts) | { checking: true }

/** What `node.wait` reports once the node is ready (and `node.state` at any time) */
export interface NodeReadiness {
  /** the node's process */
  pid: number
  peerId: string
  addresses: string[]
  /** true once listening and, with bootstrap peers configured, connected to one and the DHT joined */
  ready: boolean
  listening: boolean
  bootstrap: { configured: number, connected: number }
  dht: 'disabled' | 'joining' | 'ready'
  reachability: 'public' | 'private' | 'unknown'
  relayReservations: string[]
}

/** What `identity.rotate` answers */
export interface IdentityRotation {
  old: string
  new: string
  ts: number
  graceMs: number
  graceEndsAt: string
  /** The succession record (signed by both keys) */
  record: string
  /** Groups whose committer role passed to the next member before the swap */
  handedOver: string[]
}
