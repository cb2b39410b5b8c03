/**
 * The agent node behind the IPC socket, replaceable while the daemon runs:
 * a live key rotation (`identity.rotate`) stops the node on the old key and
 * starts one on the new key, in the same process, while the socket, the
 * clients' connections, the services they registered and their
 * subscriptions stay. Methods wait for a switch in progress
 * ({@link NodeHost.ready}); events of whichever node is current are relayed.
 *
 * @module
 */

import { EventEmitter } from 'node:events'
import type { AgentNode } from '../agent/index.ts'
import type { GroupMessage } from '../groups/index.ts'
import type { PendingRequest } from '../trust/index.ts'

export interface NodeHostEvents {
  /** A new trust request (the current node's `trust` `pending` event) */
  pending: [PendingRequest]
  /** A group message (the current node's `groups` `received` event) */
  received: [GroupMessage]
  /** The node was replaced: re-attach what lives on it */
  replaced: [AgentNode]
}

export class NodeHost extends EventEmitter<NodeHostEvents> {
  private current: AgentNode
  private switching: Promise<unknown> | undefined
  private readonly onPending = (request: PendingRequest): void => { this.emit('pending', request) }
  private readonly onReceived = (message: GroupMessage): void => { this.emit('received', message) }

  constructor (node: AgentNode) {
    super()
    // every IPC subscription listens here, and many clients may subscribe
    this.setMaxListeners(0)
    this.current = node
    this.attach(node)
  }

  /** The node now (during a switch: the one being stopped or started) */
  get node (): AgentNode {
    return this.current
  }

  /** The node, once no switch is in progress */
  async ready (): Promise<AgentNode> {
    while (this.switching !== undefined) await this.switching.catch(() => {})
    return this.current
  }

  /**
   * Replace the node: `make` stops the current one and returns its started
   * successor. Calls wait meanwhile; one switch at a time. When `make`
   * fails, the current node stays (whatever state `make` left it in).
   */
  async replace (make: (old: AgentNode) => Promise<AgentNode>): Promise<AgentNode> {
    // no await between this check and taking `switching` below: two callers cannot both pass
    while (this.switching !== undefined) await this.switching.catch(() => {})
    const old = this.current
    const run = (async () => {
      this.detach(old)
      let next: AgentNode
      try {
        next = await make(old)
      } catch (err) {
        this.attach(old)
        throw err
      }
      this.current = next
      this.attach(next)
      this.emit('replaced', next)
      return next
    })()
    this.switching = run
    try {
      return await run
    } finally {
      this.switching = undefined
    }
  }

  private attach (node: AgentNode): void {
    node.trust.on('pending', this.onPending)
    node.groups.on('received', this.onReceived)
  }

  private detach (node: AgentNode): void {
    node.trust.off('pending', this.onPending)
    node.groups.off('received', this.onReceived)
  }
}
