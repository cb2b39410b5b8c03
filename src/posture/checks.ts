/**
 * The posture checks: pure functions from a {@link PostureSnapshot} to
 * {@link Finding}s. No I/O here, so every check is testable on a literal
 * snapshot.
 *
 * @module
 */

import { multiaddr } from '@multiformats/multiaddr'
import { isLoopback } from '@libp2p/utils'
import { checkAdvisories } from './versions.ts'
import {
  DEFAULT_AUDIT_GAP_MS, DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_MAX_INVITE_AGE_MS, DEFAULT_MAX_KEY_AGE_MS,
  DEFAULT_MAX_PENDING_AGE_MS, DEFAULT_MAX_REPLAY_WINDOW_MS, DEFAULT_MAX_TOKEN_LIFETIME_MS, DEFAULT_STALE_PEER_MS, SENSITIVE_FILES
} from './constants.ts'
import type { Finding, PostureSnapshot, Severity } from './types.ts'

export interface ReviewOptions {
  /** @default 120 000 */
  maxReplayWindowMs?: number
  /** @default 60 000 */
  maxClockSkewMs?: number
  /** @default 300 000 */
  maxTokenLifetimeMs?: number
  /** @default one year */
  maxKeyAgeMs?: number
  /** @default 90 days */
  stalePeerMs?: number
  /** @default 7 days */
  maxInviteAgeMs?: number
  /** @default 7 days */
  maxPendingAgeMs?: number
  /** @default 30 days */
  auditGapMs?: number
}

const SEVERITY_ORDER: Record<Severity, number> = { high: 0, medium: 1, low: 2, info: 3 }

/** Highest severity first, then by id */
export function sortFindings (findings: Finding[]): Finding[] {
  return [...findings].sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity] || a.id.localeCompare(b.id))
}

export function hasHigh (findings: Finding[]): boolean {
  return findings.some(f => f.severity === 'high')
}

function days (ms: number): string {
  const d = ms / 86_400_000
  if (d >= 1) return `${Math.floor(d)} day${Math.floor(d) === 1 ? '' : 's'}`
  return ms >= 3_600_000 ? `${Math.round(ms / 3_600_000)} h` : `${Math.max(0, Math.round(ms / 60_000))} min`
}

function octal (mode: number): string {
  return '0' + (mode & 0o777).toString(8).padStart(3, '0')
}

/** File and folder modes of the home and the key */
export function checkHome (s: PostureSnapshot): Finding[] {
  const out: Finding[] = []
  if (s.homeMode === undefined) {
    out.push({ id: 'home.missing', severity: 'info', title: 'home folder does not exist', explanation: `${s.home} does not exist yet; nothing to review on disk.`, fix: `agentnet init --home ${s.home}` })
    return out
  }
  if ((s.homeMode & 0o077) !== 0) {
    out.push({ id: 'home.mode', severity: 'high', title: `home folder is ${octal(s.homeMode)}, not 0700`, explanation: `Other users can list or enter ${s.home}, which holds the key, trust decisions and the IPC socket.`, fix: `chmod 700 ${s.home}` })
  }
  for (const f of s.files) {
    if ((f.mode & 0o077) === 0 || f.name.startsWith('.')) continue
    const sensitive = SENSITIVE_FILES.includes(f.name) || f.kind === 'socket'
    const id = f.name === 'identity.key' ? 'home.key-mode' : `home.file-mode.${f.name}`
    out.push({
      id,
      severity: sensitive ? 'high' : 'medium',
      title: `${f.name} is ${octal(f.mode)}, not ${f.kind === 'dir' ? '0700' : '0600'}`,
      explanation: f.name === 'identity.key'
        ? 'The private key is readable by other users: anyone who copies it is this node. The node refuses to start with it; if it was exposed, rotate.'
        : `${f.name} in the home folder is accessible to group or others.`,
      fix: `chmod ${f.kind === 'dir' ? '700' : '600'} ${s.home}/${f.name}`
    })
  }
  if (s.key === undefined) {
    out.push({ id: 'key.missing', severity: 'info', title: 'no identity key', explanation: 'The home has no identity.key; `start` or `init` creates one.', fix: `agentnet init --home ${s.home}` })
  }
  return out
}

