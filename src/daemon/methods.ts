import { BodyResult, invalidParams } from '../ipc/index.ts'
import { parsePeerId, parseTarget } from '../node/index.ts'
import { InvalidCardError } from '../cards/index.ts'
import { MetricsDisabledError } from '../metrics/errors.ts'
import { LocalServices } from './services.ts'
import { bodyForClient, bodyFromParams } from './bodies.ts'
import type { LocalServicesInit } from './services.ts'
import type { MethodHandler } from '../ipc/index.ts'
import type { PolicyInput, ProtectInput } from '../guard/index.ts'
import type { GroupMessage } from '../groups/index.ts'
import type { NodeHost } from './host.ts'

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

function optionalString (params: unknown, key: string): string | undefined {
  const value = paramsObject(params)[key]
  if (value === undefined || value === null) {
    return undefined
  }
  if (typeof value !== 'string') {
    throw invalidParams(`params.${key} must be a string`)
  }
  return value
}

function optionalPositive (params: Record<string, unknown>, key: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const value = params[key]
  if (value === undefined || value === null) {
    return undefined
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) {
    throw invalidParams(`params.${key} must be a positive number${max === Number.MAX_SAFE_INTEGER ? '' : ` up to ${max}`}`)
  }
  return value
}

/** `msg.send`'s `timeoutMs` bounds: those of `messaging.requestTimeoutMs` (a timer beyond 2^31 − 1 ms would fire after 1 ms) */
const MIN_SEND_TIMEOUT_MS = 100
const MAX_SEND_TIMEOUT_MS = 3_600_000

function optionalInRange (params: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const value = params[key]
  if (value === undefined || value === null) {
    return undefined
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidParams(`params.${key} must be a number of ms from ${min} to ${max}`)
  }
  return value
}

function optionalNonNegative (params: Record<string, unknown>, key: string): number | undefined {
  const value = params[key]
  if (value === undefined || value === null) {
    return undefined
  }
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalidParams(`params.${key} must be a number ≥ 0`)
  }
  return value
}

/** `node.posture` waits this long for a review in progress by default, and at most this long, ms */
const POSTURE_DEFAULT_IPC_WAIT_MS = 30_000
const POSTURE_MAX_IPC_WAIT_MS = 60_000

/** Service names are short printable identifiers */
const SERVICE_NAME = /^[\w.:/-]{1,128}$/

function requireService (params: unknown, key = 'service'): string {
  const service = requireString(params, key)
  if (!SERVICE_NAME.test(service)) {
    throw invalidParams(`params.${key} must be 1–128 characters of letters, digits and . _ : / -`)
  }
  return service
}

