/**
 * The approved posture and drift against it.
 *
 * `doctor --record-baseline` stores the posture the operator approved in
 * `<home>/posture-baseline.json`, signed by the node's identity key:
 *
 * ```
 * file      = {"version":1,"peerId","recordedAt","posture":{…},"signature":"<base64url, 64 bytes>"}
 * payload   = RFC 8785 canonical JSON of {"version","peerId","recordedAt","posture"}
 * signature = Ed25519 by peerId over
 *             uvarint(16) || "agentnet-posture" || uvarint(32) || "/agentnet/posture/baseline/1.0.0" || uvarint(len(payload)) || payload
 * ```
 *
 * (libp2p signed-envelope input, like every other agentnet signature.) A
 * later `doctor` verifies the signature against this node's own peer ID and
 * reports every difference as a `drift.*` finding, graded by whether it
 * weakens the posture.
 *
 * @module
 */

import canonicalize from 'canonicalize'
import { peerIdFromString } from '@libp2p/peer-id'
import { createSigner, verifySignature } from '../protocol/index.ts'
import { BASELINE_SIGNATURE_SCHEME, BASELINE_VERSION } from './constants.ts'
import { MalformedBaselineError } from './errors.ts'
import type { Finding, PostureSnapshot, Severity } from './types.ts'
import type { PrivateKey } from '@libp2p/interface'

/** What an operator approves */
export interface ApprovedPosture {
  /** every config setting, flattened: `"messaging.replayWindowMs": 60000` */
  settings: Record<string, unknown>
  /** trusted peer IDs (trust store and `trust.peers`), sorted */
  trustedPeers: string[]
  services: { public: string[], protected: string[], card: string[] }
  /** `guard`: the guard's policies when it keeps them in the home, else null (hook for the guard layer) */
  policies: { guard: unknown }
}

export interface Baseline {
  version: typeof BASELINE_VERSION
  peerId: string
  recordedAt: number
  posture: ApprovedPosture
}

export type BaselineStatus = 'intact' | 'tampered'

export interface BaselineCheck {
  status: BaselineStatus
  baseline?: Baseline
  /** why it is tampered */
  reason?: string
}

function flatten (value: Record<string, unknown>, prefix = '', out: Record<string, unknown> = {}): Record<string, unknown> {
  for (const [key, item] of Object.entries(value)) {
    if (typeof item === 'object' && item !== null && !Array.isArray(item) && key !== 'metadata') {
      flatten(item as Record<string, unknown>, `${prefix}${key}.`, out)
    } else {
      out[`${prefix}${key}`] = item
    }
  }
  return out
}

const sorted = (list: string[]): string[] => [...new Set(list)].sort()

/** The posture a snapshot describes */
export function postureOf (s: PostureSnapshot): ApprovedPosture {
  const trusted = Object.entries(s.trust.peers).filter(([, p]) => p.state === 'trusted').map(([id]) => id)
  return {
    settings: flatten(s.config as unknown as Record<string, unknown>),
    trustedPeers: sorted([...trusted, ...s.config.trust.peers]),
    services: { public: sorted(s.config.trust.publicServices), protected: sorted(s.config.tokens.protectedServices), card: sorted(s.config.card.services) },
    policies: { guard: s.guardPolicies ?? null }
  }
}

function payloadOf (b: Baseline): Uint8Array {
  const text = canonicalize({ version: b.version, peerId: b.peerId, recordedAt: b.recordedAt, posture: b.posture })
  if (text === undefined) throw new MalformedBaselineError('baseline cannot be canonicalized')
  return new TextEncoder().encode(text)
}

/** Sign a posture as the node's approved baseline; returns the file's text */
export function encodeBaseline (posture: ApprovedPosture, privateKey: PrivateKey, recordedAt: number): string {
  const signer = createSigner(privateKey, BASELINE_SIGNATURE_SCHEME)
  const baseline: Baseline = { version: BASELINE_VERSION, peerId: signer.peerId.toString(), recordedAt, posture }
  const signature = Buffer.from(signer.sign(payloadOf(baseline))).toString('base64url')
  return JSON.stringify({ ...baseline, signature }, null, 2) + '\n'
}

