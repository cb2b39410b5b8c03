/**
 * @packageDocumentation
 *
 * agentnet: a peer-to-peer overlay network node for AI agents. The package's
 * main entry exposes the building blocks; most programs want the SDK in
 * `agentnet/client` to drive a running node.
 */

export * from './client/index.ts'
export { loadConfig, validateConfig, ConfigError } from './config/index.ts'
export type { Config } from './config/index.ts'
export { startDaemon } from './daemon/index.ts'
export type { Daemon, DaemonInit } from './daemon/index.ts'
export { createAgentNode, AgentNode } from './agent/index.ts'
export { resolveHome, loadIdentity, createIdentity, loadOrCreateIdentity } from './identity/index.ts'
