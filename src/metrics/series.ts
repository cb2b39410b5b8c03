/**
 * agentnet's own series. Most are read when Prometheus scrapes, from the
 * counters the services keep anyway (`messaging.metrics`, `outbox.admitted`,
 * `guard.stats()`, …); only what no counter records is counted as it
 * happens: messages by service and result and the request round trip (the
 * {@link MessagingObserver}), token issues and trust events.
 */

import { Counter, Gauge, Histogram } from 'prom-client'
import { isErrorCode } from '../errors/index.ts'
import { POSTURE_WAIT_MS } from '../posture/constants.ts'
import { FOREIGN_LABEL, MAX_LABEL_VALUES, OTHER_LABEL, RTT_BUCKETS_SECONDS } from './constants.ts'
import type { Guard } from '../guard/index.ts'
import type { GroupsService } from '../groups/index.ts'
import type { MessagingObserver, MessagingService } from '../messaging/index.ts'
import type { Network } from '../node/index.ts'
import type { Outbox } from '../outbox/index.ts'
import type { TrustChange, TrustService } from '../trust/index.ts'
import type { PostureMonitor } from '../posture/monitor.ts'
import type { Registry } from 'prom-client'

/** What the collect-time series read; every part is an existing service of the node */
export interface MetricsSources {
  messaging: Pick<MessagingService, 'metrics' | 'replayCache'>
  outbox: Pick<Outbox, 'admitted' | 'refused'>
  guard: Pick<Guard, 'stats'>
  /** Absent when groups are off */
  groups?: Pick<GroupsService, 'list'>
  trust: Pick<TrustService, 'stats' | 'list' | 'on' | 'off'>
  network: Pick<Network, 'status'>
  /** The node's posture review (cached: reviewed at most once per 5 minutes) */
  posture?: Pick<PostureMonitor, 'current'>
}

/** Keeps a label to {@link MAX_LABEL_VALUES} distinct values */
class BoundedLabel {
  private readonly seen = new Set<string>()

  value (v: string): string {
    if (v === '' || this.seen.has(v)) return v
    if (this.seen.size >= MAX_LABEL_VALUES) return OTHER_LABEL
    this.seen.add(v)
    return v
  }
}

/** `ok`, `duplicate` and agentnet's own codes (a fixed set) as they are; a code another party chose as {@link FOREIGN_LABEL} */
function resultLabel (result: string): string {
  return result === 'ok' || result === 'duplicate' || isErrorCode(result) ? result : FOREIGN_LABEL
}

/** Set a counter to totals kept elsewhere (a counter only ever goes up: so do the totals it mirrors) */
function mirror (counter: Counter<string>, totals: Record<string, number>, label: string): void {
  counter.reset()
  for (const [value, n] of Object.entries(totals)) counter.inc({ [label]: value }, n)
}

/** The live series: the parts counted as they happen */
export interface AgentSeries {
  /** Hand to the messaging service (`MessagingComponents.observer`) */
  observer: MessagingObserver
  /** A token event of the token service (`onEvent`) */
  tokenEvent: (type: string) => void
  /** Follow trust changes (at start) */
  attach: () => void
  /** Stop following them (at stop) */
  detach: () => void
}