/**
 * Check a baseline file against this node's peer ID: well-formed, made by
 * this node, signature intact. Anything else is `tampered`.
 */
export function checkBaseline (text: string, peerId: string): BaselineCheck {
  let parsed: Record<string, unknown>
  try {
    parsed = JSON.parse(text) as Record<string, unknown>
  } catch {
    return { status: 'tampered', reason: 'the baseline file is not valid JSON' }
  }
  const { version, peerId: signer, recordedAt, posture, signature } = parsed ?? {}
  if (version !== BASELINE_VERSION || typeof signer !== 'string' || typeof recordedAt !== 'number' ||
      typeof posture !== 'object' || posture === null || typeof signature !== 'string') {
    return { status: 'tampered', reason: 'the baseline file does not have the baseline shape' }
  }
  const p = posture as ApprovedPosture
  if (typeof p.settings !== 'object' || p.settings === null || !Array.isArray(p.trustedPeers) ||
      typeof p.services !== 'object' || p.services === null || typeof p.policies !== 'object' || p.policies === null) {
    return { status: 'tampered', reason: 'the baseline posture does not have the expected shape' }
  }
  if (signer !== peerId) {
    return { status: 'tampered', reason: `the baseline claims to be signed by ${signer}, not this node (${peerId})` }
  }
  const baseline: Baseline = { version: BASELINE_VERSION, peerId: signer, recordedAt, posture: p }
  let ok = false
  try {
    const sig = Buffer.from(signature, 'base64url')
    ok = sig.length === 64 && verifySignature(peerIdFromString(signer), payloadOf(baseline), sig, BASELINE_SIGNATURE_SCHEME)
  } catch {}
  return ok ? { status: 'intact', baseline } : { status: 'tampered', baseline, reason: 'the signature does not match the baseline\'s content' }
}

type Direction = 'up' | 'down' | 'on' | 'off' | 'added' | 'removed'
/** Settings whose change in one direction weakens the posture, with its severity */
const WEAKER: Record<string, { when: Direction, severity: Severity, what: string }> = {
  'messaging.replayWindowMs': { when: 'up', severity: 'medium', what: 'replay window widened' },
  'messaging.maxClockSkewMs': { when: 'up', severity: 'medium', what: 'accepted clock skew widened' },
  'messaging.maxBodyBytes': { when: 'up', severity: 'low', what: 'largest body raised' },
  'tokens.lifetimeMs': { when: 'up', severity: 'medium', what: 'token lifetime lengthened' },
  'tokens.maxLifetimeMs': { when: 'up', severity: 'medium', what: 'longest token lifetime lengthened' },
  'tokens.protectedServices': { when: 'removed', severity: 'high', what: 'token protection removed from services' },
  'trust.strict': { when: 'off', severity: 'high', what: 'strict mode disabled' },
  'trust.acceptOldKeyOnlySuccession': { when: 'on', severity: 'high', what: 'key rotations signed by the old key alone accepted' },
  'trust.publicServices': { when: 'added', severity: 'medium', what: 'services made public' },
  'trust.peers': { when: 'added', severity: 'medium', what: 'peers added to trust.peers' },
  'nat.upnp': { when: 'on', severity: 'medium', what: 'UPnP enabled' },
  'nat.stunServers': { when: 'added', severity: 'medium', what: 'STUN/TURN servers added' },
  'relay.server': { when: 'on', severity: 'low', what: 'relay server enabled' },
  'connections.maxConnections': { when: 'up', severity: 'low', what: 'connection limit raised' },
  'connections.inboundConnectionThreshold': { when: 'up', severity: 'low', what: 'inbound connection rate raised' },
  'ipc.maxLineBytes': { when: 'up', severity: 'low', what: 'IPC line limit raised' },
  'security': { when: 'removed', severity: 'medium', what: 'connection encrypters changed' },
  'metrics.listen': { when: 'up', severity: 'medium', what: 'metrics listen address changed' },
  'dashboard.listen': { when: 'up', severity: 'medium', what: 'dashboard listen address changed' }
}

