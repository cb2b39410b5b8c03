import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { loadConfig, mergeConfig } from '../../../src/config/index.ts'
import { loadOrCreateIdentity } from '../../../src/identity/index.ts'
import { POSTURE_MAX_AGE_MS, PostureMonitor } from '../../../src/posture/index.ts'
import type { Config } from '../../../src/config/index.ts'

describe('PostureMonitor: the running node\'s posture counts, cached', () => {
  let home: string
  let config: Config

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'an-posture-mon-'))
    await loadOrCreateIdentity(home)
    config = mergeConfig(await loadConfig() as unknown as Record<string, unknown>, { tokens: { lifetimeMs: 600_000 } }) as unknown as Config
  })
  after(async () => { await rm(home, { recursive: true, force: true }) })

  it('counts the findings of doctor\'s checks (a planted weakness) and reviews at most once per 5 minutes', async () => {
    let now = Date.now()
    let liveReads = 0
    const monitor = new PostureMonitor({ home, config, now: () => now, live: () => { liveReads++; return { running: true, rejected: {} } } })
    assert.equal(monitor.latest(), undefined)
    // waitMs 0: starts the review, answers at once with what it has (nothing yet)
    assert.equal(await monitor.current(0), undefined)
    const first = await monitor.current(60_000)
    assert.ok(first !== undefined)
    assert.equal(first.error, undefined)
    assert.ok(first.findings.medium >= 1, 'config.token-lifetime is medium')
    assert.ok(first.findings.info >= 1, 'baseline.none is info')
    assert.equal(first.baseline, 'none')
    assert.equal(first.drift, 0)
    assert.equal(liveReads, 1, 'one review for both calls')
    // within 5 minutes: the cached counts, no new review
    now += POSTURE_MAX_AGE_MS - 1
    assert.equal(await monitor.current(60_000), first)
    assert.equal(liveReads, 1)
    // later: a new review
    now += 2
    const second = await monitor.current(60_000)
    assert.equal(liveReads, 2)
    assert.equal(second?.checkedAt, now)
  })

  it('a reader never waits longer than it asked: the previous counts meanwhile', async () => {
    let now = Date.now()
    const monitor = new PostureMonitor({ home, config, now: () => now, live: () => ({ running: true, rejected: {} }) })
    const first = await monitor.current(60_000)
    assert.ok(first !== undefined)
    now += POSTURE_MAX_AGE_MS + 1
    const started = Date.now()
    // a fresh review takes its time (file reads); a reader asking for 1 ms gets the previous counts
    const quick = await monitor.current(1)
    assert.ok(Date.now() - started < 1000)
    assert.equal(quick, first)
    const next = await monitor.refresh()
    assert.equal(next.checkedAt, now)
  })
})