/** Key age against the rotation period */
export function checkKeyAge (s: PostureSnapshot, o: ReviewOptions = {}): Finding[] {
  if (s.key === undefined) return []
  const max = o.maxKeyAgeMs ?? DEFAULT_MAX_KEY_AGE_MS
  const age = s.now - s.key.writtenAt
  if (age <= max) {
    return [{ id: 'key.age', severity: 'info', title: `identity key is ${days(age)} old`, explanation: `Within the rotation period of ${days(max)} (age from the key file's modification time).`, fix: 'none needed' }]
  }
  return [{ id: 'key.age', severity: 'medium', title: `identity key is ${days(age)} old`, explanation: `Keys older than ${days(max)} should be rotated: the longer a key lives, the more copies and backups of it exist.`, fix: 'agentnet identity rotate (the node may be running): trusted peers follow to the new peer ID' }]
}

/** A key rotation in progress (`succession.json`) */
export function checkRotation (s: PostureSnapshot): Finding[] {
  const r = s.rotation
  if (r === undefined) return []
  if ('error' in r) {
    return [{ id: 'identity.rotation-damaged', severity: 'high', title: 'the key rotation state is damaged', explanation: `${r.error}. The rotation cannot resume: the old key may stay on disk and peers may not be told.`, fix: `restore ${s.home}/succession.json from a backup, or remove it and identity.old.key once every trusted peer follows the new ID` }]
  }
  const end = r.ts + r.graceMs
  if (r.state === 'prepared') {
    return [{ id: 'identity.rotation-in-progress', severity: 'low', title: `key rotation ${r.old} → ${r.new} was interrupted`, explanation: 'The new key and the succession record are written but the key is not swapped yet; the next start (or any command that loads the identity) completes it.', fix: 'agentnet start' }]
  }
  if (s.now >= end) {
    return [{ id: 'identity.rotation-in-progress', severity: 'low', title: `the grace period of key rotation ${r.old} → ${r.new} is over, but the old key is still on disk`, explanation: 'The node deletes identity.old.key when it runs past the end of the grace period.', fix: 'agentnet start' }]
  }
  return [{ id: 'identity.rotation-in-progress', severity: 'info', title: `key rotation ${r.old} → ${r.new} in its grace period until ${new Date(end).toISOString()}`, explanation: `${r.notified} trusted peer(s) took note so far; the old ID answers with a pointer to the new one until then, and the old key is deleted afterwards.`, fix: 'agentnet identity status' }]
}

/** Replay window, clock skew and token lifetimes against recommended bounds */
export function checkTimeouts (s: PostureSnapshot, o: ReviewOptions = {}): Finding[] {
  const out: Finding[] = []
  const { messaging, tokens } = s.config
  const maxWindow = o.maxReplayWindowMs ?? DEFAULT_MAX_REPLAY_WINDOW_MS
  const maxSkew = o.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS
  const maxToken = o.maxTokenLifetimeMs ?? DEFAULT_MAX_TOKEN_LIFETIME_MS
  if (messaging.replayWindowMs > maxWindow) {
    out.push({ id: 'config.replay-window', severity: 'medium', title: `replay window is ${messaging.replayWindowMs / 1000} s`, explanation: `Messages up to ${messaging.replayWindowMs / 1000} s old are accepted; the recommended bound is ${maxWindow / 1000} s (default 60 s). A wide window lengthens the time a captured message can be replayed after a restart and grows the nonce cache.`, fix: 'config messaging.replayWindowMs: 60000' })
  }
  if (messaging.maxClockSkewMs > maxSkew) {
    out.push({ id: 'config.clock-skew', severity: 'medium', title: `accepted clock skew is ${messaging.maxClockSkewMs / 1000} s`, explanation: `Timestamps up to ${messaging.maxClockSkewMs / 1000} s in the future are accepted; recommended at most ${maxSkew / 1000} s (default 30 s). Fix the peer's clock (NTP) rather than widening this.`, fix: 'config messaging.maxClockSkewMs: 30000' })
  }
  if (tokens.lifetimeMs > maxToken) {
    out.push({ id: 'config.token-lifetime', severity: 'medium', title: `session tokens live ${tokens.lifetimeMs / 1000} s`, explanation: `Tokens issued by this node are valid for more than ${maxToken / 60_000} minutes; a stolen token is useful for that long.`, fix: 'config tokens.lifetimeMs: 60000' })
  }
  if (tokens.maxLifetimeMs > maxToken) {
    out.push({ id: 'config.token-max-lifetime', severity: 'low', title: `peers may ask for tokens living ${tokens.maxLifetimeMs / 1000} s`, explanation: `tokens.maxLifetimeMs lets a peer request tokens valid for more than ${maxToken / 60_000} minutes.`, fix: 'config tokens.maxLifetimeMs: 300000' })
  }
  return out
}

