/**
 * JSON-RPC 2.0 shapes and error codes shared by the IPC server and client.
 */

import { AgentnetError } from '../errors/index.ts'
import type { ErrorCode } from '../errors/index.ts'
import { LeakBlockedError } from '../guard/errors.ts'

/** Standard JSON-RPC error codes, plus agentnet's own from -32000 down */
export const RpcErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** An agentnet error; `data.code` names it (e.g. `PeerUnreachable`) */
  ApplicationError: -32000,
  /** The request line was longer than the server accepts; the connection is closed */
  LineTooLong: -32001,
  /** The server is shutting down or overloaded */
  Unavailable: -32002
} as const

export type JsonRpcId = string | number | null

export interface JsonRpcRequest {
  jsonrpc: '2.0'
  id?: JsonRpcId
  method: string
  params?: unknown
}

export interface JsonRpcErrorObject {
  code: number
  message: string
  data?: { code?: string, [key: string]: unknown }
}

export interface JsonRpcResponse {
  jsonrpc: '2.0'
  id: JsonRpcId
  result?: unknown
  error?: JsonRpcErrorObject
}

export interface JsonRpcNotification {
  jsonrpc: '2.0'
  method: string
  params?: unknown
}

/**
 * An error a method handler throws to answer with a specific JSON-RPC error.
 * `name` (e.g. `InvalidParams`, `PeerUnreachable`) travels as `data.code` so
 * clients can branch on it without parsing messages.
 */
export class RpcError extends AgentnetError {
  readonly rpcCode: number
  override readonly code: ErrorCode
  readonly data: Record<string, unknown> | undefined

  constructor (rpcCode: number, code: ErrorCode, message: string, data?: Record<string, unknown>) {
    super(message)
    this.name = 'RpcError'
    this.rpcCode = rpcCode
    this.code = code
    this.data = data
  }

  toJSON (): JsonRpcErrorObject {
    return { code: this.rpcCode, message: this.message, data: { ...this.data, code: this.code } }
  }
}

export function invalidParams (message: string): RpcError {
  return new RpcError(RpcErrorCode.InvalidParams, 'InvalidParams', message)
}

/** Turn any thrown value into a JSON-RPC error object without leaking stacks */
export function toRpcError (err: unknown): JsonRpcErrorObject {
  if (err instanceof RpcError) {
    return err.toJSON()
  }
  if (err instanceof Error) {
    if (err instanceof AgentnetError) {
      // a layer below the IPC that judged the caller's input (e.g. the guard) says InvalidParams
      // a guard block names its findings (offsets, labels, categories; never values), as README "Leakage guard" says
      const extra = err instanceof LeakBlockedError ? { findings: err.findings } : {}
      return { code: err.code === 'InvalidParams' ? RpcErrorCode.InvalidParams : RpcErrorCode.ApplicationError, message: err.message, data: { ...extra, code: err.code } }
    }
    return { code: RpcErrorCode.InternalError, message: err.message, data: { code: 'InternalError' } }
  }
  return { code: RpcErrorCode.InternalError, message: String(err), data: { code: 'InternalError' } }
}