/** The JSON-RPC methods of the local socket; the README's "Local API" documents each */
export function createMethods (host: NodeHost, home: string, delivery: LocalServicesInit): Record<string, MethodHandler> {
  const services = new LocalServices(host, delivery)
  const book = host.node.book
  /** A peer reference with any petname replaced by its peer ID */
  const target = async (params: unknown, key: string): Promise<string> => {
    const text = requireString(params, key)
    if (text.startsWith('agentnet://')) {
      const rest = text.slice('agentnet://'.length)
      const slash = rest.indexOf('/')
      const host = slash === -1 ? rest : rest.slice(0, slash)
      return `agentnet://${await book.resolve(host)}${slash === -1 ? '' : rest.slice(slash)}`
    }
    return book.resolve(text)
  }
  const methods: Record<string, MethodHandler> = {
    'node.info': async (params) => {
      paramsObject(params)
      return host.node.info()
    },
    'node.status': async (params) => {
      paramsObject(params)
      return host.node.status()
    },
    'node.metrics': async (params) => {
      paramsObject(params)
      return {
        messaging: host.node.messaging.metrics,
        replayCache: { entries: host.node.messaging.replayCache.size },
        outbox: { admitted: host.node.outbox.admitted, refused: host.node.outbox.refused },
        guard: host.node.guard.stats(),
        // the cached posture review's counts, when one ran (host.node.posture runs one)
        ...(host.node.posture.latest() === undefined ? {} : { posture: host.node.posture.latest() })
      }
    },
    'node.posture': async (params, { signal }) => {
      // the cached posture review (at most one per 5 minutes); waits up to waitMs for one in progress
      const waitMs = Math.min(optionalNonNegative(paramsObject(params), 'waitMs') ?? POSTURE_DEFAULT_IPC_WAIT_MS, POSTURE_MAX_IPC_WAIT_MS)
      signal.throwIfAborted()
      const counts = await host.node.posture.current(waitMs)
      return counts === undefined ? { checking: true } : { checking: false, ...counts }
    },
    'node.prometheus': async (params) => {
      const format = optionalString(params, 'format') ?? 'text'
      if (format !== 'text' && format !== 'json') throw invalidParams('params.format must be "text" or "json"')
      if (host.node.metrics == null) throw new MetricsDisabledError('this node serves no metrics: set metrics.listen (e.g. /ip4/127.0.0.1/tcp/9464) and restart it')
      return format === 'json'
        ? { url: host.node.metrics.url, metrics: await host.node.metrics.json() }
        : { url: host.node.metrics.url, contentType: host.node.metrics.contentType, text: await host.node.metrics.text() }
    },
    'peers.list': async (params) => {
      paramsObject(params)
      return host.node.peers()
    },
    'peer.connect': async (params, { signal }) => {
      const connection = await host.node.connect(await target(params, 'target'), signal)
      return { peerId: connection.remotePeer.toString(), address: connection.remoteAddr.toString() }
    },
    'peer.ping': async (params, { signal }) => {
      return host.node.ping(await target(params, 'target'), signal)
    },
    'service.register': async (params, { session }) => {
      const service = requireService(params)
      services.register(session, service)
      return { service }
    },
    'service.unregister': async (params, { session }) => {
      const service = requireService(params)
      return { service, removed: services.unregister(session, service) }
    },
    'msg.send': async (params, { signal, session, body }) => {
      const p = paramsObject(params)
      const to = parseTarget(await target(p, 'to'))
      if (to.kind !== 'peer') {
        throw invalidParams('params.to must be a peer ID, petname or agentnet:// URL')
      }
      const service = p.service === undefined && to.service != null ? to.service : requireService(p)
      const encoded = bodyFromParams(p, body)
      const reply = await host.node.send(to.peerId, service, encoded.body, encoded.contentType, {
        oneway: p.oneway === true,
        timeoutMs: optionalInRange(p, 'timeoutMs', MIN_SEND_TIMEOUT_MS, MAX_SEND_TIMEOUT_MS),
        signal
      })
      if (reply.kind === 'ack') {
        return { from: reply.from, id: reply.id, accepted: true }
      }
      const out = bodyForClient(session, reply.body, reply.contentType)
      const result = { from: reply.from, id: reply.id, ...out.fields }
      return out.raw === undefined ? result : new BodyResult(result, out.raw)
    },
    'msg.reply': async (params, { session, body }) => {
      services.reply(session, paramsObject(params), body)
      return { ok: true }
    },
    'token.revoke': async (params) => {
      return host.node.tokens.revoke(parsePeerId(await target(params, 'peer')))
    },
    'card.lookup': async (params, { signal }) => {
      return host.node.lookupCard(parsePeerId(await target(params, 'peer')), { signal })
    },
    'card.publish': async (params, { signal }) => {
      const p = paramsObject(params)
      const content: Record<string, unknown> = {}
      for (const key of ['name', 'services', 'metadata']) {
        if (p[key] !== undefined) content[key] = p[key]
      }
      try {
        return await host.node.publishCard(content, { signal })
      } catch (err) {
        if (err instanceof InvalidCardError) throw invalidParams(err.message)
        throw err
      }
    },
    'trust.request': async (params, { signal }) => {
      const reason = requireString(params, 'reason')
      return host.node.requestTrust(await target(params, 'peer'), reason, { signal })
    },
    'trust.pending': async () => host.node.trust.pending(),
    'trust.list': async () => host.node.trust.list(),
    'trust.approve': async (params, { signal }) => host.node.trust.approve(await target(params, 'peer'), { signal }),
    'trust.reject': async (params, { signal }) => host.node.rejectTrust(await target(params, 'peer'), optionalString(params, 'reason'), { signal }),
    'trust.revoke': async (params, { signal }) => host.node.revokeTrust(await target(params, 'peer'), optionalString(params, 'reason'), { signal }),
    'trust.subscribe': async (_params, { session }) => {
      // new pending requests arrive as `trust.pending` notifications until the client disconnects
      const onPending = (request: unknown): void => { session.notify('trust.pending', request) }
      host.on('pending', onPending)
      session.events.once('close', () => { host.off('pending', onPending) })
      return { subscribed: true, pending: host.node.trust.pending() }
    },
    'invite.create': async (params) => {
      const p = paramsObject(params)
      return host.node.trust.createInvite({ ttlMs: optionalPositive(p, 'ttlMs'), uses: optionalPositive(p, 'uses') })
    },
    'invite.accept': async (params, { signal }) => host.node.trust.acceptInvite(requireString(params, 'code'), { signal }),
    // the leakage guard (README "Leakage guard"); values never come back out
    'guard.protect': async (params) => {
      const input = paramsObject(params) as unknown as ProtectInput
      const result = host.node.guard.protect(input)
      if (input.persist === true) {
        // answer only once the value is on disk; if it cannot be written, it is not kept at all
        try {
          await host.node.guard.flush()
        } catch (err) {
          host.node.guard.unprotect({ id: result.id })
          throw err
        }
      }
      return result
    },
    'guard.unprotect': async (params) => host.node.guard.unprotect(paramsObject(params) as unknown as { id: string }),
    'guard.list': async (params) => host.node.guard.list(paramsObject(params) as { scope?: string }),
    'guard.policy.set': async (params) => {
      const p = paramsObject(params)
      return host.node.guard.setPolicy({ ...p, peer: typeof p.peer === 'string' ? await book.resolve(p.peer) : p.peer } as unknown as PolicyInput)
    },
    'guard.policy.get': async (params) => {
      const peer = optionalString(params, 'peer')
      return host.node.guard.getPolicy(peer === undefined ? {} : { peer: await book.resolve(peer) })
    },
    'guard.check': async (params) => {
      const p = paramsObject(params)
      const to = parseTarget(await target(p, 'to'))
      if (to.kind !== 'peer') {
        throw invalidParams('params.to must be a peer ID, petname or agentnet:// URL')
      }
      const service = optionalString(p, 'service') ?? to.service ?? undefined
      const body = typeof p.body === 'string' ? p.body : p.body === undefined ? undefined : JSON.stringify(p.body)
      if (body === undefined) throw invalidParams('params.body must be the text (or JSON value) to check')
      const decision = await host.node.checkGuard(to.peerId, service, body)
      return { action: decision.action, ...(decision.action === 'redact' ? { body: decision.body } : {}), findings: decision.findings }
    },
    // MLS groups (README "Groups"); bodies leave through the outbox like any message
    'group.create': async (params) => host.node.groups.create({ name: requireString(params, 'name') }),
    'group.add': async (params, { signal }) => host.node.groups.add({ groupId: requireString(params, 'groupId'), peer: parsePeerId(await target(params, 'peer')).toString() }, { signal }),
    'group.remove': async (params, { signal }) => host.node.groups.remove({ groupId: requireString(params, 'groupId'), peer: parsePeerId(await target(params, 'peer')).toString() }, { signal }),
    'group.send': async (params, { signal, body }) => {
      const p = paramsObject(params)
      const encoded = bodyFromParams(p, body)
      return host.node.sendToGroup(requireString(p, 'groupId'), encoded.body, encoded.contentType, { signal })
    },
    'group.list': async () => host.node.groups.list(),
    'group.leave': async (params, { signal }) => {
      const groupId = requireString(params, 'groupId')
      await host.node.groups.leave({ groupId }, { signal })
      return { groupId, left: true }
    },
    'group.subscribe': async (params, { session }) => {
      // group messages arrive as `group.received` notifications (of one group, or all) until the client disconnects
      const only = optionalString(params, 'groupId')
      const onReceived = (m: GroupMessage): void => {
        if (only != null && m.groupId !== only) return
        void host.node.screenText(m.body, m.contentType).then(screening => {
          const out = bodyForClient(session, m.body, m.contentType)
          session.notify('group.received', { groupId: m.groupId, from: m.from, epoch: m.epoch, ...out.fields, ...(screening == null ? {} : { screening }) }, out.raw)
        })
      }
      host.on('received', onReceived)
      session.events.once('close', () => { host.off('received', onReceived) })
      return { subscribed: true, ...(only == null ? {} : { groupId: only }) }
    },
    'alias.list': async () => book.list(),
    'alias.add': async (params) => book.add(requireString(params, 'name'), requireString(params, 'peerId')),
    'alias.remove': async (params) => ({ removed: await book.remove(requireString(params, 'name')) })
  }
  // during a live key rotation the node is replaced: calls wait for the new one (src/daemon/host.ts)
  return Object.fromEntries(Object.entries(methods).map(([name, handler]): [string, MethodHandler] => [name, async (params, context) => {
    await host.ready()
    return handler(params, context)
  }]))
}
