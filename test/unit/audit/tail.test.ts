import assert from 'node:assert/strict'
import { appendFile, open, stat } from 'node:fs/promises'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { AuditInvalidArgumentError, AuditLogNotFoundError, openAuditLog, tailAuditLog } from '../../../src/audit/index.ts'
import { readLines, tempLog, writeRecords } from './helpers.ts'
import type { TempLog } from './helpers.ts'

describe('tailAuditLog', () => {
  let t: TempLog

  beforeEach(async () => { t = await tempLog() })
  afterEach(async () => { await t.cleanup() })

  it('returns the last n records, oldest first, for n below, at and above the count', async () => {
    const records = await writeRecords(t.path, 7)
    assert.deepEqual(await tailAuditLog(t.path, 3), records.slice(4))
    assert.deepEqual(await tailAuditLog(t.path, 1), records.slice(6))
    assert.deepEqual(await tailAuditLog(t.path, 7), records)
    assert.deepEqual(await tailAuditLog(t.path, 100), records)
    assert.deepEqual(await tailAuditLog(t.path, 0), [])
  })

  it('works across chunk boundaries with large records', async () => {
    const log = await openAuditLog({ path: t.path })
    const records = []
    for (let i = 0; i < 40; i++) {
      // ~7 KiB each: several records per 64 KiB chunk, lines straddling chunk ends
      records.push(await log.append('test.big', { i, pad: 'p'.repeat(7000 + i * 7) }))
    }
    await log.close()
    assert.deepEqual(await tailAuditLog(t.path, 25), records.slice(15))
    assert.deepEqual(await tailAuditLog(t.path, 1000), records)
  })

  it('skips a torn last line and damaged lines', async () => {
    const records = await writeRecords(t.path, 4)
    const lines = await readLines(t.path)
    await appendFile(t.path, lines[0]!.slice(0, 30))
    assert.deepEqual(await tailAuditLog(t.path, 2), records.slice(2))
    const log = await openAuditLog({ path: t.path })
    await log.close()
    assert.deepEqual(await tailAuditLog(t.path, 2), records.slice(2))
  })

  it('an empty log has no records; a missing one is an error; n is checked', async () => {
    const log = await openAuditLog({ path: t.path })
    await log.close()
    assert.deepEqual(await tailAuditLog(t.path, 5), [])
    await assert.rejects(tailAuditLog(`${t.path}.nope`, 5), AuditLogNotFoundError)
    await assert.rejects(tailAuditLog(t.path, -1), AuditInvalidArgumentError)
    await assert.rejects(tailAuditLog(t.path, 1.5), AuditInvalidArgumentError)
    await assert.rejects(tailAuditLog(t.path, 1_000_000), AuditInvalidArgumentError)
  })

  it('reads only the end of a 1 GiB log', async () => {
    // a sparse 1 GiB of zeros, then records: reading it whole would take seconds and a GiB of memory
    const handle = await open(t.path, 'w', 0o600)
    await handle.truncate(1024 ** 3)
    await handle.close()
    await appendFile(t.path, '\n')
    const log = await openAuditLog({ path: t.path })
    const records = []
    for (let i = 0; i < 5; i++) {
      records.push(await log.append('test.end', { i }))
    }
    await log.close()
    assert.ok((await stat(t.path)).size > 1024 ** 3)

    const rssBefore = process.memoryUsage().rss
    const started = performance.now()
    const tail = await tailAuditLog(t.path, 3)
    const elapsed = performance.now() - started
    assert.deepEqual(tail, records.slice(2))
    assert.ok(elapsed < 500, `tail took ${elapsed} ms`)
    assert.ok(process.memoryUsage().rss - rssBefore < 64 * 1024 * 1024, 'tail used more than 64 MiB')
  })

  it('open reads only the end of a damaged 1 GiB log', async () => {
    const handle = await open(t.path, 'w', 0o600)
    await handle.truncate(1024 ** 3)
    await handle.close()
    await appendFile(t.path, '\n{"not":"a record"}\n')
    const started = performance.now()
    const log = await openAuditLog({ path: t.path })
    const elapsed = performance.now() - started
    const record = await log.append('test.after', {})
    await log.close()
    assert.equal(record.seq, 0)
    assert.ok(log.recovery.warnings.length > 0)
    assert.ok(elapsed < 500, `open took ${elapsed} ms`)
  })
})
