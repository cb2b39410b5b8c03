import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import { growthFactorGiven, V8_SEMI_SPACE_GROWTH_FACTOR, YoungGenerationGovernor } from '../../../src/cli/heap.ts'

describe('YoungGenerationGovernor', () => {
  it('holds the young generation, lets it grow only while the loop is busy, and sets the flag only on a change', () => {
    const set: string[] = []
    const governor = new YoungGenerationGovernor({ setFlags: f => { set.push(f) }, busyUtilization: 0.5 })
    governor.hold()
    assert.equal(governor.factor, 1)
    governor.observe(0.1)
    governor.observe(0.49)
    assert.deepEqual(set, ['--semi-space-growth-factor=1'])
    governor.observe(0.5)
    assert.equal(governor.factor, V8_SEMI_SPACE_GROWTH_FACTOR)
    governor.observe(0.95)
    governor.observe(0.2)
    assert.equal(governor.factor, 1)
    governor.restore()
    assert.deepEqual(set, ['--semi-space-growth-factor=1', '--semi-space-growth-factor=2', '--semi-space-growth-factor=1', '--semi-space-growth-factor=2'])
  })

  it('leaves a growth factor given to Node alone', () => {
    assert.equal(growthFactorGiven(['--semi-space-growth-factor=4'], ''), true)
    assert.equal(growthFactorGiven([], '--max-old-space-size=100 --semi_space_growth_factor=3'), true)
    assert.equal(growthFactorGiven(['--expose-gc'], '--max-semi-space-size=8'), false)
  })
})

/**
 * The governor rests on V8 reading `--semi-space-growth-factor` each time it
 * considers growing the young generation. A child Node (so this process's
 * flags stay untouched) keeps objects alive across many scavenges, which
 * makes V8 grow the young generation; with the factor set to 1 at run time it
 * must not grow, with 2 it must.
 */
function youngGenerationGrowth (factor: number): { before: number, after: number } {
  const script = `
    import { setFlagsFromString, getHeapSpaceStatistics } from 'node:v8'
    setFlagsFromString('--semi-space-growth-factor=${factor}')
    const newSpace = () => getHeapSpaceStatistics().find(s => s.space_name === 'new_space').space_size
    // short-lived garbage first: V8 commits the second semi-space at the first scavenge
    let garbage
    for (let i = 0; i < 200_000; i++) garbage = { i, s: 'y' + i }
    const before = newSpace()
    const kept = []
    // ~40 MiB of objects that survive their scavenges (kept until the end)
    for (let i = 0; i < 400_000; i++) kept.push({ i, s: 'x'.repeat(16) + i, a: [i, i + 1, i + 2] })
    process.stdout.write(JSON.stringify({ before, after: newSpace(), kept: kept.length, garbage: garbage.i }))
  `
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 })
  assert.equal(child.status, 0, child.stderr)
  return JSON.parse(child.stdout) as { before: number, after: number }
}

describe('--semi-space-growth-factor at run time (this Node)', () => {
  it('1 keeps the young generation from growing under surviving allocations; 2 lets it grow', () => {
    const held = youngGenerationGrowth(1)
    assert.ok(held.after <= held.before, `held: new space grew from ${held.before} to ${held.after} bytes`)
    const free = youngGenerationGrowth(V8_SEMI_SPACE_GROWTH_FACTOR)
    assert.ok(free.after > free.before, `default: new space stayed at ${free.before} bytes`)
  })
})