function directionsOf (before: unknown, after: unknown): Set<Direction> {
  const out = new Set<Direction>()
  if (typeof before === 'number' && typeof after === 'number') out.add(after > before ? 'up' : 'down')
  if (typeof before === 'boolean' && typeof after === 'boolean') out.add(after ? 'on' : 'off')
  if (Array.isArray(before) && Array.isArray(after)) {
    if (after.some(x => !before.includes(x))) out.add('added')
    if (before.some(x => !after.includes(x))) out.add('removed')
  }
  if (typeof after === 'string' || typeof before === 'string') out.add('up')
  return out
}

const show = (v: unknown): string => v === undefined ? '(absent)' : JSON.stringify(v)

/**
 * Every difference between the approved posture and the current one.
 * `successions` maps a trusted peer ID to the ID it succeeded by a verified
 * key rotation (trust store note `succeeds <old>`): when the old ID was
 * approved, the new one is reported as a rotation (low), not a new peer.
 */
export function diffPosture (approved: ApprovedPosture, current: ApprovedPosture, recordedAt: number, successions: Record<string, string> = {}): Finding[] {
  const out: Finding[] = []
  const since = `since the baseline of ${new Date(recordedAt).toISOString()}`
  const keys = sorted([...Object.keys(approved.settings), ...Object.keys(current.settings)])
  for (const key of keys) {
    const before = approved.settings[key]
    const after = current.settings[key]
    if (canonicalize(before) === canonicalize(after)) continue
    const rule = WEAKER[key]
    const weaker = rule !== undefined && directionsOf(before, after).has(rule.when)
    out.push({
      id: `drift.${key}`,
      severity: weaker ? rule.severity : 'info',
      title: weaker ? `${rule.what}: ${key} ${show(before)} → ${show(after)}` : `${key} changed: ${show(before)} → ${show(after)}`,
      explanation: `${key} differs ${since}.${weaker ? ' The change weakens the posture.' : ''} If it was intended, approve it with --record-baseline.`,
      fix: `config ${key}: ${show(before)} (or agentnet doctor --record-baseline to approve)`
    })
  }
  const rotated = new Set<string>()
  for (const peer of current.trustedPeers.filter(p => !approved.trustedPeers.includes(p))) {
    const old = successions[peer]
    if (old !== undefined && approved.trustedPeers.includes(old)) {
      rotated.add(old)
      out.push({ id: `drift.rotated-peer.${peer}`, severity: 'low', title: `trusted peer ${old} rotated its key to ${peer}`, explanation: `${old} was trusted in the baseline; a succession record signed by both keys moved that trust to ${peer} ${since}.`, fix: 'agentnet doctor --record-baseline to approve' })
      continue
    }
    out.push({ id: `drift.trusted-peer.${peer}`, severity: 'medium', title: `new trusted peer ${peer}`, explanation: `${peer} became trusted ${since}.`, fix: `agentnet trust revoke ${peer} (or agentnet doctor --record-baseline to approve)` })
  }
  for (const peer of approved.trustedPeers.filter(p => !current.trustedPeers.includes(p) && !rotated.has(p))) {
    out.push({ id: `drift.untrusted-peer.${peer}`, severity: 'info', title: `peer ${peer} is no longer trusted`, explanation: `${peer} was trusted in the baseline.`, fix: 'agentnet doctor --record-baseline to approve' })
  }
  const g0 = canonicalize(approved.policies.guard ?? null)
  const g1 = canonicalize(current.policies.guard ?? null)
  if (g0 !== g1) {
    const removed = current.policies.guard == null
    out.push({ id: 'drift.guard-policies', severity: removed ? 'high' : 'medium', title: removed ? 'guard policies removed' : 'guard policies changed', explanation: `The outbound guard's policies differ ${since}.`, fix: 'restore guard-policies.json (or agentnet doctor --record-baseline to approve)' })
  }
  return out
}
