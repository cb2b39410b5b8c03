import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { CorruptGuardStoreError, createGuard, GuardNotStartedError, InvalidGuardInputError } from '../../../src/guard/index.ts'

const dirs: string[] = []
async function tmp (): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'guard-'))
  dirs.push(d)
  return d
}
after(async () => { for (const d of dirs) await rm(d, { recursive: true, force: true }) })

describe('guard persistence', () => {
  it('persist: true needs persistPath and a started guard', async () => {
    assert.throws(() => createGuard().protect({ value: 'alpha value', label: 'a', category: 'x', persist: true }), InvalidGuardInputError)
    const g = createGuard({ persistPath: join(await tmp(), 'guard.json') })
    assert.throws(() => g.protect({ value: 'alpha value', label: 'a', category: 'x', persist: true }), GuardNotStartedError)
  })

  it('writes only persist: true values, 0600, and reloads them', async () => {
    const file = join(await tmp(), 'guard.json')
    const g = createGuard({ persistPath: file })
    await g.start()
    const kept = g.protect({ value: 'DE89 3704 0044 0532 0130 00', label: 'iban', category: 'finance/iban', scope: 's', persist: true })
    g.protect({ value: 'memory only value', label: 'mem', category: 'x' })
    await g.flush()
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    const text = await readFile(file, 'utf8')
    assert.ok(!text.includes('memory only value'))
    await g.stop()

    const h = createGuard({ persistPath: file })
    await h.start()
    assert.deepEqual(h.list(), [{ id: kept.id, label: 'iban', category: 'finance/iban', scope: 's', persist: true }])
    assert.equal((await h.check({ peerNames: ['p'], body: 'iban de89370400440532013000' })).action, 'block')
    assert.deepEqual(h.unprotect({ scope: 's' }), { removed: 1 })
    await h.flush()
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')).values, [])
    await h.stop()
  })

  it('drops persisted values that expired while stopped', async () => {
    const file = join(await tmp(), 'guard.json')
    let t = 1000
    const g = createGuard({ persistPath: file, now: () => t })
    await g.start()
    g.protect({ value: 'alpha value', label: 'a', category: 'x', ttlMs: 500, persist: true })
    await g.stop()
    t = 2000
    const h = createGuard({ persistPath: file, now: () => t })
    await h.start()
    assert.deepEqual(h.list(), [])
    await h.stop()
  })

  it('a corrupt store fails start with a typed error and is never overwritten', async () => {
    const file = join(await tmp(), 'guard.json')
    const junk = '{"version": 1, "values": [{"id": 5, "value": "4111111111111111"}]}'
    await writeFile(file, junk, { mode: 0o600 })
    const g = createGuard({ persistPath: file })
    await assert.rejects(g.start(), (err: Error) => {
      assert.ok(err instanceof CorruptGuardStoreError)
      assert.equal(err.code, 'CorruptGuardStore')
      assert.ok(!err.message.includes('4111111111111111'))
      return true
    })
    assert.throws(() => g.protect({ value: 'alpha value', label: 'a', category: 'x', persist: true }), GuardNotStartedError)
    g.protect({ value: 'bravo value', label: 'b', category: 'x' })
    await g.flush()
    assert.equal(await readFile(file, 'utf8'), junk)
    await writeFile(file, 'not json', { mode: 0o600 })
    await assert.rejects(createGuard({ persistPath: file }).start(), CorruptGuardStoreError)
  })
})