/** Register agentnet's series on `registry`; the collect-time ones read `sources()` on every scrape */
export function registerAgentSeries (registry: Registry, sources: () => MetricsSources | undefined): AgentSeries {
  const registers = [registry]
  // peers choose the names and codes they send us: they must not crowd out ours
  const sentServices = new BoundedLabel()
  const receivedServices = new BoundedLabel()
  const read = <T> (fn: (s: MetricsSources) => T): T | undefined => {
    const s = sources()
    return s == null ? undefined : fn(s)
  }

  // ---- counted as they happen
  const sent = new Counter({ name: 'agentnet_messages_sent_total', help: 'Requests and one-way messages this node sent, by service, kind and result (ok or the error code)', labelNames: ['service', 'kind', 'result'], registers })
  const received = new Counter({ name: 'agentnet_messages_received_total', help: 'Inbound messages by service, kind and result (ok, duplicate or the rejection code; service "" when the frame did not verify)', labelNames: ['service', 'kind', 'result'], registers })
  const rtt = new Histogram({ name: 'agentnet_request_rtt_seconds', help: 'Time from sending a request to its answer (response or error), retries included, seconds', labelNames: ['service'], buckets: RTT_BUCKETS_SECONDS, registers })
  const tokens = new Counter({ name: 'agentnet_token_events_total', help: 'Session tokens this node issued, and revocations, by event', labelNames: ['event'], registers })
  const trustEvents = new Counter({ name: 'agentnet_trust_events_total', help: 'Trust changes by the state a peer entered (trusted, pending-inbound, revoked, …)', labelNames: ['state'], registers })
  for (const event of ['issued', 'revoked']) tokens.inc({ event }, 0)

  const observer: MessagingObserver = {
    sent: (service, kind, result, seconds) => {
      const s = sentServices.value(service)
      sent.inc({ service: s, kind, result: resultLabel(result) })
      if (seconds !== undefined) rtt.observe({ service: s }, seconds)
    },
    received: (service, kind, result) => {
      received.inc({ service: receivedServices.value(service), kind, result: resultLabel(result) })
    }
  }
  const onChanged = (change: TrustChange): void => { trustEvents.inc({ state: change.state }) }

  // ---- read at scrape time from the services' own counters
  new Counter({ name: 'agentnet_message_rejections_total', help: 'Rejected inbound frames and messages by error code', labelNames: ['code'], registers, collect () { read(s => { mirror(this, s.messaging.metrics.rejected, 'code') }) } })
  new Counter({ name: 'agentnet_token_refusals_total', help: 'Inbound messages refused by the token gate, by code (TokenRequired, TokenExpired, …)', labelNames: ['code'], registers, collect () { read(s => { mirror(this, Object.fromEntries(Object.entries(s.messaging.metrics.rejected).filter(([c]) => c.startsWith('Token'))), 'code') }) } })
  new Counter({ name: 'agentnet_message_retries_total', help: 'Re-sent request attempts (same request ID, new nonce)', registers, collect () { read(s => { this.reset(); this.inc(s.messaging.metrics.retries) }) } })
  new Counter({ name: 'agentnet_message_duplicates_total', help: 'Inbound retries answered from the idempotence cache', registers, collect () { read(s => { this.reset(); this.inc(s.messaging.metrics.duplicates) }) } })
  new Gauge({ name: 'agentnet_replay_cache_entries', help: 'Nonces and watermarks the message replay cache holds', registers, collect () { read(s => { this.set(s.messaging.replayCache.size) }) } })
  new Counter({ name: 'agentnet_outbox_admitted_total', help: 'Pieces of agent-authored content admitted by the outbox, by kind', labelNames: ['kind'], registers, collect () { read(s => { mirror(this, s.outbox.admitted, 'kind') }) } })
  new Counter({ name: 'agentnet_outbox_refused_total', help: 'Pieces of agent-authored content the outbox refused, by kind', labelNames: ['kind'], registers, collect () { read(s => { mirror(this, s.outbox.refused, 'kind') }) } })
  new Counter({ name: 'agentnet_guard_checks_total', help: 'Outbound bodies the leakage guard checked', registers, collect () { read(s => { this.reset(); this.inc(s.guard.stats().checks) }) } })
  new Counter({ name: 'agentnet_guard_actions_total', help: 'Leakage guard decisions by action (pass, redact, block, warn)', labelNames: ['action'], registers, collect () { read(s => { mirror(this, s.guard.stats().actions, 'action') }) } })
  new Counter({ name: 'agentnet_guard_blocked_findings_total', help: 'Findings in blocked messages, by category', labelNames: ['category'], registers, collect () { read(s => { mirror(this, s.guard.stats().blockedByCategory, 'category') }) } })
  new Gauge({ name: 'agentnet_guard_registered_values', help: 'Values registered with the leakage guard', registers, collect () { read(s => { this.set(s.guard.stats().registered) }) } })
  new Gauge({ name: 'agentnet_groups', help: 'MLS groups this node is a member of', registers, collect () { read(s => { this.set(s.groups?.list().length ?? 0) }) } })
  new Gauge({ name: 'agentnet_group_epoch', help: 'Current MLS epoch of each group', labelNames: ['group'], registers, collect () { read(s => { this.reset(); for (const g of s.groups?.list() ?? []) this.set({ group: g.groupId }, g.epoch) }) } })
  new Gauge({ name: 'agentnet_group_members', help: 'Members of each group', labelNames: ['group'], registers, collect () { read(s => { this.reset(); for (const g of s.groups?.list() ?? []) this.set({ group: g.groupId }, g.members.length) }) } })
  new Gauge({ name: 'agentnet_trust_peers', help: 'Peers in the trust store by state', labelNames: ['state'], registers, collect () { read(s => { this.reset(); const by: Record<string, number> = {}; for (const e of s.trust.list()) by[e.state] = (by[e.state] ?? 0) + 1; for (const [state, n] of Object.entries(by)) this.set({ state }, n) }) } })
  new Counter({ name: 'agentnet_trust_handshakes_total', help: 'Inbound trust handshakes by outcome (seen, rate_limited, busy, refused)', labelNames: ['outcome'], registers, collect () { read(s => { const t = s.trust.stats(); mirror(this, { seen: t.handshakes, rate_limited: t.rateLimited, busy: t.busy, refused: t.refused }, 'outcome') }) } })
  new Gauge({ name: 'agentnet_connections', help: 'Open connections by transport (tcp, webrtc, webrtc-direct, relay) and path (direct or relayed)', labelNames: ['transport', 'path'], registers, collect () { read(s => { this.reset(); for (const c of s.network.status().connections) this.inc({ transport: c.transport, path: c.direct ? 'direct' : 'relayed' }) }) } })
  new Gauge({ name: 'agentnet_relay_reservations', help: 'Relays holding a reservation for this node', registers, collect () { read(s => { this.set(s.network.status().relayReservations.length) }) } })
  new Gauge({ name: 'agentnet_reachability', help: '1 for the node\'s current reachability (public, private, unknown)', labelNames: ['state'], registers, collect () { read(s => { this.reset(); this.set({ state: s.network.status().reachability }, 1) }) } })
  // the posture review is cached for 5 minutes; a scrape waits for one in progress for at most POSTURE_WAIT_MS
  new Gauge({
    name: 'agentnet_posture_findings',
    help: 'Findings of the node\'s posture review (agentnet doctor, drift included) by severity; reviewed at most every 5 minutes',
    labelNames: ['severity'],
    registers,
    async collect () {
      const counts = await sources()?.posture?.current(POSTURE_WAIT_MS)
      this.reset()
      if (counts !== undefined) for (const [severity, n] of Object.entries(counts.findings)) this.set({ severity }, n)
    }
  })
  new Gauge({
    name: 'agentnet_posture_drift',
    help: 'Differences from the signed posture baseline (drift findings) at the last posture review',
    registers,
    async collect () {
      const counts = await sources()?.posture?.current(POSTURE_WAIT_MS)
      this.reset()
      if (counts !== undefined) this.set(counts.drift)
    }
  })

  return {
    observer,
    tokenEvent: type => { tokens.inc({ event: type.replace(/^token\./, '') }) },
    attach: () => { read(s => s.trust.on('changed', onChanged)) },
    detach: () => { read(s => s.trust.off('changed', onChanged)) }
  }
}
