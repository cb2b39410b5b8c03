import { invalidParams } from '../ipc/index.ts'
import type { MethodHandler } from '../ipc/index.ts'
import type { AgentNode } from '../node/index.ts'

function paramsObject (params: unknown): Record<string, unknown> {
  if (params === undefined || params === null) {
    return {}
  }
  if (typeof params !== 'object' || Array.isArray(params)) {
    throw invalidParams('params must be an object')
  }
  return params as Record<string, unknown>
}

function requireString (params: unknown, key: string): string {
  const value = paramsObject(params)[key]
  if (typeof value !== 'string' || value === '') {
    throw invalidParams(`params.${key} must be a non-empty string`)
  }
  return value
}

/** The JSON-RPC methods of the local socket; README "Local API" documents each */
export function createMethods (node: AgentNode): Record<string, MethodHandler> {
  return {
    'node.info': async (params) => {
      paramsObject(params)
      return node.info()
    },
    'node.status': async (params) => {
      paramsObject(params)
      return node.status()
    },
    'peers.list': async (params) => {
      paramsObject(params)
      return node.peers()
    },
    'peer.connect': async (params, { signal }) => {
      const connection = await node.connect(requireString(params, 'target'), signal)
      return { peerId: connection.remotePeer.toString(), address: connection.remoteAddr.toString() }
    },
    'peer.ping': async (params, { signal }) => {
      return node.ping(requireString(params, 'target'), signal)
    }
  }
}
