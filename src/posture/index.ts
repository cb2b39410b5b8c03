/**
 * @packageDocumentation
 *
 * Security posture: `agentnet doctor`. A review of a node's home and
 * configuration (and, when the node runs, live data from its socket) that
 * yields findings `{id, severity, title, explanation, fix}`, plus drift
 * against a baseline the operator approved and the node signed.
 *
 * Layout: {@link collectSnapshot} is the only code that reads anything; the
 * checks in `checks.ts` and the drift in `baseline.ts` are pure functions of
 * the snapshot; `doctor.ts` ties them together. Thresholds have defaults in
 * `constants.ts`; the versions with security fixes ship in `advisories.json`.
 *
 * @example
 *
 * ```ts
 * import { loadConfig } from '../config/index.ts'
 * import { loadIdentity } from '../identity/index.ts'
 * import { formatReport, recordBaseline, runDoctor } from './index.ts'
 *
 * const home = '/tmp/agentnet-a'
 * const config = await loadConfig()
 * await recordBaseline({ home, config, privateKey: (await loadIdentity(home)).privateKey })
 * const report = await runDoctor({ home, config })
 * console.log(formatReport(report))
 * process.exitCode = report.high ? 1 : 0
 * ```
 */

export { runDoctor, recordBaseline, formatReport, baselineFindings, peerIdOfHome } from './doctor.ts'
export { PostureMonitor } from './monitor.ts'
export type { PostureCounts, PostureMonitorInit } from './monitor.ts'
export type { DoctorOptions, DoctorReport } from './doctor.ts'
export { collectSnapshot, collectLive } from './collect.ts'
export type { CollectOptions } from './collect.ts'
export { reviewPosture, checkHome, checkKeyAge, checkRotation, checkTimeouts, checkServices, checkTrust, checkNetwork, checkAudit, checkClock, sortFindings, hasHigh, listensLocally } from './checks.ts'
export type { ReviewOptions } from './checks.ts'
export { postureOf, encodeBaseline, checkBaseline, diffPosture } from './baseline.ts'
export type { ApprovedPosture, Baseline, BaselineCheck, BaselineStatus } from './baseline.ts'
export { checkAdvisories, compareVersions, parseAdvisories, installedVersions, shippedAdvisories, TRACKED_PACKAGES } from './versions.ts'
export { MalformedBaselineError } from './errors.ts'
export * from './constants.ts'
export type { Finding, Severity, PostureSnapshot, FileEntry, Advisory, LiveData } from './types.ts'
