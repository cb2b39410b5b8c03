/**
 * @packageDocumentation
 *
 * A running agentnet node: the home folder's lock, the libp2p node and the
 * IPC socket, started and stopped together. `agentnet start` is a thin shell
 * around {@link startDaemon}.
 *
 * @example
 *
 * ```ts
 * import { loadConfig } from '../config/index.ts'
 * import { startDaemon } from './index.ts'
 *
 * const daemon = await startDaemon({ home: '/tmp/agentnet-a', config: await loadConfig() })
 * process.once('SIGINT', () => { void daemon.stop() })
 * ```
 */

import { join } from 'node:path'
import { SOCKET_FILE } from '../client/index.ts'
import { loadOrCreateIdentity } from '../identity/index.ts'
import { AUDIT_LOG_FILE } from '../audit/index.ts'
import { TOKENS_FILE } from '../tokens/index.ts'
import { TRUST_FILE } from '../trust/constants.ts'
import { createIpcServer, DEFAULT_DROP_QUEUED_BYTES } from '../ipc/index.ts'
import { RpcError, RpcErrorCode } from '../ipc/rpc.ts'
import { createAgentNode } from '../agent/index.ts'
import { acquireLock } from './lock.ts'
import { removeStaleTempFiles } from '../utils/fs.ts'
import { createMethods } from './methods.ts'
import { NodeHost } from './host.ts'
import { rotationMethods } from './rotate.ts'
import type { Config } from '../config/index.ts'
import type { IpcServer, MethodHandler } from '../ipc/index.ts'
import type { AgentNode } from '../agent/index.ts'
import type { Readiness } from '../node/index.ts'
import type { Logger } from 'pino'

export { NodeAlreadyRunningError } from './lock.ts'

/** File name of the lock that keeps one node per home */
export const LOCK_FILE = 'node.lock'

export interface DaemonInit {
  home: string
  config: Config
  logger?: Logger
  /**
   * Called when a client asks the node to stop (`node.stop`, `agentnet
   * stop`); the default stops the daemon. The CLI passes its own shutdown
   * so that the process exits too.
   */
  onStopRequest?: () => void
  /**
   * Create a new identity even though the home holds state of a previous
   * node but no `identity.key` (`agentnet start --new-identity`). Without it
   * such a start is refused with `IdentityLost`. @default false
   */
  newIdentity?: boolean
}

/** What a node that ran on a home leaves behind: with any of these and no key, the key was lost */
const STATE_FILES = [TRUST_FILE, AUDIT_LOG_FILE, TOKENS_FILE] as const

export interface Daemon {
  readonly node: AgentNode
  readonly ipc: IpcServer
  readonly socketPath: string
  /** Close connections, flush state, remove the socket and the lock */
  stop: () => Promise<void>
}

