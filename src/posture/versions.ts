/**
 * Installed versions against the advisories shipped with the release
 * (`advisories.json`): pure comparison plus a reader for installed package
 * versions.
 *
 * @module
 */

import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Advisory, Finding, Severity } from './types.ts'

/** Packages whose installed versions doctor reports */
export const TRACKED_PACKAGES: readonly string[] = ['libp2p', '@libp2p/noise', '@libp2p/tls', '@libp2p/yamux', '@libp2p/tcp', '@libp2p/kad-dht', '@libp2p/circuit-relay-v2', '@libp2p/webrtc', '@libp2p/crypto', 'jose']

/** Compare two `x.y.z` versions (pre-release suffixes sort before the release); NaN parts count as 0 */
export function compareVersions (a: string, b: string): number {
  const parse = (v: string): { nums: number[], pre: boolean } => {
    const [core = '', pre] = v.replace(/^v/, '').split('-', 2)
    return { nums: core.split('.').map(n => Number.parseInt(n, 10) || 0), pre: pre !== undefined }
  }
  const x = parse(a)
  const y = parse(b)
  for (let i = 0; i < 3; i++) {
    const d = (x.nums[i] ?? 0) - (y.nums[i] ?? 0)
    if (d !== 0) return Math.sign(d)
  }
  return x.pre === y.pre ? 0 : x.pre ? -1 : 1
}

const SEVERITIES: ReadonlySet<string> = new Set(['high', 'medium', 'low', 'info'])

/** Validate the advisories list; throws naming the bad entry */
export function parseAdvisories (value: unknown): Advisory[] {
  const list = (value as { advisories?: unknown })?.advisories
  if (!Array.isArray(list)) throw new Error('advisories: expected {"advisories": [...]}')
  return list.map((a: Record<string, unknown>, i) => {
    if (typeof a?.package !== 'string' || typeof a.fixedIn !== 'string' || typeof a.id !== 'string' ||
        typeof a.summary !== 'string' || typeof a.severity !== 'string' || !SEVERITIES.has(a.severity)) {
      throw new Error(`advisories[${i}] needs package, fixedIn, id, severity (high|medium|low|info), summary`)
    }
    return { package: a.package, fixedIn: a.fixedIn, id: a.id, severity: a.severity as Severity, summary: a.summary }
  })
}

/** One finding per advisory whose fix the installed version lacks, plus one info line of versions */
export function checkAdvisories (versions: Record<string, string>, advisories: Advisory[]): Finding[] {
  const out: Finding[] = []
  for (const adv of advisories) {
    const installed = versions[adv.package]
    if (installed === undefined || compareVersions(installed, adv.fixedIn) >= 0) continue
    out.push({
      id: `version.${adv.package}.${adv.id}`,
      severity: adv.severity,
      title: `${adv.package} ${installed} lacks the fix in ${adv.fixedIn} (${adv.id})`,
      explanation: adv.summary,
      fix: `npm install ${adv.package}@^${adv.fixedIn}`
    })
  }
  out.push({
    id: 'version.installed',
    severity: 'info',
    title: `agentnet ${versions.agentnet ?? '?'}, libp2p ${versions.libp2p ?? '?'}`,
    explanation: `Checked against ${advisories.length} shipped advisor${advisories.length === 1 ? 'y' : 'ies'}: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    fix: 'none needed'
  })
  return out
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

async function packageVersion (file: string): Promise<string | undefined> {
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as { version?: unknown }
    return typeof json.version === 'string' ? json.version : undefined
  } catch {
    return undefined
  }
}

/** The installed versions of agentnet and {@link TRACKED_PACKAGES} (missing ones left out) */
export async function installedVersions (): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  const own = await packageVersion(join(ROOT, 'package.json'))
  if (own !== undefined) out.agentnet = own
  for (const name of TRACKED_PACKAGES) {
    let dir: string
    try {
      dir = dirname(fileURLToPath(import.meta.resolve(name)))
    } catch {
      continue
    }
    // walk up from the entry point to the package's own package.json
    for (let i = 0; i < 6; i++, dir = dirname(dir)) {
      const file = join(dir, 'package.json')
      try {
        const json = JSON.parse(await readFile(file, 'utf8')) as { name?: unknown, version?: unknown }
        if (json.name === name && typeof json.version === 'string') {
          out[name] = json.version
          break
        }
      } catch {}
    }
  }
  return out
}

/** The advisories list shipped with this release */
export async function shippedAdvisories (): Promise<Advisory[]> {
  return parseAdvisories(JSON.parse(await readFile(new URL('./advisories.json', import.meta.url), 'utf8')))
}
