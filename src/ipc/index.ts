/**
 * @packageDocumentation
 *
 * The local API: a Unix domain socket (mode 0600) speaking JSON-RPC 2.0, one
 * JSON object per line. A client that says `ipc.hello {features: ["binary"]}`
 * may also exchange message bodies as raw bytes: a header line with
 * `"bodyBytes": N` followed by N bytes (see `frames.ts` and the README's
 * "Binary bodies"); plain JSON clients keep working unchanged. Any language can drive a node with nothing but a
 * socket. Requests on one connection run concurrently and are answered in
 * completion order, matched by `id`. Bad input — invalid JSON, unknown
 * methods, bad params — is answered with a JSON-RPC error and the connection
 * stays open; a line longer than `maxLineBytes` is answered with a
 * `LineTooLong` error and that connection (only) is closed. What the node
 * writes in one tick leaves in one `writev`; a client whose output queue is
 * over `writeHighWaterBytes` is not read until it drains.
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

import { chmod, unlink } from 'node:fs/promises'
import { createServer } from 'node:net'
import { FrameReader } from './frames.ts'
import { LineTooLongError } from './lines.ts'
import { RateLimitedLog } from './rate-log.ts'
import { RpcError, RpcErrorCode, toRpcError } from './rpc.ts'
import { IPC_FEATURES, Session } from './session.ts'
import type { IpcFrame } from './frames.ts'
import type { JsonRpcId, JsonRpcResponse } from './rpc.ts'
import type { IpcSession } from './session.ts'
import type { Server, Socket } from 'node:net'
import type { Logger } from 'pino'

export { RpcError, RpcErrorCode, invalidParams, toRpcError } from './rpc.ts'
export type { JsonRpcId, JsonRpcRequest, JsonRpcResponse, JsonRpcNotification, JsonRpcErrorObject } from './rpc.ts'
export { LineSplitter, LineTooLongError } from './lines.ts'
export { FrameReader, encodeFrame, BODY_BYTES } from './frames.ts'
export type { IpcFrame, FrameReaderInit } from './frames.ts'
export { IPC_FEATURES } from './session.ts'
export type { IpcSession, IpcSessionEvents, IpcFeature } from './session.ts'
export { RateLimitedLog } from './rate-log.ts'

/** Default longest request line: 4 MiB, room for a 1 MiB body base64- or JSON-encoded */
export const DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
/** Default longest raw body of a binary frame */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024
/** Default number of concurrent client connections */
export const DEFAULT_MAX_CONNECTIONS = 64
/** Default queued output past which a client's requests are not read until it drained to half */
export const DEFAULT_WRITE_HIGH_WATER_BYTES = 16 * 1024 * 1024
/** Default queued output past which a client that does not read is disconnected (with a log line) */
export const DEFAULT_DROP_QUEUED_BYTES = 64 * 1024 * 1024
/** A client over the drop bound that took no bytes for this long is not reading, ms */
export const DEFAULT_STALL_MS = 30_000

/**
 * A method's result with a raw body: sent as a binary frame (`result` plus
 * `bodyBytes`). Handlers return it only to sessions that negotiated `binary`.
 */
export class BodyResult {
  readonly result: Record<string, unknown>
  readonly body: Uint8Array

  constructor (result: Record<string, unknown>, body: Uint8Array) {
    this.result = result
    this.body = body
  }
}

export interface MethodContext {
  session: IpcSession
  /** Aborted when the client disconnects or the server stops */
  signal: AbortSignal
  /** The raw body of a binary frame (`bodyBytes`), when the request carried one */
  body?: Uint8Array
}

export type MethodHandler = (params: unknown, context: MethodContext) => Promise<unknown>

export interface IpcServerInit {
  socketPath: string
  methods: Record<string, MethodHandler>
  /** @default 4 MiB */
  maxLineBytes?: number
  /** Longest raw body in a binary frame. @default 1 MiB */
  maxBodyBytes?: number
  /** @default 64 */
  maxConnections?: number
  /** @default 16 MiB */
  writeHighWaterBytes?: number
  /** @default 64 MiB */
  dropQueuedBytes?: number
  /** @default 30 s */
  stallMs?: number
  logger?: Logger
}

export interface IpcServer {
  start: () => Promise<void>
  stop: () => Promise<void>
  readonly sessions: ReadonlySet<IpcSession>
  /** Output queued for all clients, bytes */
  readonly queuedBytes: number
}

class DefaultIpcServer implements IpcServer {
  private readonly init: Required<Omit<IpcServerInit, 'logger'>> & { logger?: Logger }
  private server: Server | undefined
  private nextSessionId = 1
  private readonly live = new Set<Session>()
  private readonly sockets = new Set<Socket>()
  private readonly rateLog = new RateLimitedLog()

  constructor (init: IpcServerInit) {
    this.init = {
      maxLineBytes: DEFAULT_MAX_LINE_BYTES,
      maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
      maxConnections: DEFAULT_MAX_CONNECTIONS,
      writeHighWaterBytes: DEFAULT_WRITE_HIGH_WATER_BYTES,
      dropQueuedBytes: DEFAULT_DROP_QUEUED_BYTES,
      stallMs: DEFAULT_STALL_MS,
      ...init
    }
  }

  get sessions (): ReadonlySet<IpcSession> {
    return this.live
  }

  get queuedBytes (): number {
    let total = 0
    for (const session of this.live) total += session.queuedBytes
    return total
  }

