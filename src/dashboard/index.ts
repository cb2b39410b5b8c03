/**
 * @packageDocumentation
 *
 * A local web dashboard for a running node: this node (peer ID, addresses,
 * reachability, relay reservations), connected peers (transport, direct or
 * relayed), trust (pending requests with approve/reject buttons, trusted,
 * revoked), rejections by code and the audit log's tail with its chain
 * status, updated live over server-sent events.
 *
 * It talks to the node only through the TypeScript SDK (`src/client`); the
 * audit tail is read from the home folder like `agentnet audit tail` does.
 * It listens on 127.0.0.1 only and every request needs the random token in
 * the URL it returns (as Jupyter does); requests from another origin, with a
 * foreign Host header (DNS rebinding) or cross-site fetch metadata are
 * refused. Every asset is served by the dashboard itself (no CDN).
 *
 * @example
 *
 * ```ts
 * import { startDashboard } from './dashboard/index.ts'
 *
 * const controller = new AbortController()
 * const dashboard = await startDashboard({ home: '/home/me/.agentnet', signal: controller.signal })
 * console.log(`open ${dashboard.url}`)   // http://127.0.0.1:PORT/?token=…
 * // later: controller.abort() or await dashboard.close()
 * ```
 */

import { errorCodeOf } from '../errors/index.ts'
import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { AUDIT_LOG_FILE, tailAuditLog, verifyAuditLog } from '../audit/index.ts'
import { connectClient } from '../client/index.ts'
import { APP_CSS, APP_JS, pageHtml } from './page.ts'
import type { AgentnetClient, PostureState } from '../client/index.ts'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface DashboardOptions {
  /** The node's home folder (its socket and audit log are there) */
  home: string
  /** TCP port on 127.0.0.1 @default 0 (any free port) */
  port?: number
  /** Stops the dashboard when aborted */
  signal?: AbortSignal
  /** How often the page's data is refreshed, in ms @default 2000 */
  intervalMs?: number
  /** Audit records shown @default 20 */
  auditRecords?: number
}

export interface Dashboard {
  /** The URL to open, with the token */
  url: string
  port: number
  token: string
  close: () => Promise<void>
}

/** What the page shows; sent as the `snapshot` server-sent event */
export interface DashboardSnapshot {
  time: number
  running: boolean
  error?: string
  node?: { peerId: string, addresses: string[], version: string, reachability: string, relayReservations: string[] }
  /** `rttMs`: the last ping (every 10 s at most), absent until one answered */
  peers?: Array<{ peerId: string, address: string, direct: boolean, transport: string, direction: string, rttMs?: number }>
  trust?: { pending: Array<{ peerId: string, reason: string, since: number }>, entries: Array<{ peerId: string, state: string, since: number, reason: string, via: string }> }
  metrics?: { sent: number, received: number, retries: number, duplicates: number, rejected: Record<string, number> }
  audit?: { ok: boolean, records: number, firstBad?: unknown, tail: Array<{ seq: number, time: string, type: string, data: unknown }> }
  /** the leakage guard's decisions: actions (pass, redact, block, warn) and findings in blocked messages by category */
  guard?: { checks: number, registered: number, actions: Record<string, number>, blockedByCategory: Record<string, number> }
  /** MLS groups this node is a member of */
  groups?: Array<{ groupId: string, name: string, epoch: number, committer: string, members: string[] }>
  /** the node's posture review (cached by the node, at most one per 5 minutes); `checking` until the first one finished */
  posture?: PostureState
}

const DEFAULT_INTERVAL_MS = 2000
const AUDIT_VERIFY_EVERY_MS = 30_000
const MAX_BODY_BYTES = 4096
const PING_EVERY_MS = 10_000
const PING_TIMEOUT_MS = 3000