/** Strict mode, public services, token-free public services */
export function checkServices (s: PostureSnapshot): Finding[] {
  const out: Finding[] = []
  const { trust, tokens } = s.config
  if (trust.publicServices.length > 0 && !trust.strict) {
    out.push({ id: 'trust.strict-off-public', severity: 'medium', title: 'strict mode is off on a node with public services', explanation: `Public services (${trust.publicServices.join(', ')}) answer anyone, and with trust.strict off any peer may connect and use them.`, fix: 'config trust.strict: true' })
  }
  if (trust.acceptOldKeyOnlySuccession === true) {
    out.push({ id: 'trust.old-key-only-succession', severity: 'high', title: 'key rotations signed by the old key alone are followed', explanation: 'A peer\'s trust moves to whatever new ID a record signed only by its old key names: whoever steals a trusted peer\'s key can take over its trust for good.', fix: 'config trust.acceptOldKeyOnlySuccession: false' })
  }
  const free = trust.publicServices.filter(svc => !tokens.protectedServices.includes(svc))
  if (free.length > 0) {
    out.push({ id: 'services.public-token-free', severity: 'medium', title: `public services without tokens: ${free.join(', ')}`, explanation: 'These answer untrusted peers without a session token: nothing limits or scopes who uses them, and revocation cannot cut a caller off.', fix: `config tokens.protectedServices: ${JSON.stringify([...tokens.protectedServices, ...free])}` })
  }
  return out
}

/** Trusted peers not seen (or trusted) for long, open invites, pending requests */
export function checkTrust (s: PostureSnapshot, o: ReviewOptions = {}): Finding[] {
  const out: Finding[] = []
  if (s.trust.error !== undefined) {
    out.push({ id: 'trust.store-unreadable', severity: 'high', title: 'trust store is unreadable', explanation: s.trust.error, fix: 'restore trust.json from a backup (the node will not start without it)' })
  }
  const stale = o.stalePeerMs ?? DEFAULT_STALE_PEER_MS
  const trusted = Object.entries(s.trust.peers).filter(([, p]) => p.state === 'trusted')
  const old = trusted.filter(([id, p]) => s.now - (s.lastSeen?.[id] ?? p.since) > stale)
  if (old.length > 0) {
    const basis = s.lastSeen === undefined
      ? `trusted for more than ${days(stale)} (this node keeps no last-seen data yet, so the age is measured from when trust was granted)`
      : `not seen for more than ${days(stale)}`
    out.push({ id: 'trust.stale-peers', severity: 'low', title: `${old.length} trusted peer${old.length === 1 ? '' : 's'} ${s.lastSeen === undefined ? 'trusted long ago' : 'not seen recently'}`, explanation: `${old.map(([id]) => id).join(', ')}: ${basis}. Trust that is no longer needed is attack surface.`, fix: 'agentnet trust revoke <peer>' })
  }
  for (const id of s.config.trust.peers) {
    if (s.trust.peers[id]?.state === 'revoked') {
      out.push({ id: 'trust.config-revoked', severity: 'medium', title: `${id} is revoked but still in trust.peers`, explanation: 'A peer listed in the config is trusted again at the next start, undoing the revocation.', fix: 'config trust.peers: remove it' })
    }
  }
  const maxInvite = o.maxInviteAgeMs ?? DEFAULT_MAX_INVITE_AGE_MS
  for (const [hash, inv] of Object.entries(s.trust.invites)) {
    if (inv.expiresAt <= s.now || inv.usesLeft <= 0) continue
    const age = s.now - inv.createdAt
    const long = age > maxInvite || inv.expiresAt - s.now > maxInvite
    out.push({
      id: `trust.open-invite.${hash.slice(0, 12)}`,
      severity: long ? 'low' : 'info',
      title: `open invite, ${days(age)} old, ${inv.usesLeft} use${inv.usesLeft === 1 ? '' : 's'} left`,
      explanation: `Whoever holds the code becomes trusted until ${new Date(inv.expiresAt).toISOString()}.${long ? ` Invites should not stay open for more than ${days(maxInvite)}.` : ''}`,
      fix: 'create invites with a short --ttl; an unused invite expires on its own'
    })
  }
  const maxPending = o.maxPendingAgeMs ?? DEFAULT_MAX_PENDING_AGE_MS
  const pending = Object.entries(s.trust.peers).filter(([, p]) => p.state === 'pending-inbound')
  if (pending.length > 0) {
    const oldest = Math.max(...pending.map(([, p]) => s.now - p.since))
    out.push({ id: 'trust.pending', severity: oldest > maxPending ? 'low' : 'info', title: `${pending.length} trust request${pending.length === 1 ? '' : 's'} pending, oldest ${days(oldest)}`, explanation: 'Requests wait for an operator decision.', fix: 'agentnet trust pending; agentnet trust approve|reject <peer>' })
  }
  return out
}