export async function startDaemon (init: DaemonInit): Promise<Daemon> {
  const { home, config, logger } = init
  const identity = await loadOrCreateIdentity(home, { stateFiles: STATE_FILES, newIdentity: init.newIdentity === true })
  if (identity.created) {
    logger?.[init.newIdentity === true ? 'warn' : 'info']({ peerId: identity.peerId.toString(), home }, 'created a new identity')
  }
  const socketPath = join(home, SOCKET_FILE)
  if (Buffer.byteLength(socketPath) > 100) {
    throw new Error(`home path too long for a Unix socket (${socketPath}); use a shorter --home`)
  }
  const lock = await acquireLock(join(home, LOCK_FILE), socketPath)
  const releaseLock = lock.release
  // ours alone now (the lock): temporary files of writes a crash or a full disk cut short
  const leftovers = await removeStaleTempFiles(home).catch(() => [])
  if (leftovers.length > 0) {
    logger?.info({ files: leftovers }, 'removed temporary files of interrupted writes')
  }
  let node: AgentNode | undefined
  let host: NodeHost | undefined
  let ipc: IpcServer | undefined
  let requestStop = (): void => {}
  try {
    node = await createAgentNode({ config, privateKey: identity.privateKey, home, afterCrash: lock.recoveredStale, logger })
    await node.start()
    host = new NodeHost(node)
    let server: IpcServer | undefined
    const delivery = {
      limits: { maxClientBufferBytes: config.ipc.maxClientBufferBytes, maxTotalBufferBytes: config.ipc.maxTotalBufferBytes, deliveryWaitMs: config.ipc.deliveryWaitMs },
      totalQueued: () => server?.queuedBytes ?? 0,
      logger
    }
    server = ipc = createIpcServer({
      socketPath,
      methods: {
        ...createMethods(host, home, delivery),
        ...lifecycleMethods(host, () => { requestStop() }),
        // a live key rotation restarts the node in process (src/daemon/rotate.ts)
        ...rotationMethods(host, { home, config, logger, requestStop: () => { requestStop() } })
      },
      maxLineBytes: config.ipc.maxLineBytes,
      // a binary frame's body: what messaging accepts (larger ones are refused there anyway)
      maxBodyBytes: config.messaging.maxBodyBytes,
      maxConnections: config.ipc.maxConnections,
      writeHighWaterBytes: config.ipc.writeHighWaterBytes,
      // past the admission bound only replies to a client's own requests go: a client that asked for
      // this much and reads nothing for 30 s is dropped, with a log line
      dropQueuedBytes: Math.max(2 * config.ipc.maxClientBufferBytes, DEFAULT_DROP_QUEUED_BYTES),
      logger
    })
    await ipc.start()
  } catch (err) {
    await node?.stop().catch(() => {})
    await releaseLock()
    throw err
  }
  const startedHost = host
  const startedIpc = ipc
  let stopping: Promise<void> | undefined
  const daemon: Daemon = {
    get node () { return startedHost.node },
    ipc: startedIpc,
    socketPath,
    stop: async () => {
      stopping ??= (async () => {
        await startedIpc.stop().catch(err => logger?.warn({ err }, 'ipc stop failed'))
        try {
          // after a live key rotation whose new node did not start, the current node is already stopped
          await (await startedHost.ready().catch(() => startedHost.node)).stop()
        } catch (err) {
          // keep the lock: the next start then sees an unclean stop and protects itself as after a crash
          logger?.error({ err }, 'node did not stop cleanly')
          return
        }
        await releaseLock()
      })()
      await stopping
    }
  }
  requestStop = init.onStopRequest ?? (() => { void daemon.stop() })
  return daemon
}

/** `node.state`, `node.wait` and `node.stop`: what `agentnet wait`, `start --detach` and `agentnet stop` use */
function lifecycleMethods (host: NodeHost, requestStop: () => void): Record<string, MethodHandler> {
  const state = (): Readiness & { pid: number } => {
    const node = host.node
    if (node.milestones == null) throw new RpcError(RpcErrorCode.Unavailable, 'Starting', 'the node is starting')
    return { ...node.milestones.state(), pid: process.pid }
  }
  return {
    'node.state': async () => state(),
    'node.wait': async (params, { signal }) => {
      const timeoutMs = (params as { timeoutMs?: unknown } | undefined)?.timeoutMs
      const ms = typeof timeoutMs === 'number' && Number.isFinite(timeoutMs) && timeoutMs > 0 ? Math.min(timeoutMs, 600_000) : 30_000
      const timeout = AbortSignal.timeout(ms)
      state()
      try {
        return { ...await (await host.ready()).milestones.whenReady(AbortSignal.any([signal, timeout])), pid: process.pid }
      } catch (err) {
        if (timeout.aborted) {
          const now = state()
          const waitingFor = !now.listening ? 'listening' : now.bootstrap.connected === 0 ? 'a bootstrap peer to connect' : 'the DHT to be joined'
          throw new RpcError(RpcErrorCode.ApplicationError, 'Timeout', `not ready after ${ms / 1000} s: waiting for ${waitingFor}`, { state: now })
        }
        throw err
      }
    },
    'node.stop': async () => {
      // answer first, then stop (the IPC server closes every connection)
      setTimeout(requestStop, 20)
      return { pid: process.pid, stopping: true }
    }
  }
}