  async start (): Promise<void> {
    // no server.maxConnections: Node would close surplus clients without a word; accept() refuses them with an error line
    const server = createServer({ allowHalfOpen: false, highWaterMark: this.init.writeHighWaterBytes }, socket => { this.accept(socket) })
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

  private refuse (socket: Socket): void {
    this.rateLog.warn(this.init.logger, 'connections', { limit: this.init.maxConnections }, 'ipc connection refused: too many clients (ipc.maxConnections)')
    socket.on('error', () => {})
    socket.end(JSON.stringify(errorResponse(null, RpcErrorCode.Unavailable, 'TooManyClients', `the node serves at most ${this.init.maxConnections} local clients at once (ipc.maxConnections); try again later`)) + '\n')
    setTimeout(() => socket.destroy(), 1000).unref()
  }

  private accept (socket: Socket): void {
    if (this.live.size >= this.init.maxConnections) {
      this.refuse(socket)
      return
    }
    const session = new Session(this.nextSessionId++, socket, { writeHighWaterBytes: this.init.writeHighWaterBytes, dropQueuedBytes: this.init.dropQueuedBytes, stallMs: this.init.stallMs }, this.init.logger)
    const reader = new FrameReader({ maxLineBytes: this.init.maxLineBytes, maxBodyBytes: this.init.maxBodyBytes })
    this.live.add(session)
    this.sockets.add(socket)
    socket.on('data', (chunk: Buffer) => {
      let frames: IpcFrame[]
      try {
        frames = reader.push(chunk)
      } catch (err) {
        if (err instanceof LineTooLongError) {
          session.send({ jsonrpc: '2.0', id: null, error: { code: RpcErrorCode.LineTooLong, message: err.message, data: { code: 'LineTooLong' } } })
          socket.end()
          socket.pause()
          setTimeout(() => socket.destroy(), 1000).unref()
          return
        }
        throw err
      }
      for (const frame of frames) {
        this.handleFrame(session, frame)
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.live.delete(session)
      this.sockets.delete(socket)
      session.markClosed()
    })
  }

  private handleFrame (session: Session, frame: IpcFrame): void {
    if (frame.kind === 'invalid') {
      session.send(errorResponse(replyIdOf(frame.message), frame.code === 'ParseError' ? RpcErrorCode.ParseError : RpcErrorCode.InvalidRequest, frame.code, frame.reason))
      return
    }
    const request = frame.message
    const id = request.id
    const validId = id === undefined || id === null || typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id))
    if (!validId) {
      session.send(errorResponse(null, RpcErrorCode.InvalidRequest, 'InvalidRequest', 'id must be a string, number or null'))
      return
    }
    const replyId = (id ?? null) as JsonRpcId
    if (frame.kind === 'tooLarge') {
      session.send(errorResponse(replyId, RpcErrorCode.InvalidParams, 'BodyTooLarge', `bodyBytes ${frame.declared} is over the limit of ${this.init.maxBodyBytes}`))
      return
    }
    if (request.jsonrpc !== '2.0' || typeof request.method !== 'string') {
      session.send(errorResponse(replyId, RpcErrorCode.InvalidRequest, 'InvalidRequest', 'expected {"jsonrpc":"2.0","method":string,...}'))
      return
    }
    const isNotification = id === undefined
    if (request.method === 'ipc.hello') {
      if (!isNotification) session.send({ jsonrpc: '2.0', id: replyId, result: this.hello(session, request.params) })
      return
    }
    const handler = Object.hasOwn(this.init.methods, request.method) ? this.init.methods[request.method] : undefined
    if (handler == null) {
      if (!isNotification) {
        session.send(errorResponse(replyId, RpcErrorCode.MethodNotFound, 'MethodNotFound', `unknown method ${JSON.stringify(request.method).slice(0, 200)}`))
      }
      return
    }
    handler(request.params, { session, signal: session.controller.signal, body: frame.body }).then(result => {
      if (isNotification) return
      if (result instanceof BodyResult) {
        session.send({ jsonrpc: '2.0', id: replyId, result: result.result }, result.body)
      } else {
        session.send({ jsonrpc: '2.0', id: replyId, result: result ?? null })
      }
    }, (err: unknown) => {
      if (!(err instanceof RpcError)) {
        this.init.logger?.debug({ err, method: request.method }, 'ipc method failed')
      }
      if (!isNotification) {
        session.send({ jsonrpc: '2.0', id: replyId, error: toRpcError(err) } satisfies JsonRpcResponse)
      }
    })
  }

  /** `ipc.hello {features}`: the features both sides speak from now on, and the limits */
  private hello (session: Session, params: unknown): Record<string, unknown> {
    const asked = typeof params === 'object' && params !== null && Array.isArray((params as { features?: unknown }).features)
      ? (params as { features: unknown[] }).features
      : []
    const features = IPC_FEATURES.filter(f => asked.includes(f))
    session.binary = features.includes('binary')
    return { features, maxBodyBytes: this.init.maxBodyBytes, maxLineBytes: this.init.maxLineBytes }
  }
}

function replyIdOf (message: Record<string, unknown> | undefined): JsonRpcId {
  const id = message?.id
  return typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id)) ? id : null
}

function errorResponse (id: JsonRpcId, rpcCode: number, code: string, message: string): JsonRpcResponse & Record<string, unknown> {
  return { jsonrpc: '2.0', id, error: { code: rpcCode, message, data: { code } } }
}

export function createIpcServer (init: IpcServerInit): IpcServer {
  return new DefaultIpcServer(init)
}