function hostOf (address: string): string | undefined {
  try {
    return multiaddr(address).getComponents().find(c => ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(c.name))?.value
  } catch {
    return undefined
  }
}

/** STUN/relay servers outside the bootstrap network, UPnP */
export function checkNetwork (s: PostureSnapshot): Finding[] {
  const out: Finding[] = []
  const { config } = s
  const hosts = new Set(config.bootstrap.map(hostOf).filter((h): h is string => h !== undefined))
  const bootstrapPeers = new Set(config.bootstrap.map(a => { try { return multiaddr(a).getComponents().find(c => c.name === 'p2p')?.value } catch { return undefined } }))
  const outside = config.nat.stunServers.filter(url => {
    const host = /^(?:stuns?|turns?):\[?([^\]?]+?)\]?(?::\d+)?(?:\?.*)?$/.exec(url)?.[1]
    return host === undefined || !hosts.has(host)
  })
  if (outside.length > 0) {
    out.push({ id: 'network.stun-outside', severity: 'medium', title: `STUN/TURN servers outside the bootstrap network: ${outside.join(', ')}`, explanation: 'Every WebRTC connection attempt tells these servers this node\'s addresses and when it connects.', fix: 'config nat.stunServers: [] (nat.stunFromBootstrap uses the bootstrap nodes)' })
  }
  const relays = (s.live.relayReservations ?? []).filter(p => !bootstrapPeers.has(p))
  if (relays.length > 0) {
    out.push({ id: 'network.relay-outside', severity: 'low', title: `relay reservations outside the bootstrap network: ${relays.join(', ')}`, explanation: 'Relayed traffic is end-to-end encrypted, but these relays learn who talks to this node and when.', fix: 'config bootstrap (relay through your own bootstrap nodes) or relay.reserve: false' })
  }
  if (config.nat.upnp) {
    out.push({ id: 'network.upnp', severity: 'medium', title: 'UPnP port mapping is on', explanation: 'The node asks the LAN router to open a port to it, exposing it beyond what the network administrator configured, and multicasts on the LAN.', fix: 'config nat.upnp: false' })
  }
  const extra = s.config as unknown as Record<string, unknown>
  for (const key of ['metrics', 'dashboard']) {
    const section = extra[key]
    const listen = typeof section === 'object' && section !== null ? (section as Record<string, unknown>).listen : undefined
    if (typeof listen !== 'string' || listen === '') continue
    if (!listensLocally(listen)) {
      out.push({ id: `network.${key}-exposed`, severity: 'medium', title: `${key} listens beyond localhost (${listen})`, explanation: `The ${key} endpoint reveals peers, traffic and findings to anyone who can reach ${listen}.`, fix: `config ${key}.listen: "127.0.0.1:<port>"` })
    }
  }
  return out
}

/** Whether a `host:port`, URL or multiaddr listen address is loopback-only */
export function listensLocally (listen: string): boolean {
  if (listen.startsWith('/')) {
    try {
      return isLoopback(multiaddr(listen))
    } catch {
      return false
    }
  }
  const host = /^(?:[a-z]+:\/\/)?(\[[^\]]+\]|[^:/]+)/i.exec(listen)?.[1]?.replace(/^\[|\]$/g, '')
  return host === 'localhost' || host === '::1' || (host?.startsWith('127.') ?? false)
}

