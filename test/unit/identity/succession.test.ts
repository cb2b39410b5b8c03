/**
 * Key rotation on disk: prepare then swap, each step resumable. A process
 * killed after any step leaves files from which `loadIdentity` completes the
 * rotation; a second rotation is refused while one is in progress; damaged
 * state is an error, never a silent key change.
 */

import assert from 'node:assert/strict'
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createIdentity, KEY_FILE, loadIdentity } from '../../../src/identity/index.ts'
import { verifySuccession } from '../../../src/identity/rotation.ts'
import {
  completeRotationSwap,
  CorruptSuccessionStateError,
  finishRotation,
  loadOldKey,
  NEXT_KEY_FILE,
  OLD_KEY_FILE,
  prepareRotation,
  readRotation,
  rotateIdentity,
  RotationInProgressError,
  SUCCESSION_FILE
} from '../../../src/identity/succession.ts'

const homes: string[] = []
async function home (): Promise<string> {
  const h = await mkdtemp(join(tmpdir(), 'an-succ-'))
  homes.push(h)
  await createIdentity(h)
  return h
}
async function exists (file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false)
}

describe('key rotation on disk', () => {
  after(async () => { await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true }))) })

  it('rotate: new key in place, old key kept for the grace period, a record signed by both', async () => {
    const h = await home()
    const before = (await loadIdentity(h)).peerId.toString()
    const s = await rotateIdentity(h, { graceMs: 60_000 })
    assert.equal(s.state, 'grace')
    assert.equal(s.old, before)
    assert.equal((await loadIdentity(h)).peerId.toString(), s.new)
    assert.equal((await stat(join(h, OLD_KEY_FILE))).mode & 0o777, 0o600)
    assert.equal((await stat(join(h, SUCCESSION_FILE))).mode & 0o777, 0o600)
    assert.equal(await exists(join(h, NEXT_KEY_FILE)), false)
    const v = verifySuccession(s.record)
    assert.deepEqual([v.old, v.new, v.signedBy, v.graceMs], [s.old, s.new, 'both', 60_000])
    assert.ok(await loadOldKey(h) !== undefined)
    await assert.rejects(prepareRotation(h), RotationInProgressError)
    await finishRotation(h)
    assert.equal(await exists(join(h, OLD_KEY_FILE)), false)
    assert.equal(await readRotation(h), undefined)
    // the next rotation starts from the new key
    const again = await rotateIdentity(h)
    assert.equal(again.old, s.new)
  })

  it('killed after prepare, or between the renames, or before the state update: the next load completes it', async () => {
    for (const crash of ['after-prepare', 'between-renames', 'before-state'] as const) {
      const h = await home()
      const p = await prepareRotation(h, { graceMs: 1000 })
      if (crash !== 'after-prepare') await rename(join(h, KEY_FILE), join(h, OLD_KEY_FILE))
      if (crash === 'before-state') await rename(join(h, NEXT_KEY_FILE), join(h, KEY_FILE))
      // loadIdentity completes the swap (state still says prepared)
      const { peerId } = await loadIdentity(h)
      assert.equal(peerId.toString(), p.new, crash)
      assert.equal((await readRotation(h))?.state, 'grace', crash)
      assert.equal(await exists(join(h, NEXT_KEY_FILE)), false, crash)
      assert.ok(await loadOldKey(h) !== undefined, crash)
      assert.equal((await completeRotationSwap(h))?.state, 'grace', `${crash}: idempotent`)
    }
  })

  it('damaged state is refused, and the key is not touched', async () => {
    const h = await home()
    const before = await readFile(join(h, KEY_FILE))
    await prepareRotation(h)
    const text = await readFile(join(h, SUCCESSION_FILE), 'utf8')
    await writeFile(join(h, SUCCESSION_FILE), text.replace(/"graceMs": \d+/, '"graceMs": 1'))
    await assert.rejects(readRotation(h), CorruptSuccessionStateError)
    await assert.rejects(loadIdentity(h), CorruptSuccessionStateError)
    assert.deepEqual(await readFile(join(h, KEY_FILE)), before)
    await writeFile(join(h, SUCCESSION_FILE), '{not json')
    await assert.rejects(readRotation(h), { code: 'CorruptSuccessionState' })
  })
})
