/**
 * The one collector: reads a node's home (modes, key, trust store, audit log,
 * guard policies), the installed versions and, when the node runs, live data
 * over its socket, into a {@link PostureSnapshot}. Never writes, never reads
 * key material beyond the key file's metadata.
 *
 * @module
 */

import { lstat, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connectClient } from '../client/index.ts'
import { AUDIT_LOG_FILE, tailAuditLog, verifyAuditLog } from '../audit/index.ts'
import { loadDocument } from '../trust/store.ts'
import { DEFAULT_LIVE_TIMEOUT_MS, GUARD_POLICIES_FILE } from './constants.ts'
import { installedVersions, shippedAdvisories } from './versions.ts'
import type { Config } from '../config/index.ts'
import type { Advisory, FileEntry, LiveData, PostureSnapshot } from './types.ts'

export interface CollectOptions {
  home: string
  config: Config
  /** shown in findings: the config file, or the profile's defaults */
  configSource?: string
  /** ask the running node over its socket @default true */
  live?: boolean
  /** @default 3000 */
  liveTimeoutMs?: number
  /** replaces the shipped list (tests) */
  advisories?: Advisory[]
  /** @default Date.now() */
  now?: number
}

async function modeOf (path: string): Promise<{ mode: number, mtimeMs: number, kind: FileEntry['kind'] } | undefined> {
  try {
    const info = await lstat(path)
    const kind = info.isDirectory() ? 'dir' : info.isFile() ? 'file' : info.isSocket() ? 'socket' : 'other'
    return { mode: info.mode & 0o777, mtimeMs: info.mtimeMs, kind }
  } catch {
    return undefined
  }
}

/** Live data from the running node; `running: false` with the reason when it cannot be asked */
export async function collectLive (home: string, timeoutMs = DEFAULT_LIVE_TIMEOUT_MS): Promise<LiveData> {
  let client
  try {
    client = await connectClient({ home })
  } catch (err) {
    return { running: false, reason: (err as Error).message }
  }
  try {
    const signal = AbortSignal.timeout(timeoutMs)
    const info = await client.nodeInfo({ signal })
    const status = await client.status({ signal }) as Awaited<ReturnType<typeof client.status>> & { relayReservations?: string[] }
    const metrics = await client.metrics({ signal })
    return {
      running: true,
      version: info.version,
      addresses: info.addresses,
      connections: status.connections.length,
      relayReservations: status.relayReservations ?? [],
      rejected: metrics.messaging.rejected
    }
  } catch (err) {
    return { running: false, reason: `the node's socket did not answer: ${(err as Error).message}` }
  } finally {
    client.close()
  }
}

/** Read everything the checks need */
export async function collectSnapshot (options: CollectOptions): Promise<PostureSnapshot> {
  const { home, config } = options
  const now = options.now ?? Date.now()
  const homeInfo = await modeOf(home)
  const files: FileEntry[] = []
  if (homeInfo !== undefined) {
    for (const name of await readdir(home).catch(() => [] as string[])) {
      const info = await modeOf(join(home, name))
      if (info !== undefined) files.push({ name, kind: info.kind, mode: info.mode })
    }
  }
  const keyInfo = await modeOf(join(home, 'identity.key'))

  let trust: PostureSnapshot['trust'] = { peers: {}, invites: {} }
  try {
    const doc = await loadDocument(join(home, 'trust.json'))
    trust = { peers: doc.peers, invites: doc.invites }
  } catch (err) {
    trust = { peers: {}, invites: {}, error: (err as Error).message }
  }

  let audit: PostureSnapshot['audit']
  const auditPath = join(home, AUDIT_LOG_FILE)
  if (await modeOf(auditPath) !== undefined) {
    try {
      audit = await verifyAuditLog(auditPath)
      // record times of the last records (a damaged log may refuse a tail: verify already reported it)
      const tail = await tailAuditLog(auditPath, 1000).catch(() => [])
      let regressions = 0
      for (let i = 1; i < tail.length; i++) {
        if (Date.parse(tail[i]?.time ?? '') < Date.parse(tail[i - 1]?.time ?? '')) regressions++
      }
      audit = { ...audit, timeRegressions: regressions, ...(tail.length > 0 ? { lastTime: tail[tail.length - 1]?.time } : {}) }
    } catch (err) {
      audit = { ok: false, records: 0, error: (err as Error).message }
    }
  }

  let rotation: PostureSnapshot['rotation']
  try {
    const { readRotation } = await import('../identity/succession.ts')
    const r = await readRotation(home)
    if (r !== undefined) rotation = { state: r.state, old: r.old, new: r.new, ts: r.ts, graceMs: r.graceMs, notified: r.notified.length }
  } catch (err) {
    rotation = { error: (err as Error).message }
  }

  let guardPolicies: unknown
  try {
    guardPolicies = JSON.parse(await readFile(join(home, GUARD_POLICIES_FILE), 'utf8'))
  } catch (err) {
    // absent: no guard policies in this home (the guard layer may keep them elsewhere: hook here)
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') guardPolicies = { unreadable: (err as Error).message }
  }

  const live = options.live === false ? { running: false, reason: 'not asked (--offline)' } : await collectLive(home, options.liveTimeoutMs)
  return {
    now,
    home,
    ...(homeInfo !== undefined ? { homeMode: homeInfo.mode } : {}),
    files,
    ...(keyInfo !== undefined ? { key: { mode: keyInfo.mode, writtenAt: keyInfo.mtimeMs } } : {}),
    config,
    configSource: options.configSource ?? 'defaults',
    trust,
    ...(audit !== undefined ? { audit } : {}),
    ...(guardPolicies !== undefined ? { guardPolicies } : {}),
    ...(rotation !== undefined ? { rotation } : {}),
    versions: await installedVersions(),
    advisories: options.advisories ?? await shippedAdvisories(),
    live
  }
}