/** Audit chain status and gaps */
export function checkAudit (s: PostureSnapshot, o: ReviewOptions = {}): Finding[] {
  const a = s.audit
  if (a === undefined) {
    return [{ id: 'audit.missing', severity: 'info', title: 'no audit log yet', explanation: 'The node creates audit.log at its first start.', fix: 'none needed' }]
  }
  if (a.error !== undefined) {
    return [{ id: 'audit.unreadable', severity: 'high', title: 'audit log could not be verified', explanation: a.error, fix: 'agentnet audit verify' }]
  }
  const out: Finding[] = []
  if (!a.ok) {
    out.push({ id: 'audit.chain', severity: 'high', title: `audit chain broken at line ${a.firstBad?.line ?? '?'}`, explanation: `${a.firstBad?.reason ?? 'damaged'}${a.firstBad?.seq !== undefined ? ` (seq ${a.firstBad.seq})` : ''}; ${a.records} records verified before it. Records were changed, removed or reordered.`, fix: 'agentnet audit verify; compare with an anchored copy of last.hash' })
  } else {
    out.push({ id: 'audit.chain', severity: 'info', title: `audit chain intact: ${a.records} records`, explanation: `Last record seq ${a.last?.seq ?? '-'}, hash ${a.last?.hash.slice(0, 16) ?? '-'}…; keep this hash elsewhere to detect a rewrite of the whole log.`, fix: 'none needed' })
  }
  if (a.torn !== undefined) {
    out.push({ id: 'audit.torn', severity: 'low', title: 'audit log ends in a torn line', explanation: `Line ${a.torn.line} (${a.torn.bytes} bytes) was cut by a crash; the next start removes it.`, fix: 'restart the node' })
  }
  if ((a.timeRegressions ?? 0) > 0) {
    out.push({ id: 'audit.time-regression', severity: 'low', title: `audit record times go backwards ${a.timeRegressions} time(s)`, explanation: 'The clock of this host jumped back while the node ran (records are in order of seq).', fix: 'run NTP on this host' })
  }
  const gap = o.auditGapMs ?? DEFAULT_AUDIT_GAP_MS
  if (a.lastTime !== undefined && s.live.running && s.now - Date.parse(a.lastTime) > gap) {
    out.push({ id: 'audit.gap', severity: 'low', title: `no audit record for ${days(s.now - Date.parse(a.lastTime))}`, explanation: 'The node runs but has recorded no security event for a long time; check that it writes to this home.', fix: 'agentnet audit tail' })
  }
  return out
}

/** Clock offset against peers: measured only through rejections today */
export function checkClock (s: PostureSnapshot): Finding[] {
  if (!s.live.running) {
    return [{ id: 'clock.offset', severity: 'info', title: 'clock offset against peers not measured', explanation: `The node is not running (${s.live.reason ?? 'no socket'}), and the protocol carries no clock exchange; run doctor while the node runs to see rejected stale/future messages.`, fix: 'keep NTP running on this host' }]
  }
  const stale = s.live.rejected?.StaleMessage ?? 0
  const future = s.live.rejected?.FutureMessage ?? 0
  if (stale + future > 0) {
    return [{ id: 'clock.offset', severity: 'medium', title: `${stale + future} message(s) refused for their timestamps`, explanation: `${stale} too old and ${future} from the future since start: some peer's clock (or this one) is off by more than the replay window or the allowed skew.`, fix: 'run NTP on this host; ask the peers to' }]
  }
  return [{ id: 'clock.offset', severity: 'info', title: 'clock offset against peers not measurable yet', explanation: 'The agent protocol has no clock exchange, so the offset itself is unknown; no message was refused for its timestamp since start.', fix: 'keep NTP running on this host' }]
}

/** Every check, sorted by severity */
export function reviewPosture (s: PostureSnapshot, o: ReviewOptions = {}): Finding[] {
  return sortFindings([
    ...checkHome(s),
    ...checkKeyAge(s, o),
    ...checkRotation(s),
    ...checkTimeouts(s, o),
    ...checkServices(s),
    ...checkTrust(s, o),
    ...checkNetwork(s),
    ...checkAudit(s, o),
    ...checkClock(s),
    ...checkAdvisories(s.versions, s.advisories)
  ])
}
