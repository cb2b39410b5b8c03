/**
 * The idle CPU time this process could use, for the crypto pool's rule that
 * small signs go to a worker only while a core is spare (`crypto-pool.ts`).
 *
 * `os.cpus()` reports the host's cores. In a container whose cgroup has a CPU
 * quota (`docker run --cpus 1`, a systemd `CPUQuota=`) the host may be idle
 * while the container has used up its quota, and a worker would only take
 * CPU from the node's own main thread. So the counter advances, between two
 * reads, by the smaller of the host's idle time and the quota the cgroup left
 * unused. cgroup v2 (`cpu.max`, `cpu.stat`) and v1 (`cpu.cfs_quota_us`,
 * `cpuacct.usage`) are read; the quota of the process's own cgroup only (what
 * a container runtime sets), not of its parents.
 *
 * @module
 */

import { readFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { join } from 'node:path'

/** A cgroup's CPU quota, in cores, and how much CPU the cgroup has used so far, ms. */
export interface CgroupCpu {
  quotaCores: number
  usageMs: () => number
}

function readText (file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
}

/** `quota period` of cgroup v2's `cpu.max`, in cores; undefined for `max` (no quota) or anything else. */
export function parseCpuMax (text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/)
  const q = Number(quota)
  const p = Number(period)
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : undefined
}

/** `usage_usec` of cgroup v2's `cpu.stat`, ms. */
export function parseCpuStatUsageMs (text: string): number | undefined {
  const m = /^usage_usec\s+(\d+)$/m.exec(text)
  return m === null ? undefined : Number(m[1]) / 1000
}

/**
 * The CPU quota of this process's cgroup, if it has one. `root` and
 * `selfCgroup` are the cgroup file system and `/proc/self/cgroup` (tests
 * pass their own). Never throws: anything unreadable or unexpected means no
 * quota, so the host's idle time counts as before.
 */
export function readCgroupCpu (root = '/sys/fs/cgroup', selfCgroup = '/proc/self/cgroup'): CgroupCpu | undefined {
  const lines = (readText(selfCgroup) ?? '').split('\n').map(l => l.split(':')).filter(p => p.length >= 3)
  // v2: "0::/path", the unified hierarchy at the root (pure v2) or under unified/ (hybrid)
  const unified = lines.find(p => p[0] === '0' && p[1] === '')
  if (unified !== undefined) {
    const path = unified.slice(2).join(':')
    for (const dir of [join(root, path), join(root, 'unified', path)]) {
      const max = readText(join(dir, 'cpu.max'))
      if (max === undefined) continue
      const quotaCores = parseCpuMax(max)
      const stat = join(dir, 'cpu.stat')
      if (quotaCores === undefined || parseCpuStatUsageMs(readText(stat) ?? '') === undefined) break
      return { quotaCores, usageMs: () => parseCpuStatUsageMs(readText(stat) ?? '') ?? 0 }
    }
  }
  // v1: "N:cpu,cpuacct:/path" or "N:cpu:/path" beside "N:cpuacct:/path"
  const v1 = (controller: string): string[] | undefined => {
    const line = lines.find(p => (p[1] ?? '').split(',').includes(controller))
    if (line === undefined) return undefined
    const path = line.slice(2).join(':')
    return [join(root, line[1] as string, path), join(root, controller, path)]
  }
  const cpuDirs = v1('cpu')
  const acctDirs = v1('cpuacct')
  if (cpuDirs === undefined || acctDirs === undefined) return undefined
  for (const dir of cpuDirs) {
    const quota = Number(readText(join(dir, 'cpu.cfs_quota_us')))
    const period = Number(readText(join(dir, 'cpu.cfs_period_us')))
    if (!Number.isFinite(quota) || !Number.isFinite(period)) continue
    if (quota <= 0 || period <= 0) return undefined
    const usageFile = acctDirs.map(d => join(d, 'cpuacct.usage')).find(f => Number.isFinite(Number(readText(f) ?? 'x')))
    if (usageFile === undefined) return undefined
    return { quotaCores: quota / period, usageMs: () => Number(readText(usageFile) ?? 0) / 1e6 }
  }
  return undefined
}

/** Cores this process can use: the ones it may run on, or its cgroup's quota rounded up if fewer. */
export function usableCores (cgroup: CgroupCpu | undefined = readCgroupCpu()): number {
  return Math.max(1, Math.min(availableParallelism(), Math.ceil(cgroup?.quotaCores ?? Infinity)))
}

/** The host's idle CPU time so far, ms, summed over its cores. */
function hostIdleMs (): number {
  let idle = 0
  for (const cpu of cpus()) idle += cpu.times.idle
  return idle
}

/**
 * A counter of usable idle CPU time, ms, to take deltas of (see the module
 * doc): each read advances it by the host's idle time since the last read,
 * or by the quota the cgroup left unused meanwhile if that is less.
 */
export function usableIdleMs (options: { hostIdleMs?: () => number, cgroup?: CgroupCpu, now?: () => number } = {}): () => number {
  const host = options.hostIdleMs ?? hostIdleMs
  const cgroup = options.cgroup
  const now = options.now ?? (() => performance.now())
  let lastHost = host()
  let lastUsage = cgroup?.usageMs() ?? 0
  let lastAt = now()
  let counter = 0
  return () => {
    const h = host()
    let delta = Math.max(0, h - lastHost)
    lastHost = h
    if (cgroup !== undefined) {
      const usage = cgroup.usageMs()
      const at = now()
      const unused = cgroup.quotaCores * (at - lastAt) - (usage - lastUsage)
      delta = Math.min(delta, Math.max(0, unused))
      lastUsage = usage
      lastAt = at
    }
    counter += delta
    return counter
  }
}
