/**
 * @packageDocumentation
 *
 * The local API: a Unix domain socket (mode 0600) speaking JSON-RPC 2.0, one
 * JSON object per line. Any language can drive a node with nothing but a
 * socket. Requests on one connection run concurrently and are answered in
 * completion order, matched by `id`. Bad input — invalid JSON, unknown
 * methods, bad params — is answered with a JSON-RPC error and the connection
 * stays open; a line longer than `maxLineBytes` is answered with a
 * `LineTooLong` error and that connection (only) is closed.
 *
 * @example
 *
 * ```ts
 * import { createIpcServer } from './index.ts'
 *
 * const server = createIpcServer({
 *   socketPath: '/tmp/agentnet-a/agentnet.sock',
 *   methods: { 'node.info': async () => ({ peerId: '12D3KooW…' }) }
 * })
 * await server.start()
 * ```
 */

import { EventEmitter } from 'node:events'
import { chmod, unlink } from 'node:fs/promises'
import { createServer } from 'node:net'
import { LineSplitter, LineTooLongError } from './lines.ts'
import { RpcError, RpcErrorCode, toRpcError } from './rpc.ts'
import type { JsonRpcId, JsonRpcResponse } from './rpc.ts'
import type { Server, Socket } from 'node:net'
import type { Logger } from 'pino'

export { RpcError, RpcErrorCode, invalidParams, toRpcError } from './rpc.ts'
export type { JsonRpcId, JsonRpcRequest, JsonRpcResponse, JsonRpcNotification, JsonRpcErrorObject } from './rpc.ts'
export { LineSplitter, LineTooLongError } from './lines.ts'

/** Default longest request line: 4 MiB, room for a 1 MiB body base64- or JSON-encoded */
export const DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
/** Default number of concurrent client connections */
export const DEFAULT_MAX_CONNECTIONS = 64
/** A client that stops reading is dropped once this much output is queued for it */
export const MAX_QUEUED_OUTPUT_BYTES = 64 * 1024 * 1024

/** One connected local client */
export interface IpcSession {
  readonly id: number
  /** Send a JSON-RPC notification to this client; false if it is gone */
  notify: (method: string, params: unknown) => boolean
  /** Emits `close` once when the client disconnects */
  readonly events: EventEmitter<{ close: [] }>
  readonly closed: boolean
}

export interface MethodContext {
  session: IpcSession
  /** Aborted when the client disconnects or the server stops */
  signal: AbortSignal
}

export type MethodHandler = (params: unknown, context: MethodContext) => Promise<unknown>

export interface IpcServerInit {
  socketPath: string
  methods: Record<string, MethodHandler>
  /** @default 4 MiB */
  maxLineBytes?: number
  /** @default 64 */
  maxConnections?: number
  logger?: Logger
}

export interface IpcServer {
  start: () => Promise<void>
  stop: () => Promise<void>
  readonly sessions: ReadonlySet<IpcSession>
}

class Session implements IpcSession {
  readonly id: number
  readonly events = new EventEmitter<{ close: [] }>()
  readonly controller = new AbortController()
  closed = false
  private readonly socket: Socket

  constructor (id: number, socket: Socket) {
    this.id = id
    this.socket = socket
  }

  write (message: object): boolean {
    if (this.closed || this.socket.destroyed) {
      return false
    }
    if (this.socket.writableLength > MAX_QUEUED_OUTPUT_BYTES) {
      // the client is not reading; dropping it protects the node's memory
      this.socket.destroy()
      return false
    }
    this.socket.write(JSON.stringify(message) + '\n')
    return true
  }

  notify (method: string, params: unknown): boolean {
    return this.write({ jsonrpc: '2.0', method, params })
  }

  markClosed (): void {
    if (this.closed) {
      return
    }
    this.closed = true
    this.controller.abort(new Error('IPC client disconnected'))
    this.events.emit('close')
  }
}

class DefaultIpcServer implements IpcServer {
  private readonly init: Required<Omit<IpcServerInit, 'logger'>> & { logger?: Logger }
  private server: Server | undefined
  private nextSessionId = 1
  private readonly live = new Set<Session>()
  private readonly sockets = new Set<Socket>()