export async function startDashboard (options: DashboardOptions): Promise<Dashboard> {
  const token = randomBytes(24).toString('base64url')
  const tokenBytes = Buffer.from(token)
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS
  const auditPath = join(options.home, AUDIT_LOG_FILE)
  let client: AgentnetClient | undefined
  let connecting: Promise<AgentnetClient> | undefined
  let auditCheck: { at: number, last: string, ok: boolean, records: number, firstBad?: unknown } | undefined
  const streams = new Set<ServerResponse>()
  const rtts = new Map<string, { at: number, rttMs?: number }>()
  let closed = false

  /** The SDK client, reconnected after the node restarts */
  const getClient = async (): Promise<AgentnetClient> => {
    if (client !== undefined) return client
    connecting ??= (async () => {
      try {
        const c = await connectClient({ home: options.home })
        c.on('close', () => { if (client === c) client = undefined })
        c.on('notification', (method: string) => {
          if (method === 'trust.pending') void broadcast()
        })
        await c.trustSubscribe()
        client = c
        return c
      } finally {
        connecting = undefined
      }
    })()
    return connecting
  }

  const snapshot = async (): Promise<DashboardSnapshot> => {
    const time = Date.now()
    const audit = await auditState()
    try {
      const c = await getClient()
      const [info, status, entries, pending, metrics, groups, posture] = await Promise.all([
        c.nodeInfo(), c.status(), c.trustList(), c.trustPending(), c.metrics(),
        // a node without groups or posture (older, or groups off) still shows the rest
        c.groupList().catch(() => undefined),
        c.posture({ waitMs: 0 }).catch(() => undefined)
      ])
      refreshRtts(c, status.connections.map(conn => conn.peerId))
      return {
        time,
        running: true,
        node: { peerId: info.peerId, addresses: status.addresses, version: info.version, reachability: status.reachability, relayReservations: status.relayReservations },
        peers: status.connections.map(({ peerId, address, direct, transport, direction }) => ({ peerId, address, direct, transport, direction, rttMs: rtts.get(peerId)?.rttMs })),
        trust: {
          pending: pending.map(({ peerId, reason, since }) => ({ peerId, reason, since })),
          entries: entries.map(({ peerId, state, since, reason, via }) => ({ peerId, state, since, reason, via }))
        },
        metrics: { sent: metrics.messaging.sent, received: metrics.messaging.received, retries: metrics.messaging.retries, duplicates: metrics.messaging.duplicates, rejected: metrics.messaging.rejected },
        audit,
        ...(metrics.guard === undefined ? {} : { guard: { checks: metrics.guard.checks, registered: metrics.guard.registered, actions: metrics.guard.actions, blockedByCategory: metrics.guard.blockedByCategory } }),
        ...(groups === undefined ? {} : { groups: groups.map(({ groupId, name, epoch, committer, members }) => ({ groupId, name, epoch, committer, members })) }),
        ...(posture === undefined ? {} : { posture })
      }
    } catch (err) {
      return { time, running: false, error: (err as Error).message, audit }
    }
  }

  /** Ping connected peers in the background, each at most every PING_EVERY_MS; forget peers gone */
  const refreshRtts = (c: AgentnetClient, peers: string[]): void => {
    const now = Date.now()
    for (const peer of rtts.keys()) if (!peers.includes(peer)) rtts.delete(peer)
    for (const peer of new Set(peers)) {
      const last = rtts.get(peer)
      if (last !== undefined && now - last.at < PING_EVERY_MS) continue
      rtts.set(peer, { at: now, rttMs: last?.rttMs })
      c.ping(peer, { signal: AbortSignal.timeout(PING_TIMEOUT_MS) })
        .then(({ rttMs }) => { if (rtts.has(peer)) rtts.set(peer, { at: now, rttMs }) })
        .catch(() => {})
    }
  }

  const auditState = async (): Promise<DashboardSnapshot['audit']> => {
    try {
      const tail = await tailAuditLog(auditPath, options.auditRecords ?? 20)
      const last = tail.at(-1)?.hash ?? ''
      // verify the whole chain when it grew, else at most every 30 s
      if (auditCheck === undefined || auditCheck.last !== last || Date.now() - auditCheck.at > AUDIT_VERIFY_EVERY_MS) {
        const result = await verifyAuditLog(auditPath)
        auditCheck = { at: Date.now(), last, ok: result.ok, records: result.records, firstBad: result.firstBad }
      }
      return { ok: auditCheck.ok, records: auditCheck.records, firstBad: auditCheck.firstBad, tail: tail.map(({ seq, time, type, data }) => ({ seq, time, type, data })) }
    } catch {
      return undefined
    }
  }

  const send = (res: ServerResponse, data: DashboardSnapshot): void => {
    res.write(`event: snapshot\ndata: ${JSON.stringify(data)}\n\n`)
  }

  let broadcasting: Promise<void> | undefined
  const broadcast = async (): Promise<void> => {
    if (streams.size === 0) return
    broadcasting ??= (async () => {
      try {
        const data = await snapshot()
        for (const res of streams) send(res, data)
      } finally {
        broadcasting = undefined
      }
    })()
    return broadcasting
  }
  const timer = setInterval(() => { void broadcast() }, intervalMs)
  timer.unref()

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(err => {
      if (!res.headersSent) reply(res, 500, { error: (err as Error).message })
      else res.end()
    })
  })
  let port = 0

  const allowedOrigins = (): string[] => [`http://127.0.0.1:${port}`, `http://localhost:${port}`]

  /** Token, Host, Origin and fetch-metadata checks; answers and returns false when refused */
  const authorize = (req: IncomingMessage, res: ServerResponse, url: URL): boolean => {
    const host = req.headers.host ?? ''
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) {
      reply(res, 403, { error: 'bad Host header' })
      return false
    }
    const origin = req.headers.origin
    if (origin !== undefined && !allowedOrigins().includes(origin)) {
      reply(res, 403, { error: 'cross-origin requests are refused' })
      return false
    }
    if (req.headers['sec-fetch-site'] === 'cross-site') {
      reply(res, 403, { error: 'cross-site requests are refused' })
      return false
    }
    const given = Buffer.from(String(req.headers['x-agentnet-token'] ?? url.searchParams.get('token') ?? ''))
    if (given.length !== tokenBytes.length || !timingSafeEqual(given, tokenBytes)) {
      reply(res, 401, { error: 'a valid token is required: open the URL the dashboard printed' })
      return false
    }
    return true
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (!authorize(req, res, url)) return
    if (req.method === 'GET' && url.pathname === '/') {
      asset(res, 'text/html; charset=utf-8', pageHtml(token))
    } else if (req.method === 'GET' && url.pathname === '/app.js') {
      asset(res, 'text/javascript; charset=utf-8', APP_JS)
    } else if (req.method === 'GET' && url.pathname === '/app.css') {
      asset(res, 'text/css; charset=utf-8', APP_CSS)
    } else if (req.method === 'GET' && url.pathname === '/api/state') {
      reply(res, 200, await snapshot())
    } else if (req.method === 'GET' && url.pathname === '/events') {
      res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' })
      res.write('retry: 2000\n\n')
      streams.add(res)
      req.on('close', () => { streams.delete(res) })
      send(res, await snapshot())
    } else if (req.method === 'POST' && (url.pathname === '/api/trust/approve' || url.pathname === '/api/trust/reject')) {
      // a JSON body forces a CORS preflight on any cross-origin fetch, and we answer none
      if (!(req.headers['content-type'] ?? '').startsWith('application/json') || req.headers.origin === undefined) {
        reply(res, 403, { error: 'POST needs Content-Type: application/json and this page\'s Origin' })
        return
      }
      const body = await readJson(req)
      const peer = typeof body?.peer === 'string' ? body.peer : ''
      if (peer === '') {
        reply(res, 400, { error: 'body.peer is required' })
        return
      }
      const c = await getClient()
      try {
        const result = url.pathname.endsWith('approve') ? await c.trustApprove(peer) : await c.trustReject(peer)
        reply(res, 200, result)
      } catch (err) {
        reply(res, 409, { error: (err as Error).message, code: errorCodeOf(err) })
      }
      void broadcast()
    } else {
      reply(res, 404, { error: 'not found' })
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  port = (server.address() as AddressInfo).port

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    clearInterval(timer)
    for (const res of streams) res.end()
    streams.clear()
    client?.close()
    client = undefined
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
  }
  options.signal?.addEventListener('abort', () => { void close() }, { once: true })
  if (options.signal?.aborted === true) await close()

  return { url: `http://127.0.0.1:${port}/?token=${token}`, port, token, close }
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'cross-origin-resource-policy': 'same-origin'
}

function asset (res: ServerResponse, type: string, body: string): void {
  res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type })
  res.end(body)
}

function reply (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

async function readJson (req: IncomingMessage): Promise<Record<string, unknown> | undefined> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) return undefined
    chunks.push(chunk as Buffer)
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'))
    return typeof value === 'object' && value !== null ? value as Record<string, unknown> : undefined
  } catch {
    return undefined
  }
}
