/**
 * The crypto pool's view of spare CPU in a container (src/protocol/cpu-idle.ts):
 * cgroup v2 and v1 quota files read from a made-up cgroup file system, and the
 * idle counter taking the smaller of the host's idle time and the unused quota.
 */
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { after, describe, it } from 'node:test'
import { parseCpuMax, parseCpuStatUsageMs, readCgroupCpu, usableCores, usableIdleMs } from '../../../src/protocol/cpu-idle.ts'

const dirs: string[] = []

/** A cgroup file system with `files` (path → content) and /proc/self/cgroup `self`; returns [root, selfCgroup] */
async function fakeCgroups (self: string, files: Record<string, string>): Promise<[string, string]> {
  const root = await mkdtemp(join(tmpdir(), 'an-cg-'))
  dirs.push(root)
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, 'fs', path)), { recursive: true })
    await writeFile(join(root, 'fs', path), content)
  }
  await writeFile(join(root, 'self'), self)
  return [join(root, 'fs'), join(root, 'self')]
}

describe('cgroup CPU quota', () => {
  after(async () => { await Promise.all(dirs.map(async d => rm(d, { recursive: true, force: true }))) })

  it('parses cpu.max and cpu.stat', () => {
    assert.equal(parseCpuMax('max 100000\n'), undefined)
    assert.equal(parseCpuMax('50000 100000\n'), 0.5)
    assert.equal(parseCpuMax('150000 100000'), 1.5)
    assert.equal(parseCpuMax('garbage'), undefined)
    assert.equal(parseCpuMax('0 100000'), undefined)
    assert.equal(parseCpuStatUsageMs('usage_usec 2500000\nuser_usec 2000000\n'), 2500)
    assert.equal(parseCpuStatUsageMs('user_usec 1\n'), undefined)
  })

  it('cgroup v2: the quota of the process\'s own cgroup, and its usage as it grows', async () => {
    const [root, self] = await fakeCgroups('0::/system.slice/agentnet.service\n', {
      'system.slice/agentnet.service/cpu.max': '150000 100000\n',
      'system.slice/agentnet.service/cpu.stat': 'usage_usec 2500000\nuser_usec 2000000\n'
    })
    const cg = readCgroupCpu(root, self)
    assert.ok(cg)
    assert.equal(cg.quotaCores, 1.5)
    assert.equal(cg.usageMs(), 2500)
    await writeFile(join(root, 'system.slice/agentnet.service/cpu.stat'), 'usage_usec 4000000\n')
    assert.equal(cg.usageMs(), 4000)
    assert.equal(usableCores(cg), Math.min(availableParallelism(), 2))
  })

  it('cgroup v2 without a quota, v1 without a quota, or nothing readable: no quota (and no throw)', async () => {
    const [v2root, v2self] = await fakeCgroups('0::/\n', { 'cpu.max': 'max 100000\n', 'cpu.stat': 'usage_usec 1\n' })
    assert.equal(readCgroupCpu(v2root, v2self), undefined)
    const [v1root, v1self] = await fakeCgroups('2:cpuacct:/\n1:cpu:/\n0::/\n', {
      'cpu/cpu.cfs_quota_us': '-1\n', 'cpu/cpu.cfs_period_us': '100000\n', 'cpuacct/cpuacct.usage': '123\n'
    })
    assert.equal(readCgroupCpu(v1root, v1self), undefined)
    assert.equal(readCgroupCpu(join(v1root, 'nowhere'), join(v1root, 'nothing')), undefined)
    assert.equal(usableCores(undefined), availableParallelism())
  })

  it('cgroup v1 (a container\'s cpu,cpuacct hierarchy): quota and usage in ns', async () => {
    const [root, self] = await fakeCgroups('4:cpu,cpuacct:/docker/abc\n0::/\n', {
      'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '50000\n',
      'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000\n',
      'cpu,cpuacct/docker/abc/cpuacct.usage': '3000000000\n'
    })
    const cg = readCgroupCpu(root, self)
    assert.ok(cg)
    assert.equal(cg.quotaCores, 0.5)
    assert.equal(cg.usageMs(), 3000)
    assert.equal(usableCores(cg), 1)
  })
})

describe('usable idle time', () => {
  /** host: 2 idle cores; the cgroup: a quota of 1 core, using `usedPerSecond` ms of CPU a second */
  function scenario (usedPerSecond: number | undefined): () => number {
    let t = 0
    const counter = usableIdleMs({
      hostIdleMs: () => t * 2,
      now: () => t,
      ...(usedPerSecond === undefined ? {} : { cgroup: { quotaCores: 1, usageMs: () => t * usedPerSecond / 1000 } })
    })
    return () => {
      const before = counter()
      t += 1000
      return counter() - before
    }
  }

  it('is the host\'s idle time without a quota', () => {
    assert.equal(scenario(undefined)(), 2000)
  })

  it('is the quota left unused when that is less, and never negative', () => {
    assert.equal(scenario(800)(), 200)
    assert.equal(scenario(0)(), 1000)
    assert.equal(scenario(1500)(), 0)
  })
})