  constructor (init: IpcServerInit) {
    this.init = {
      maxLineBytes: DEFAULT_MAX_LINE_BYTES,
      maxConnections: DEFAULT_MAX_CONNECTIONS,
      ...init
    }
  }

  get sessions (): ReadonlySet<IpcSession> {
    return this.live
  }

  async start (): Promise<void> {
    const server = createServer({ allowHalfOpen: false }, socket => { this.accept(socket) })
    server.maxConnections = this.init.maxConnections
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.init.socketPath, () => {
        server.off('error', reject)
        resolve()
      })
    })
    await chmod(this.init.socketPath, 0o600)
    this.server = server
    this.init.logger?.info({ socket: this.init.socketPath }, 'ipc listening')
  }

  async stop (): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const socket of this.sockets) {
      socket.destroy()
    }
    if (server != null) {
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
    await unlink(this.init.socketPath).catch(() => {})
  }

  private accept (socket: Socket): void {
    const session = new Session(this.nextSessionId++, socket)
    const splitter = new LineSplitter(this.init.maxLineBytes)
    this.live.add(session)
    this.sockets.add(socket)
    socket.on('data', (chunk: Buffer) => {
      let lines: string[]
      try {
        lines = splitter.push(chunk)
      } catch (err) {
        if (err instanceof LineTooLongError) {
          session.write({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.LineTooLong, message: err.message, data: { code: 'LineTooLong' } } })
          socket.end()
          socket.pause()
          setTimeout(() => socket.destroy(), 1000).unref()
          return
        }
        throw err
      }
      for (const line of lines) {
        this.handleLine(session, line)
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.live.delete(session)
      this.sockets.delete(socket)
      session.markClosed()
    })
  }

  private handleLine (session: Session, line: string): void {
    if (line.trim() === '') {
      return
    }
    let message: unknown
    try {
      message = JSON.parse(line)
    } catch {
      session.write(errorResponse(null, RpcErrorCode.ParseError, 'ParseError', 'invalid JSON'))
      return
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      session.write(errorResponse(null, RpcErrorCode.InvalidRequest, 'InvalidRequest', 'a request must be a JSON object (batches are not supported)'))
      return
    }
    const request = message as Record<string, unknown>
    const id = request.id
    const validId = id === undefined || id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))
    if (!validId) {
      session.write(errorResponse(null, RpcErrorCode.InvalidRequest, 'InvalidRequest', 'id must be a string, number or null'))
      return
    }
    const replyId = (id ?? null) as JsonRpcId
    if (request.jsonrpc !== '2.0' || typeof request.method !== 'string') {
      session.write(errorResponse(replyId, RpcErrorCode.InvalidRequest, 'InvalidRequest', 'expected {"jsonrpc":"2.0","method":string,...}'))
      return
    }
    const isNotification = id === undefined
    const handler = Object.hasOwn(this.init.methods, request.method) ? this.init.methods[request.method] : undefined
    if (handler == null) {
      if (!isNotification) {
        session.write(errorResponse(replyId, RpcErrorCode.MethodNotFound, 'MethodNotFound', `unknown method ${JSON.stringify(request.method).slice(0, 200)}`))
      }
      return
    }
    handler(request.params, { session, signal: session.controller.signal }).then(result => {
      if (!isNotification) {
        session.write({ jsonrpc: '2.0', id: replyId, result: result ?? null } satisfies JsonRpcResponse)
      }
    }, (err: unknown) => {
      if (!(err instanceof RpcError)) {
        this.init.logger?.debug({ err, method: request.method }, 'ipc method failed')
      }
      if (!isNotification) {
        session.write({ jsonrpc: '2.0', id: replyId, error: toRpcError(err) } satisfies JsonRpcResponse)
      }
    })
  }
}

function errorResponse (id: JsonRpcId, rpcCode: number, code: string, message: string): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: { code: rpcCode, message, data: { code } } }
}

export function createIpcServer (init: IpcServerInit): IpcServer {
  return new DefaultIpcServer(init)
}
