/**
 * The MLS groups service (`src/groups`), loaded when the node first needs it.
 *
 * `src/groups` brings ts-mls with its HPKE and AES code: ~170 modules and, at
 * import, AES table generation; together ~15 % of a node's start-up and a few
 * MiB of heap, paid by every node although most are in no group. This
 * stand-in offers the same surface and loads the real service:
 * - at start, when the home holds group state (`<home>/groups/*.bin`): such
 *   a node is a member, so nothing changes for it;
 * - on the first local call that needs it (create, add, remove, leave, send);
 * - on the first inbound stream of the MLS protocol (a peer asking for a key
 *   package, a Welcome): until then a light handler holds the protocol, so
 *   peers see the protocol from the start, and that first stream is handed
 *   to the real service once it runs (the real handler replaces the light one
 *   without a gap: both are registered with `force`).
 * Before it is loaded the node has no group: `list()` is empty and a revoked
 * or rotated peer is in none of its groups.
 *
 * Not started (groups off in the config), every call goes to a real service
 * that is not started either, which refuses it exactly as before.
 */

import { EventEmitter } from 'node:events'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { MLS_PROTOCOL, STATE_DIR } from '../groups/constants.ts'
import type { GroupInfo, GroupsComponents, GroupsEvents, GroupsInit, GroupsService, GroupsLibp2p } from '../groups/index.ts'
import type { Connection, Startable, Stream, StreamHandler } from '@libp2p/interface'

/** What the rest of the node uses of the groups service */
export type AgentGroups = Pick<GroupsService, 'create' | 'add' | 'remove' | 'leave' | 'send' | 'list' | 'onTrustRevoked' | 'isStarted'> &
  Pick<EventEmitter<GroupsEvents>, 'on' | 'off'> & {
    /** The real service once loaded (undefined before: the node is then in no group) */
    loaded: () => GroupsService | undefined
  }

type Events = keyof GroupsEvents
const EVENTS: Events[] = ['received', 'joined', 'removed']

/** Inbound MLS streams at once, as the real service allows */
const MAX_INBOUND_STREAMS = 256

export class LazyGroups extends EventEmitter<GroupsEvents> implements AgentGroups, Startable {
  private readonly components: GroupsComponents
  private readonly init: GroupsInit
  private loading?: Promise<GroupsService>
  private real?: GroupsService
  /** The handler the real service registered (through {@link adapter}) */
  private realHandler?: StreamHandler
  private started = false
  private readonly adapter: GroupsLibp2p

  constructor (components: GroupsComponents, init: GroupsInit) {
    super()
    this.components = components
    this.init = init
    const libp2p = components.libp2p
    // the real service's handler replaces the light one without a moment
    // where the protocol has no handler
    this.adapter = {
      peerId: libp2p.peerId,
      handle: async (protocol, handler, options) => {
        if (protocol === MLS_PROTOCOL) this.realHandler = handler
        await libp2p.handle(protocol, handler, { ...options, force: true })
      },
      unhandle: libp2p.unhandle.bind(libp2p),
      dialProtocol: libp2p.dialProtocol.bind(libp2p),
      addEventListener: libp2p.addEventListener.bind(libp2p),
      removeEventListener: libp2p.removeEventListener.bind(libp2p),
      getConnections: libp2p.getConnections.bind(libp2p)
    }
  }

  readonly [Symbol.toStringTag] = '@agentnet/lazy-groups'

  /** Whether the real service (and ts-mls) is loaded */
  isLoaded (): boolean {
    return this.real != null
  }

  /**
   * The real service once loaded; undefined before, when the node is in no
   * group (for code that needs more than this surface, e.g. a rotated
   * committer's hand-over, which has nothing to do then)
   */
  loaded (): GroupsService | undefined {
    return this.real
  }

  isStarted (): boolean {
    return this.real?.isStarted() ?? this.started
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    if (await hasGroupState(this.init.home)) {
      await this.load()
      return
    }
    await this.components.libp2p.handle(MLS_PROTOCOL, (stream: Stream, connection: Connection) => {
      void this.handOver(stream, connection)
    }, { maxInboundStreams: MAX_INBOUND_STREAMS })
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    const real = await this.loading?.catch(() => undefined)
    if (real != null) {
      await real.stop()
    } else {
      await this.components.libp2p.unhandle(MLS_PROTOCOL).catch(() => {})
    }
  }

  /** The real service: imported, built and (when this one runs) started, once */
  private async load (): Promise<GroupsService> {
    this.loading ??= (async () => {
      const { groups } = await import('../groups/index.ts')
      const real = groups(this.init)({ ...this.components, libp2p: this.adapter })
      for (const event of EVENTS) {
        real.on(event, (payload: any) => { this.emit(event, payload) })
      }
      if (this.started) await real.start()
      this.real = real
      return real
    })().catch((err: unknown) => {
      // not remembered: the next call tries again
      this.loading = undefined
      throw err
    })
    return await this.loading
  }

  /** The first inbound MLS streams: load the real service, then let it serve them */
  private async handOver (stream: Stream, connection: Connection): Promise<void> {
    try {
      await this.load()
      if (this.realHandler == null) throw new Error('the groups service registered no handler')
      await this.realHandler(stream, connection)
    } catch (err) {
      this.components.logger?.warn({ err: (err as Error).message }, 'could not load the groups service for an inbound stream')
      stream.abort(err as Error)
    }
  }

  list (): GroupInfo[] {
    return this.real?.list() ?? []
  }

  async create (...args: Parameters<GroupsService['create']>): ReturnType<GroupsService['create']> {
    return (await this.load()).create(...args)
  }

  async add (...args: Parameters<GroupsService['add']>): ReturnType<GroupsService['add']> {
    return (await this.load()).add(...args)
  }

  async remove (...args: Parameters<GroupsService['remove']>): ReturnType<GroupsService['remove']> {
    return (await this.load()).remove(...args)
  }

  async leave (...args: Parameters<GroupsService['leave']>): ReturnType<GroupsService['leave']> {
    return (await this.load()).leave(...args)
  }

  async send (...args: Parameters<GroupsService['send']>): ReturnType<GroupsService['send']> {
    return (await this.load()).send(...args)
  }

  async onTrustRevoked (peer: string): Promise<void> {
    // not loaded: no group, so the peer is in none
    await this.real?.onTrustRevoked(peer)
  }
}

/** Whether the home holds the state of at least one group (the store's `<id>.bin` files) */
async function hasGroupState (home: string): Promise<boolean> {
  try {
    return (await readdir(join(home, STATE_DIR))).some(name => name.endsWith('.bin'))
  } catch {
    return false
  }
}
