/**
 * The shapes `doctor` works on: a {@link PostureSnapshot} (everything the
 * checks need, gathered once by the collector) and the {@link Finding}s that
 * the pure checks derive from it.
 *
 * @module
 */

import type { AuditVerifyResult } from '../audit/index.ts'
import type { Config } from '../config/index.ts'
import type { StoredInvite, StoredPeer } from '../trust/store.ts'

export type Severity = 'high' | 'medium' | 'low' | 'info'

/** One result of the review */
export interface Finding {
  /** stable identifier, e.g. `home.key-mode`, `drift.trust.strict` */
  id: string
  severity: Severity
  /** one line */
  title: string
  /** why it matters and what was seen */
  explanation: string
  /** the command to run or the config key to change */
  fix: string
}

/** A file or folder of the home and its permission bits */
export interface FileEntry {
  name: string
  kind: 'file' | 'dir' | 'socket' | 'other'
  /** permission bits, e.g. 0o600 */
  mode: number
}

/** One advisory of the shipped list `advisories.json` */
export interface Advisory {
  /** npm package name, or `agentnet` */
  package: string
  /** versions below this one lack the fix */
  fixedIn: string
  id: string
  severity: Severity
  summary: string
}

/** What the running node reported over its socket; absent fields could not be read */
export interface LiveData {
  running: boolean
  /** why no live data: the node is not running, or the socket failed */
  reason?: string
  version?: string
  addresses?: string[]
  connections?: number
  /** peer IDs of the relays holding a reservation for us */
  relayReservations?: string[]
  /** rejected inbound messages by code since start */
  rejected?: Record<string, number>
}

/** Everything the checks look at, gathered once */
export interface PostureSnapshot {
  /** ms since the epoch at collection */
  now: number
  home: string
  /** permission bits of the home folder, undefined when missing */
  homeMode?: number
  /** entries directly in the home folder */
  files: FileEntry[]
  /** the identity key: mode and when it was written (mtime, ms) */
  key?: { mode: number, writtenAt: number }
  /** the effective configuration */
  config: Config
  /** where the configuration came from: a file, or the profile's defaults */
  configSource: string
  /** the trust store (`trust.json`); `error` when it could not be read */
  trust: { peers: Record<string, StoredPeer>, invites: Record<string, StoredInvite>, error?: string }
  /** last time each peer was seen (ms), when the node keeps such data; undefined: no data */
  lastSeen?: Record<string, number>
  /** the audit log's verification; undefined when there is no log */
  audit?: AuditVerifyResult & { error?: string, lastTime?: string, timeRegressions?: number }
  /** the key rotation in progress (`succession.json`), when there is one */
  rotation?: { state: string, old: string, new: string, ts: number, graceMs: number, notified: number } | { error: string }
  /** guard policies (`guard-policies.json`) when present */
  guardPolicies?: unknown
  /** installed versions: `agentnet`, `libp2p`, `@libp2p/…` */
  versions: Record<string, string>
  advisories: Advisory[]
  live: LiveData
}
