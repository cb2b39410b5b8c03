/**
 * `identity.rotate` on a running node: a key rotation without stopping the
 * daemon. libp2p fixes a node's peer ID when it is created, so the key
 * cannot be swapped inside it; instead the agent node is restarted in
 * process under the new key, while the IPC socket, the clients'
 * connections, their registered services and subscriptions stay
 * ({@link NodeHost}). In order:
 *
 * 1. groups this node commits for hand the committer role to the next
 *    member (term + 1), which re-adds this node under its new ID once the
 *    notice reaches it (src/rotation/follow.ts);
 * 2. persist first: the new key and the succession record are written
 *    (`prepareRotation`), the key in use untouched;
 * 3. the node on the old key stops (its replay cache and audit log closed cleanly);
 * 4. the keys are swapped and the home's key-bound state migrated (`migrateHome`);
 * 5. a node on the new key starts; its successor service runs the old ID for
 *    the grace period and tells the trusted peers.
 *
 * A crash at any point is completed by the next start (the same steps as a
 * stopped-node rotation). If the new node cannot start, the daemon stops,
 * and starting it again completes the rotation.
 *
 * @module
 */

import { createAgentNode } from '../agent/index.ts'
import { AgentnetError } from '../errors/index.ts'
import { loadIdentity } from '../identity/index.ts'
import { MAX_GRACE_MS } from '../identity/rotation.ts'
import { prepareRotation, readRotation, RotationInProgressError } from '../identity/succession.ts'
import { invalidParams } from '../ipc/index.ts'
import { migrateHome } from '../rotation/index.ts'
import type { NodeHost } from './host.ts'
import type { AgentNode } from '../agent/index.ts'
import type { Config } from '../config/index.ts'
import type { RotationState } from '../identity/succession.ts'
import type { MethodHandler } from '../ipc/index.ts'
import type { Logger } from 'pino'

/** The node on the new key did not start; the daemon stops, and the next start completes the rotation */
export class RotationRestartError extends AgentnetError { override readonly code = 'RotationRestartFailed' }

export interface LiveRotationInit {
  home: string
  config: Config
  logger?: Logger
  /** Stop the daemon (the new node could not start) */
  requestStop: () => void
}

export interface LiveRotationResult {
  state: RotationState
  /** Groups whose committer role passed to the next member before the swap */
  handedOver: string[]
}

/** Hand the committer role of every group this node commits for (with other members) to the next member */
async function handOverGroups (node: AgentNode, logger?: Logger): Promise<string[]> {
  const self = node.peerId.toString()
  const out: string[] = []
  // not loaded: the node is in no group, nothing to hand over
  const groups = node.groups.loaded()
  if (groups == null) return out
  for (const g of groups.list()) {
    if (g.committer !== self || g.members.length < 2) continue
    try {
      await groups.handOver(groups.group(g.groupId))
      out.push(g.groupId)
    } catch (err) {
      // the group keeps running: its members take over when this committer goes quiet
      logger?.warn({ groupId: g.groupId, err: (err as Error).message }, 'could not hand over the committer role before the key rotation')
    }
  }
  return out
}

/** Rotate the key of the node `host` runs, restarting it in process on the new key */
export async function rotateRunning (host: NodeHost, init: LiveRotationInit, options: { graceMs?: number } = {}): Promise<LiveRotationResult> {
  const { home, config, logger } = init
  let state: RotationState | undefined
  let handedOver: string[] = []
  await host.replace(async old => {
    if (await readRotation(home) !== undefined) throw new RotationInProgressError('a key rotation is in progress; it finishes when its grace period ends')
    handedOver = await handOverGroups(old, logger)
    state = await prepareRotation(home, { graceMs: options.graceMs })
    try {
      await old.stop()
      await migrateHome(home)
      const { privateKey } = await loadIdentity(home)
      const next = await createAgentNode({ config, privateKey, home, logger })
      await next.start()
      logger?.info({ old: state.old, new: state.new }, 'key rotated: the node runs on the new key')
      return next
    } catch (err) {
      logger?.error({ err }, 'the node on the new key did not start; stopping (the next start completes the rotation)')
      setTimeout(init.requestStop, 20)
      throw new RotationRestartError(`the key was rotated on disk but the node on the new key did not start (${(err as Error).message}); the node stops: start it again to complete the rotation`)
    }
  })
  if (state === undefined) throw new RotationRestartError('the rotation did not run')
  return { state, handedOver }
}

/** `identity.rotate` and `identity.status` */
export function rotationMethods (host: NodeHost, init: LiveRotationInit): Record<string, MethodHandler> {
  return {
    'identity.rotate': async (params) => {
      const p = (params ?? {}) as Record<string, unknown>
      if (typeof p !== 'object' || Array.isArray(p)) throw invalidParams('params must be an object')
      const graceMs = p.graceMs
      if (graceMs !== undefined && (typeof graceMs !== 'number' || !Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS)) {
        throw invalidParams(`params.graceMs must be an integer from 0 to ${MAX_GRACE_MS}`)
      }
      const { state: s, handedOver } = await rotateRunning(host, init, { graceMs: graceMs as number | undefined })
      return { old: s.old, new: s.new, ts: s.ts, graceMs: s.graceMs, graceEndsAt: new Date(s.ts + s.graceMs).toISOString(), record: s.record, handedOver }
    },
    'identity.status': async () => {
      const status = (await host.ready()).rotation.status()
      return status === undefined ? { rotating: false } : { rotating: true, ...status, graceEndsAt: new Date(status.ts + status.graceMs).toISOString() }
    }
  }
}
