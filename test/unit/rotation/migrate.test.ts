/**
 * The migrate step of a key rotation: after the keys are swapped (by
 * `loadIdentity`, say, after a crash), `migrateHome` moves what the home
 * keeps under the node key (group state set aside, baseline signed again)
 * and records it; it is idempotent, so a process killed in the middle
 * completes it at the next start; `finishRotation` deletes the old ID's
 * group state with the old key.
 */

import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { createIdentity, loadIdentity } from '../../../src/identity/index.ts'
import { OLD_KEY_FILE, prepareRotation, readRotation } from '../../../src/identity/succession.ts'
import { STATE_DIR } from '../../../src/groups/constants.ts'
import { BASELINE_FILE } from '../../../src/posture/constants.ts'
import { checkBaseline, encodeBaseline } from '../../../src/posture/baseline.ts'
import { finishRotation, migrateHome, OLD_GROUPS_DIR, rotateHome } from '../../../src/rotation/index.ts'

const homes: string[] = []
async function exists (file: string): Promise<boolean> {
  return stat(file).then(() => true, () => false)
}

describe('rotation: the migrate step', () => {
  after(async () => { await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true }))) })

  it('killed after the swap, before the migration: the next migrateHome completes it, once', async () => {
    const h = await mkdtemp(join(tmpdir(), 'an-migr-'))
    homes.push(h)
    const { privateKey: oldKey } = await createIdentity(h)
    await mkdir(join(h, STATE_DIR))
    await writeFile(join(h, STATE_DIR, 'g1.bin'), 'old membership')
    const posture = { settings: { 'trust.strict': true }, trustedPeers: [], services: { public: [], protected: [], card: [] }, policies: { guard: null } }
    await writeFile(join(h, BASELINE_FILE), encodeBaseline(posture, oldKey, 1000))
    const prepared = await prepareRotation(h, { graceMs: 60_000 })
    // the swap ran (any loadIdentity completes it) and the process died there
    assert.equal((await loadIdentity(h)).peerId.toString(), prepared.new)
    assert.equal((await readRotation(h))?.migrated, undefined)
    assert.ok(await exists(join(h, STATE_DIR)), 'not migrated yet')

    const migrated = await migrateHome(h)
    assert.equal(migrated?.migrated, true)
    assert.equal((await readRotation(h))?.migrated, true, 'recorded')
    assert.equal(await exists(join(h, STATE_DIR)), false, 'the old membership is set aside')
    assert.equal(await readFile(join(h, OLD_GROUPS_DIR, 'g1.bin'), 'utf8'), 'old membership')
    const check = checkBaseline(await readFile(join(h, BASELINE_FILE), 'utf8'), prepared.new)
    assert.equal(check.status, 'intact', 'the baseline is signed by the new key, unchanged')
    assert.deepEqual(check.baseline?.posture, posture)

    // idempotent: a second run (the next start) changes nothing
    await mkdir(join(h, STATE_DIR))
    assert.equal((await migrateHome(h))?.migrated, true)
    assert.ok(await exists(join(h, STATE_DIR)), 'new group state after the migration is left alone')

    await finishRotation(h)
    assert.equal(await exists(join(h, OLD_GROUPS_DIR)), false)
    assert.equal(await exists(join(h, OLD_KEY_FILE)), false)
    assert.equal(await readRotation(h), undefined)
    assert.equal(await migrateHome(h), undefined, 'nothing to do without a rotation')
  })

  it('rotateHome runs every step', async () => {
    const h = await mkdtemp(join(tmpdir(), 'an-migr-'))
    homes.push(h)
    await createIdentity(h)
    const s = await rotateHome(h, { graceMs: 1000 })
    assert.deepEqual([s.state, s.migrated], ['grace', true])
    assert.equal((await loadIdentity(h)).peerId.toString(), s.new)
  })
})
