/**
 * @packageDocumentation
 *
 * The TypeScript SDK for a running agentnet node: a typed JSON-RPC 2.0 client
 * of the node's Unix socket. The CLI uses nothing else to talk to the node.
 * It negotiates binary bodies (`ipc.hello`): message bodies then travel as raw
 * bytes after their header line, never as base64 or JSON; `bytes` gives them
 * as a `Uint8Array`, `body`/`bodyBase64` as before.
 *
 * Longer than 450 lines on purpose: one typed method per IPC method on one
 * class; the types (`types.ts`) and body handling (`bodies.ts`) are apart.
 *
 * @example
 *
 * ```ts
 * import { connectClient } from 'agentnet/client'
 *
 * const client = await connectClient({ home: '/home/me/.agentnet' })
 * const info = await client.nodeInfo()
 * console.log(info.peerId)
 * client.close()
 * ```
 */

import { AgentnetError, foreignCode } from '../errors/index.ts'
import type { ErrorCode, ForeignCode } from '../errors/index.ts'
import { EventEmitter } from 'node:events'
import { createConnection } from 'node:net'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { corkForTick, FrameReader } from '../ipc/frames.ts'
import { framedBody, isRecord, withBody } from './bodies.ts'
import type { IpcFrame } from '../ipc/frames.ts'
import type { JsonRpcErrorObject } from '../ipc/rpc.ts'
import type { NodeInfo, NodeStatus, PeerSummary } from '../node/index.ts'
import type { AgentCard } from '../cards/index.ts'
import type { Socket } from 'node:net'

export type { ConnectionSummary, NodeInfo, NodeStatus, PeerSummary } from '../node/index.ts'
export type { AgentCard } from '../cards/index.ts'
export type * from './types.ts'
import type {
  AgentnetClientEvents, ClientOptions, GroupSummary, GuardCheckResult, IdentityRotation, GuardPolicyEntry, NodeMetrics, NodeReadiness,
  PostureState, ProtectedEntry, ReceivedMessage, ReplyParams, RequestOptions, SendParams, SendResult, TrustDecision, TrustEntry, TrustPending
} from './types.ts'

/** File name of the node's socket inside its home folder */
export const SOCKET_FILE = 'agentnet.sock'

/** Largest line the client accepts from the node: 64 MiB */
export const CLIENT_MAX_LINE_BYTES = 64 * 1024 * 1024
/** Largest raw body the client accepts from the node: 64 MiB */
export const CLIENT_MAX_BODY_BYTES = 64 * 1024 * 1024


/** The node answered a request with a JSON-RPC error */
export class RemoteError extends AgentnetError {
  /** The agentnet error name, e.g. `PeerUnreachable`, `InvalidParams` */
  override readonly code: ErrorCode | ForeignCode
  readonly rpcCode: number
  readonly data: Record<string, unknown> | undefined

  constructor (error: JsonRpcErrorObject) {
    super(error.message)
    this.name = 'RemoteError'
    this.rpcCode = error.code
    // whatever the node said: usually one of ours, or a remote service's own code
    this.code = typeof error.data?.code === 'string' ? foreignCode(error.data.code) : 'RemoteError'
    this.data = error.data
  }
}

/** The socket could not be reached: usually the node is not running */
export class NodeNotRunningError extends AgentnetError { override readonly code = 'NodeNotRunning' }

/** The connection to the node closed while a request was in flight */
export class ConnectionClosedError extends AgentnetError { override readonly code = 'ConnectionClosed' }

interface Pending {
  resolve: (value: unknown) => void
  reject: (err: Error) => void
}

export class AgentnetClient extends EventEmitter<AgentnetClientEvents> {
  private readonly socket: Socket
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  private closedError: Error | undefined
  /** The node agreed to binary bodies (`ipc.hello`) */
  binary = false

  constructor (socket: Socket) {
    super()
    this.socket = socket
    const reader = new FrameReader({ maxLineBytes: CLIENT_MAX_LINE_BYTES, maxBodyBytes: CLIENT_MAX_BODY_BYTES })
    socket.on('data', (chunk: Buffer) => {
      let frames: IpcFrame[]
      try {
        frames = reader.push(chunk)
      } catch (err) {
        this.fail(err as Error)
        return
      }
      for (const frame of frames) {
        if (frame.kind === 'message') this.handleMessage(frame.message, frame.body)
      }
    })
    socket.on('error', err => { this.fail(err) })
    socket.on('close', () => { this.fail(new ConnectionClosedError('connection to the node closed')) })
  }

