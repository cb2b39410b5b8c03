/**
 * `doctor`: collect, review, compare with the signed baseline; and
 * `--record-baseline`.
 *
 * @module
 */

import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { KEY_FILE } from '../identity/index.ts'
import { writeFileAtomic } from '../utils/fs.ts'
import { checkBaseline, diffPosture, encodeBaseline, postureOf } from './baseline.ts'
import { hasHigh, reviewPosture, sortFindings } from './checks.ts'
import { collectSnapshot } from './collect.ts'
import { BASELINE_FILE, MAX_BASELINE_BYTES } from './constants.ts'
import type { ReviewOptions } from './checks.ts'
import type { CollectOptions } from './collect.ts'
import type { Finding, PostureSnapshot, Severity } from './types.ts'
import type { PrivateKey } from '@libp2p/interface'

export interface DoctorOptions extends CollectOptions {
  review?: ReviewOptions
}

export interface DoctorReport {
  home: string
  peerId?: string
  configSource: string
  /** `none`: no baseline recorded; `intact`: drift findings are against it; `tampered`: its signature or shape failed */
  baseline: 'none' | 'intact' | 'tampered'
  baselineRecordedAt?: number
  running: boolean
  counts: Record<Severity, number>
  /** true when any finding is high: the CLI exits 1 */
  high: boolean
  findings: Finding[]
}

/** The peer ID of the home's key, read without the strict mode check (doctor reports the mode itself) */
export async function peerIdOfHome (home: string): Promise<string | undefined> {
  try {
    return peerIdFromPrivateKey(privateKeyFromProtobuf(await readFile(join(home, KEY_FILE)))).toString()
  } catch {
    return undefined
  }
}

/** Drift findings against `<home>/posture-baseline.json` for a snapshot */
export async function baselineFindings (s: PostureSnapshot, peerId: string | undefined): Promise<{ status: DoctorReport['baseline'], recordedAt?: number, findings: Finding[] }> {
  let text: string
  try {
    const bytes = await readFile(join(s.home, BASELINE_FILE))
    if (bytes.length > MAX_BASELINE_BYTES) throw Object.assign(new Error('too large'), { code: 'EFBIG' })
    text = bytes.toString('utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { status: 'none', findings: [{ id: 'baseline.none', severity: 'info', title: 'no approved baseline', explanation: 'Drift cannot be reported until a baseline is recorded.', fix: 'agentnet doctor --record-baseline' }] }
    }
    return { status: 'tampered', findings: [{ id: 'baseline.tampered', severity: 'high', title: 'baseline cannot be read', explanation: (err as Error).message, fix: 'inspect posture-baseline.json; agentnet doctor --record-baseline once the posture is approved again' }] }
  }
  const check = checkBaseline(text, peerId ?? '(no identity)')
  if (check.status === 'tampered' || check.baseline === undefined) {
    return { status: 'tampered', findings: [{ id: 'baseline.tampered', severity: 'high', title: 'baseline signature is not intact', explanation: `${check.reason ?? 'tampered'}: someone changed the approved posture, or it is not this node's. Drift is not reported against it.`, fix: 'find out who changed posture-baseline.json; review the posture, then agentnet doctor --record-baseline' }] }
  }
  const successions: Record<string, string> = {}
  for (const [id, p] of Object.entries(s.trust.peers)) {
    const old = p.state === 'trusted' ? /^succeeds (\S+)$/.exec(p.note ?? '')?.[1] : undefined
    if (old !== undefined) successions[id] = old
  }
  const drift = diffPosture(check.baseline.posture, postureOf(s), check.baseline.recordedAt, successions)
  return {
    status: 'intact',
    recordedAt: check.baseline.recordedAt,
    findings: [
      { id: 'baseline.intact', severity: 'info', title: `baseline of ${new Date(check.baseline.recordedAt).toISOString()} intact; ${drift.length} difference${drift.length === 1 ? '' : 's'}`, explanation: 'The approved posture\'s signature verifies with this node\'s key.', fix: 'none needed' },
      ...drift
    ]
  }
}

/** Review a node's posture: every check plus drift against the baseline */
export async function runDoctor (options: DoctorOptions): Promise<DoctorReport> {
  const snapshot = await collectSnapshot(options)
  const peerId = await peerIdOfHome(options.home)
  const base = await baselineFindings(snapshot, peerId)
  const findings = sortFindings([...reviewPosture(snapshot, options.review), ...base.findings])
  const counts: Record<Severity, number> = { high: 0, medium: 0, low: 0, info: 0 }
  for (const f of findings) counts[f.severity]++
  return {
    home: options.home,
    ...(peerId !== undefined ? { peerId } : {}),
    configSource: snapshot.configSource,
    baseline: base.status,
    ...(base.recordedAt !== undefined ? { baselineRecordedAt: base.recordedAt } : {}),
    running: snapshot.live.running,
    counts,
    high: hasHigh(findings),
    findings
  }
}

/** Record the current posture as approved, signed by the node key; returns what was recorded */
export async function recordBaseline (options: CollectOptions & { privateKey: PrivateKey }): Promise<{ file: string, peerId: string, recordedAt: number, trustedPeers: number, settings: number }> {
  const snapshot = await collectSnapshot({ ...options, live: false })
  const recordedAt = options.now ?? Date.now()
  const posture = postureOf(snapshot)
  const file = join(options.home, BASELINE_FILE)
  await writeFileAtomic(file, encodeBaseline(posture, options.privateKey, recordedAt), 0o600)
  return { file, peerId: peerIdFromPrivateKey(options.privateKey).toString(), recordedAt, trustedPeers: posture.trustedPeers.length, settings: Object.keys(posture.settings).length }
}

const MARK: Record<Severity, string> = { high: 'HIGH  ', medium: 'MEDIUM', low: 'LOW   ', info: 'info  ' }

/** The human-readable report */
export function formatReport (r: DoctorReport, verbose = false): string {
  const shown = verbose ? r.findings : r.findings.filter(f => f.severity !== 'info')
  const lines = [
    `agentnet doctor: ${r.home}${r.peerId !== undefined ? ` (${r.peerId})` : ''}`,
    `config: ${r.configSource}; node ${r.running ? 'running' : 'not running'}; baseline: ${r.baseline}`,
    `findings: ${r.counts.high} high, ${r.counts.medium} medium, ${r.counts.low} low, ${r.counts.info} info${verbose ? '' : ' (info hidden; --verbose shows them)'}`,
    ''
  ]
  for (const f of shown) {
    lines.push(`${MARK[f.severity]} ${f.title}  [${f.id}]`, `       ${f.explanation}`, `       fix: ${f.fix}`)
  }
  return lines.join('\n')
}