  /** Negotiate binary bodies; false when the node does not offer them (an older node) */
  async hello (options?: RequestOptions): Promise<boolean> {
    try {
      const result = await this.request<{ features: string[] }>('ipc.hello', { features: ['binary'] }, options)
      this.binary = result.features.includes('binary')
    } catch (err) {
      if (err instanceof RemoteError && err.code === 'MethodNotFound') return false
      throw err
    }
    return this.binary
  }

  /** Send a raw JSON-RPC request and wait for its result; `body` goes as a binary frame */
  async request<T = unknown> (method: string, params?: unknown, options: RequestOptions = {}, body?: Uint8Array): Promise<T> {
    if (this.closedError != null) {
      throw this.closedError
    }
    const id = this.nextId++
    const { promise, resolve, reject } = Promise.withResolvers<unknown>()
    this.pending.set(id, { resolve, reject })
    const signal = options.signal
    const onAbort = (): void => {
      this.pending.delete(id)
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'))
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    this.write({ jsonrpc: '2.0', id, method, params }, body)
    try {
      return await promise as T
    } finally {
      signal?.removeEventListener('abort', onAbort)
    }
  }

  /** Send a JSON-RPC notification (no reply) */
  notify (method: string, params?: unknown): void {
    this.write({ jsonrpc: '2.0', method, params })
  }

  /** Frames written in one tick leave in one `writev` */
  private write (header: Record<string, unknown>, body?: Uint8Array): void {
    corkForTick(this.socket)
    if (body === undefined) {
      this.socket.write(JSON.stringify(header) + '\n')
      return
    }
    header.bodyBytes = body.byteLength
    this.socket.write(JSON.stringify(header) + '\n')
    this.socket.write(body)
  }

  async nodeInfo (options?: RequestOptions): Promise<NodeInfo> {
    return this.request<NodeInfo>('node.info', {}, options)
  }

  async peersList (options?: RequestOptions): Promise<PeerSummary[]> {
    return this.request<PeerSummary[]>('peers.list', {}, options)
  }

  async status (options?: RequestOptions): Promise<NodeStatus> {
    return this.request<NodeStatus>('node.status', {}, options)
  }

  async connect (target: string, options?: RequestOptions): Promise<{ peerId: string, address: string }> {
    return this.request('peer.connect', { target }, options)
  }

  async ping (target: string, options?: RequestOptions): Promise<{ peerId: string, rttMs: number }> {
    return this.request('peer.ping', { target }, options)
  }

  async metrics (options?: RequestOptions): Promise<NodeMetrics> {
    return this.request<NodeMetrics>('node.metrics', {}, options)
  }

  /**
   * The node's posture review (cached, at most one per 5 minutes): finding
   * counts by severity and drift. Waits up to `waitMs` (default 30 s) for a
   * review in progress; `{checking: true}` before the first one finished.
   */
  async posture (params: { waitMs?: number } = {}, options?: RequestOptions): Promise<PostureState> {
    return this.request<PostureState>('node.posture', params, options)
  }

  /** Serve `service`: inbound messages arrive as `message` events until unregistered */
  async registerService (service: string, options?: RequestOptions): Promise<{ service: string }> {
    return this.request('service.register', { service }, options)
  }

  async unregisterService (service: string, options?: RequestOptions): Promise<{ service: string, removed: boolean }> {
    return this.request('service.unregister', { service }, options)
  }

  /**
   * Send to a peer's service. `body` strings travel as text, other JSON values
   * as JSON; pass `bodyBase64` for bytes. Resolves with the reply, or with
   * `{accepted: true}` for a one-way message the receiving node accepted.
   */
  async send (params: SendParams, options?: RequestOptions): Promise<SendResult> {
    const framed = framedBody(this.binary, params)
    return this.request<SendResult>('msg.send', framed.params, options, framed.body)
  }

  /**
   * Rotate the node's key while it runs (`identity.rotate`): the node
   * restarts in process on the new key; this connection stays open
   */
  async identityRotate (params: { graceMs?: number } = {}, options?: RequestOptions): Promise<IdentityRotation> {
    return this.request<IdentityRotation>('identity.rotate', params, options)
  }

  /** Answer an inbound request (by the `id` of its `msg.received` notification) */
  async reply (params: ReplyParams, options?: RequestOptions): Promise<void> {
    const framed = framedBody(this.binary, params)
    await this.request('msg.reply', framed.params, options, framed.body)
  }

  /** Invalidate every session token this node has issued to `peer` */
  async revokeTokens (peer: string, options?: RequestOptions): Promise<{ peerId: string, revokedBefore: number }> {
    return this.request('token.revoke', { peer }, options)
  }

  /** Fetch and verify a peer's agent card from the DHT */
  async lookupCard (peer: string, options?: RequestOptions): Promise<AgentCard> {
    return this.request<AgentCard>('card.lookup', { peer }, options)
  }

  /** Update and republish this node's agent card */
  async publishCard (content: Partial<Pick<AgentCard, 'name' | 'services' | 'metadata'>>, options?: RequestOptions): Promise<AgentCard> {
    return this.request<AgentCard>('card.publish', content, options)
  }

  /** Ask a peer to trust us; `reason` (≤ 1 KiB) is shown to its operator */
  async trustRequest (peer: string, reason: string, options?: RequestOptions): Promise<{ peerId: string, state: string }> {
    return this.request('trust.request', { peer, reason }, options)
  }

  async trustPending (options?: RequestOptions): Promise<TrustPending[]> {
    return this.request('trust.pending', {}, options)
  }

  async trustList (options?: RequestOptions): Promise<TrustEntry[]> {
    return this.request('trust.list', {}, options)
  }

  async trustApprove (peer: string, options?: RequestOptions): Promise<TrustDecision> {
    return this.request('trust.approve', { peer }, options)
  }

  async trustReject (peer: string, reason?: string, options?: RequestOptions): Promise<TrustDecision> {
    return this.request('trust.reject', { peer, reason }, options)
  }

  async trustRevoke (peer: string, reason?: string, options?: RequestOptions): Promise<TrustDecision & { closedConnections: number }> {
    return this.request('trust.revoke', { peer, reason }, options)
  }

  /** New pending trust requests then arrive as `trust.pending` notifications */
  async trustSubscribe (options?: RequestOptions): Promise<{ subscribed: true, pending: TrustPending[] }> {
    return this.request('trust.subscribe', {}, options)
  }

  async inviteCreate (params: { ttlMs?: number, uses?: number } = {}, options?: RequestOptions): Promise<{ code: string, id: string, expiresAt: number, uses: number, addresses: string[] }> {
    return this.request('invite.create', params, options)
  }

  async inviteAccept (code: string, options?: RequestOptions): Promise<{ peerId: string, state: 'trusted', addresses: string[] }> {
    return this.request('invite.accept', { code }, options)
  }

  /** Readiness now (listening, bootstrap, DHT) without waiting */
  async nodeState (options?: RequestOptions): Promise<NodeReadiness> {
    return this.request<NodeReadiness>('node.state', {}, options)
  }

  /**
   * Resolve once the node is ready: listening and, when bootstrap peers are
   * configured, connected to one with the DHT joined. Rejects with a
   * `RemoteError` of code `Timeout` after `timeoutMs`.
   */
  async waitReady (timeoutMs = 30_000, options?: RequestOptions): Promise<NodeReadiness> {
    return this.request<NodeReadiness>('node.wait', { timeoutMs }, options)
  }

  /** Ask the node to stop cleanly; resolves once it accepted (see `agentnet stop` to wait for the exit) */
  async stopNode (options?: RequestOptions): Promise<{ pid: number, stopping: true }> {
    return this.request('node.stop', {}, options)
  }

  async aliasList (options?: RequestOptions): Promise<Array<{ name: string, peerId: string }>> {
    return this.request('alias.list', {}, options)
  }

  async groupCreate (name: string, options?: RequestOptions): Promise<{ groupId: string }> {
    return this.request('group.create', { name }, options)
  }

  async groupAdd (groupId: string, peer: string, options?: RequestOptions): Promise<{ epoch: number }> {
    return this.request('group.add', { groupId, peer }, options)
  }

  async groupRemove (groupId: string, peer: string, options?: RequestOptions): Promise<{ epoch: number }> {
    return this.request('group.remove', { groupId, peer }, options)
  }

  /** Send to every member: text (`body` string), JSON (`body` other) or bytes (`bodyBase64`) */
  async groupSend (params: { groupId: string, body?: unknown, bodyBase64?: string }, options?: RequestOptions): Promise<{ epoch: number, delivered: number, queued: number }> {
    return this.request('group.send', params, options)
  }

  async groupList (options?: RequestOptions): Promise<GroupSummary[]> {
    return this.request('group.list', {}, options)
  }

  async groupLeave (groupId: string, options?: RequestOptions): Promise<{ groupId: string, left: true }> {
    return this.request('group.leave', { groupId }, options)
  }

  /** Receive `group.received` notifications (listen with `on('notification', …)`) for one group or all */
  async groupSubscribe (groupId?: string, options?: RequestOptions): Promise<{ subscribed: true }> {
    return this.request('group.subscribe', groupId == null ? {} : { groupId }, options)
  }

  /** Register a value the guard keeps from leaving (unless a policy allows its category) */
  async guardProtect (params: { value: string, label: string, category: string, scope?: string, ttlMs?: number, persist?: boolean }, options?: RequestOptions): Promise<{ id: string }> {
    return this.request('guard.protect', params, options)
  }

  async guardUnprotect (params: { id: string } | { scope: string }, options?: RequestOptions): Promise<{ removed: number }> {
    return this.request('guard.unprotect', params, options)
  }

  async guardList (params: { scope?: string } = {}, options?: RequestOptions): Promise<ProtectedEntry[]> {
    return this.request('guard.list', params, options)
  }

  async guardPolicySet (params: { peer: string, service?: string, allow: string[], action?: 'block' | 'redact' | 'warn' }, options?: RequestOptions): Promise<GuardPolicyEntry> {
    return this.request('guard.policy.set', params, options)
  }

  async guardPolicyGet (params: { peer?: string } = {}, options?: RequestOptions): Promise<GuardPolicyEntry[]> {
    return this.request('guard.policy.get', params, options)
  }

  /** The decision `send` would take for this body to this peer, without sending */
  async guardCheck (params: { to: string, service?: string, body: string }, options?: RequestOptions): Promise<GuardCheckResult> {
    return this.request('guard.check', params, options)
  }

  close (): void {
    this.socket.end()
    this.socket.destroy()
  }

  private handleMessage (message: Record<string, unknown>, body: Buffer | undefined): void {
    if (typeof message.method === 'string' && message.id === undefined) {
      const params = body !== undefined && isRecord(message.params) ? withBody(message.params, body) : message.params
      this.emit('notification', message.method, params)
      if (message.method === 'msg.received') {
        this.emit('message', params as ReceivedMessage)
      }
      return
    }
    const id = message.id
    if (typeof id !== 'number') {
      // an error about a line the server could not attribute (e.g. LineTooLong, TooManyClients)
      if (message.error != null) {
        this.fail(new RemoteError(message.error as JsonRpcErrorObject))
      }
      return
    }
    const pending = this.pending.get(id)
    if (pending == null) {
      return
    }
    this.pending.delete(id)
    if (message.error != null) {
      pending.reject(new RemoteError(message.error as JsonRpcErrorObject))
    } else {
      pending.resolve(body !== undefined && isRecord(message.result) ? withBody(message.result, body) : message.result)
    }
  }

  private fail (err: Error): void {
    if (this.closedError == null) {
      this.closedError = err instanceof ConnectionClosedError || err instanceof RemoteError ? err : new ConnectionClosedError(err.message)
      this.emit('close')
    }
    for (const pending of this.pending.values()) {
      pending.reject(err)
    }
    this.pending.clear()
    this.socket.destroy()
  }
}

/** `$AGENTNET_HOME` if set, else `~/.agentnet` (what the CLI uses without `--home`) */
export function defaultHome (): string {
  const chosen = process.env.AGENTNET_HOME
  return resolve(chosen != null && chosen !== '' ? chosen : join(homedir(), '.agentnet'))
}

export function socketPathFor (options: ClientOptions = {}): string {
  if (options.socketPath != null) {
    return options.socketPath
  }
  return join(options.home ?? defaultHome(), SOCKET_FILE)
}

/** Connect to a running node's socket (`home` defaults to {@link defaultHome}) */
export async function connectClient (options: ClientOptions = {}): Promise<AgentnetClient> {
  const path = socketPathFor(options)
  const socket = createConnection(path)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve()
    })
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
        reject(new NodeNotRunningError(`no node is running (socket ${path} ${err.code === 'ENOENT' ? 'does not exist' : 'refuses connections'}); start one with "agentnet start"`))
      } else {
        reject(err)
      }
    })
  })
  const client = new AgentnetClient(socket)
  if (options.binary !== false) {
    try {
      await client.hello()
    } catch (err) {
      client.close()
      // accepted, then closed before answering: the node is stopping (a refusal, e.g. TooManyClients, is a RemoteError)
      if (err instanceof ConnectionClosedError) throw new NodeNotRunningError(`the node on ${path} closed the connection at once: it is stopping`)
      throw err
    }
  }
  return client
}
