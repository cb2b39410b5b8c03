import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { appendFile, chmod, mkdir, readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import {
  AuditDataTooLargeError,
  AuditInvalidArgumentError,
  AuditIOError,
  AuditLogClosedError,
  AuditLogNotFoundError,
  openAuditLog,
  verifyAuditLog,
  ZERO_HASH
} from '../../../src/audit/index.ts'
import { readLines, tempLog, writeLines, writeRecords } from './helpers.ts'
import type { TempLog } from './helpers.ts'

/** An independent implementation of the documented format */
function sortedJson (value: unknown): string {
  if (value === null || typeof value !== 'object') {
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) {
    return `[${value.map(sortedJson).join(',')}]`
  }
  const object = value as Record<string, unknown>
  return `{${Object.keys(object).sort().map(key => `${JSON.stringify(key)}:${sortedJson(object[key])}`).join(',')}}`
}

function expectedLine (seq: number, time: string, type: string, data: unknown, prev: string): { line: string, hash: string } {
  const canonical = `{"seq":${seq},"time":${JSON.stringify(time)},"type":${JSON.stringify(type)},"data":${sortedJson(data)},"prev":"${prev}"}`
  const hash = createHash('sha256').update(Buffer.from(canonical, 'utf8')).digest('hex')
  return { line: `${canonical.slice(0, -1)},"hash":"${hash}"}`, hash }
}

describe('audit log', () => {
  let t: TempLog

  beforeEach(async () => { t = await tempLog() })
  afterEach(async () => { await t.cleanup() })

  it('appends records in the documented format and verifies them', async () => {
    const log = await openAuditLog({ path: t.path })
    assert.deepEqual(log.recovery, { truncatedBytes: 0, warnings: [] })
    const data = { peer: '12D3KooWabc', nested: { z: 1, a: [true, null, 'é\u001f'] }, 10: 'x' }
    const first = await log.append('trust.approved', data)
    const second = await log.append('token.issued', { services: ['chat'] })
    await log.close()

    assert.equal(first.seq, 0)
    assert.equal(first.prev, ZERO_HASH)
    assert.equal(second.seq, 1)
    assert.equal(second.prev, first.hash)
    assert.match(first.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    assert.deepEqual(first.data, JSON.parse(JSON.stringify(data)))

    const lines = await readLines(t.path)
    assert.equal(lines.length, 2)
    const e0 = expectedLine(0, first.time, 'trust.approved', data, ZERO_HASH)
    assert.equal(lines[0], e0.line)
    assert.equal(first.hash, e0.hash)
    const e1 = expectedLine(1, second.time, 'token.issued', { services: ['chat'] }, e0.hash)
    assert.equal(lines[1], e1.line)
    assert.equal(await readFile(t.head, 'utf8'), `{"seq":1,"hash":"${e1.hash}"}\n`)

    const report = await verifyAuditLog(t.path)
    assert.deepEqual(report, { ok: true, records: 2, last: { seq: 1, hash: e1.hash } })
  })

  it('continues the chain across close and reopen', async () => {
    await writeRecords(t.path, 3)
    const more = await writeRecords(t.path, 2, 3)
    assert.deepEqual(more.map(r => r.seq), [3, 4])
    assert.deepEqual(await verifyAuditLog(t.path), { ok: true, records: 5, last: { seq: 4, hash: more[1]?.hash } })
  })

  it('an empty new log verifies', async () => {
    const log = await openAuditLog({ path: t.path })
    await log.close()
    assert.deepEqual(await verifyAuditLog(t.path), { ok: true, records: 0 })
    assert.equal((await stat(t.path)).size, 0)
  })

  it('creates the log and head with mode 0600, and tightens a looser existing log', async () => {
    const oldUmask = process.umask(0)
    try {
      await writeRecords(t.path, 1)
    } finally {
      process.umask(oldUmask)
    }
    assert.equal((await stat(t.path)).mode & 0o777, 0o600)
    assert.equal((await stat(t.head)).mode & 0o777, 0o600)
    await chmod(t.path, 0o644)
    const log = await openAuditLog({ path: t.path })
    await log.close()
    assert.equal((await stat(t.path)).mode & 0o777, 0o600)
  })

  it('creates a missing home folder with mode 0700', async () => {
    const path = join(t.dir, 'home', 'audit.log')
    await writeRecords(path, 1)
    assert.equal((await stat(join(t.dir, 'home'))).mode & 0o777, 0o700)
    assert.equal((await verifyAuditLog(path)).ok, true)
  })

  it('keeps call order and the chain under concurrent appends', async () => {
    const log = await openAuditLog({ path: t.path })
    const results = await Promise.all(Array.from({ length: 200 }, async (_, i) => await log.append('test.concurrent', { i })))
    await log.close()
    results.forEach((record, i) => {
      assert.equal(record.seq, i)
      assert.deepEqual(record.data, { i })
      if (i > 0) {
        assert.equal(record.prev, results[i - 1]?.hash)
      }
    })
    const lines = await readLines(t.path)
    assert.deepEqual(lines.map(line => (JSON.parse(line) as { data: { i: number } }).data.i), results.map((_, i) => i))
    assert.deepEqual(await verifyAuditLog(t.path), { ok: true, records: 200, last: { seq: 199, hash: results[199]?.hash } })
  })

  it('refuses oversized or invalid data and bad types with typed errors, writing nothing', async () => {
    const log = await openAuditLog({ path: t.path, maxDataBytes: 100 })
    const fits = { s: 'x'.repeat(100 - '{"s":""}'.length) }
    await log.append('test.ok', fits)
    await assert.rejects(log.append('test.big', { s: 'x'.repeat(101) }), AuditDataTooLargeError)
    // multi-byte characters count as UTF-8 bytes
    await assert.rejects(log.append('test.big', { s: 'é'.repeat(50) }), (err: Error) => err instanceof AuditDataTooLargeError && err.code === 'AuditDataTooLarge')
    await assert.rejects(log.append('test.bad', [1, 2]), AuditInvalidArgumentError)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    await assert.rejects(log.append('test.bad', cyclic), AuditInvalidArgumentError)
    await assert.rejects(log.append('', {}), (err: Error) => err instanceof AuditInvalidArgumentError && err.code === 'AuditInvalidArgument')
    await assert.rejects(log.append('has space', {}), AuditInvalidArgumentError)
    await assert.rejects(log.append('x'.repeat(65), {}), AuditInvalidArgumentError)
    await log.append('test.ok', { at: new Date(0), gone: undefined })
    await log.close()
    const lines = await readLines(t.path)
    assert.equal(lines.length, 2)
    assert.match(lines[1] ?? '', /"data":\{"at":"1970-01-01T00:00:00.000Z"\}/)
    assert.equal((await verifyAuditLog(t.path)).records, 2)
    await assert.rejects(openAuditLog({ path: t.path, maxDataBytes: 1_000_000 }), AuditInvalidArgumentError)
  })

  it('the default limit is 8 KiB', async () => {
    const log = await openAuditLog({ path: t.path })
    await log.append('test.ok', { s: 'x'.repeat(8192 - 8) })
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 40; i++) {
      deep = { d: deep }
    }
    await assert.rejects(log.append('test.deep', deep), (err: Error) => err instanceof AuditInvalidArgumentError && /nested deeper than 32/.test(err.message))
    await assert.rejects(log.append('test.big', { s: 'x'.repeat(8192 - 7) }), AuditDataTooLargeError)
    await log.close()
  })

  it('rejects appends after close; close waits for pending appends', async () => {
    const log = await openAuditLog({ path: t.path })
    const pending = [log.append('test.a', {}), log.append('test.b', {})]
    await log.close()
    assert.deepEqual((await Promise.all(pending)).map(r => r.seq), [0, 1])
    await assert.rejects(log.append('test.c', {}), AuditLogClosedError)
    await log.close()
    assert.equal((await verifyAuditLog(t.path)).records, 2)
  })

  it('verify is read-only and consistent while appends are running', async () => {
    const log = await openAuditLog({ path: t.path })
    let writing = true
    const writer = (async () => {
      let i = 0
      while (writing) {
        await log.append('test.live', { i: i++, pad: 'z'.repeat(i % 300) })
      }
    })()
    let checks = 0
    const until = Date.now() + 400
    while (Date.now() < until) {
      const report = await verifyAuditLog(t.path)
      assert.equal(report.ok, true, JSON.stringify(report.firstBad))
      checks++
    }
    writing = false
    await writer
    await log.close()
    assert.ok(checks > 1)
    assert.equal((await verifyAuditLog(t.path)).torn, undefined)
  })

  it('verify of a missing log throws AuditLogNotFoundError', async () => {
    await assert.rejects(verifyAuditLog(t.path), AuditLogNotFoundError)
  })

  it('a failed head update rejects the append; the next append repairs the head first', async () => {
    const log = await openAuditLog({ path: t.path })
    await log.append('test.a', {})
    // make replacing the head impossible: a non-empty directory in its place
    await unlink(t.head)
    await mkdir(join(t.head, 'block'), { recursive: true })
    await assert.rejects(log.append('test.b', {}), AuditIOError)
    await assert.rejects(log.append('test.c', {}), AuditIOError)
    await import('node:fs/promises').then(async fs => { await fs.rm(t.head, { recursive: true }) })
    const d = await log.append('test.d', {})
    await log.close()
    // test.b reached the log (not acknowledged), test.c did not: the head must name seq 1 before seq 2 is written
    assert.equal(d.seq, 2)
    assert.deepEqual((await readLines(t.path)).map(line => (JSON.parse(line) as { type: string }).type), ['test.a', 'test.b', 'test.d'])
    assert.deepEqual(await verifyAuditLog(t.path), { ok: true, records: 3, last: { seq: 2, hash: d.hash } })
  })

  describe('damage', () => {
    it('detects a one-byte change in data, in a hash and in seq, naming the line', async () => {
      await writeRecords(t.path, 6)
      const original = await readLines(t.path)
      const cases: Array<{ line: number, edit: (line: string) => string, reason: RegExp }> = [
        { line: 3, edit: line => line.replace('"note":"record 2"', '"note":"record 7"'), reason: /hash/ },
        { line: 4, edit: line => line.replace(/"hash":"(.)/, (_, c: string) => `"hash":"${c === 'a' ? 'b' : 'a'}`), reason: /hash/ },
        { line: 5, edit: line => line.replace('"seq":4', '"seq":5'), reason: /hash/ },
        { line: 2, edit: line => line.replace('"i":1', '"i":9'), reason: /hash/ },
        { line: 6, edit: line => line.replace('"prev":"', '"prev":"0').replace(/.(","hash")/, '$1'), reason: /prev|hash/ }
      ]
      for (const c of cases) {
        const lines = [...original]
        const edited = c.edit(lines[c.line - 1] ?? '')
        assert.notEqual(edited, lines[c.line - 1])
        assert.equal(edited.length, lines[c.line - 1]?.length, 'one byte changed, none added')
        lines[c.line - 1] = edited
        await writeLines(t.path, lines)
        const report = await verifyAuditLog(t.path)
        assert.equal(report.ok, false)
        assert.equal(report.firstBad?.line, c.line)
        assert.equal(report.records, c.line - 1)
        assert.match(report.firstBad?.reason ?? '', c.reason)
      }
    })

    it('detects a change to any single byte of the log, at the right line', async () => {
      await writeRecords(t.path, 3)
      const original = await readFile(t.path)
      const lineOf = (offset: number): number => original.subarray(0, offset).filter(b => b === 0x0a).length + 1
      for (let offset = 0; offset < original.length; offset++) {
        for (const replacement of [original[offset]! ^ 0x01, 0x20, 0x0a]) {
          if (replacement === original[offset]) {
            continue
          }
          const copy = Buffer.from(original)
          copy[offset] = replacement
          await writeFile(t.path, copy)
          const report = await verifyAuditLog(t.path)
          assert.equal(report.ok, false, `byte ${offset} changed to ${replacement} went unnoticed`)
          assert.equal(report.firstBad?.line, lineOf(offset), `byte ${offset} changed to ${replacement}: ${JSON.stringify(report)}`)
        }
      }
    })

    it('detects an escape rewritten to an equivalent one (canonical form)', async () => {
      const log = await openAuditLog({ path: t.path })
      await log.append('test.escape', { s: 'a\u001fb' })
      await log.append('test.next', {})
      await log.close()
      const lines = await readLines(t.path)
      assert.ok(lines[0]?.includes('\\u001f'))
      lines[0] = lines[0]!.replace('\\u001f', '\\u001F')
      await writeLines(t.path, lines)
      const report = await verifyAuditLog(t.path)
      assert.equal(report.ok, false)
      assert.deepEqual(report.firstBad, { line: 1, seq: 0, reason: 'line is not in canonical form' })
    })

    it('detects a deleted middle record', async () => {
      await writeRecords(t.path, 6)
      const lines = await readLines(t.path)
      lines.splice(2, 1)
      await writeLines(t.path, lines)
      const report = await verifyAuditLog(t.path)
      assert.equal(report.ok, false)
      assert.equal(report.records, 2)
      assert.deepEqual(report.firstBad, { line: 3, seq: 3, reason: 'seq 3 where 2 was expected: records are missing or out of order' })
    })

    it('detects a deleted first record', async () => {
      await writeRecords(t.path, 3)
      const lines = await readLines(t.path)
      await writeLines(t.path, lines.slice(1))
      const report = await verifyAuditLog(t.path)
      assert.equal(report.firstBad?.line, 1)
      assert.equal(report.firstBad?.seq, 1)
    })

    it('detects deleted last records through the head', async () => {
      await writeRecords(t.path, 6)
      const lines = await readLines(t.path)
      await writeLines(t.path, lines.slice(0, 5))
      const one = await verifyAuditLog(t.path)
      assert.equal(one.ok, false)
      assert.equal(one.records, 5)
      assert.equal(one.firstBad?.line, 6)
      assert.equal(one.firstBad?.seq, 5)
      assert.match(one.firstBad?.reason ?? '', /ends at seq 4 but .*audit\.head records seq 5: 1 record was removed from the end/)

      await writeLines(t.path, lines.slice(0, 2))
      const three = await verifyAuditLog(t.path)
      assert.deepEqual(three.firstBad && { line: three.firstBad.line, seq: three.firstBad.seq }, { line: 3, seq: 2 })

      await writeFile(t.path, '')
      const all = await verifyAuditLog(t.path)
      assert.deepEqual(all.firstBad && { line: all.firstBad.line, seq: all.firstBad.seq }, { line: 1, seq: 0 })

      await unlink(t.path)
      assert.equal((await verifyAuditLog(t.path)).firstBad?.seq, 0, 'a deleted log whose head remains is damage')
    })

    it('after records are deleted from the end, appends continue from the head and the gap stays visible', async () => {
      const records = await writeRecords(t.path, 6)
      const lines = await readLines(t.path)
      await writeLines(t.path, lines.slice(0, 4))
      const log = await openAuditLog({ path: t.path })
      assert.match(log.recovery.warnings.join('\n'), /removed from the end/)
      const next = await log.append('test.after', {})
      await log.close()
      assert.equal(next.seq, 6)
      assert.equal(next.prev, records[5]?.hash)
      const report = await verifyAuditLog(t.path)
      assert.equal(report.ok, false)
      assert.equal(report.firstBad?.line, 5)
      assert.equal(report.firstBad?.seq, 6)
    })

    it('detects two swapped records', async () => {
      await writeRecords(t.path, 6)
      const lines = await readLines(t.path)
      const [a, b] = [lines[3]!, lines[4]!]
      lines[3] = b
      lines[4] = a
      await writeLines(t.path, lines)
      const report = await verifyAuditLog(t.path)
      assert.equal(report.ok, false)
      assert.equal(report.records, 3)
      assert.equal(report.firstBad?.line, 4)
      assert.equal(report.firstBad?.seq, 4)
    })

    it('detects a rewritten last record even when its own hash is recomputed', async () => {
      await writeRecords(t.path, 3)
      const lines = await readLines(t.path)
      const last = JSON.parse(lines[2]!) as { seq: number, time: string, type: string, data: unknown, prev: string }
      const forged = expectedLine(last.seq, last.time, last.type, { i: 99, note: 'forged' }, last.prev)
      lines[2] = forged.line
      await writeLines(t.path, lines)
      const report = await verifyAuditLog(t.path)
      assert.equal(report.ok, false)
      assert.equal(report.firstBad?.line, 3)
      assert.match(report.firstBad?.reason ?? '', /audit\.head/)
    })

    it('a missing head is damage; open leaves it missing and keeps appending', async () => {
      await writeRecords(t.path, 3)
      await unlink(t.head)
      const before = await verifyAuditLog(t.path)
      assert.equal(before.ok, false)
      assert.equal(before.firstBad?.line, 4)
      assert.match(before.firstBad?.reason ?? '', /missing/)
      const log = await openAuditLog({ path: t.path })
      assert.match(log.recovery.warnings.join('\n'), /missing/)
      const record = await log.append('test.more', {})
      await log.close()
      assert.equal(record.seq, 3)
      await assert.rejects(stat(t.head), { code: 'ENOENT' })
      const after = await verifyAuditLog(t.path)
      assert.equal(after.ok, false)
      assert.equal(after.records, 4)
      assert.match(after.firstBad?.reason ?? '', /missing/)
    })

    it('an unreadable head is damage', async () => {
      await writeRecords(t.path, 2)
      await writeFile(t.head, '{"seq":1,"hash":"zz"}\n')
      const report = await verifyAuditLog(t.path)
      assert.equal(report.ok, false)
      assert.equal(report.firstBad?.line, 3)
    })

    it('a damaged middle line is never repaired: open succeeds, appends continue, verify keeps reporting it', async () => {
      await writeRecords(t.path, 5)
      const lines = await readLines(t.path)
      lines[1] = 'garbage'
      await writeLines(t.path, lines)
      const log = await openAuditLog({ path: t.path })
      assert.equal(log.recovery.truncatedBytes, 0)
      const next = await log.append('test.after', {})
      await log.close()
      assert.equal(next.seq, 5)
      const report = await verifyAuditLog(t.path)
      assert.deepEqual(report.firstBad, { line: 2, reason: 'line is not valid JSON (UTF-8)' })
      assert.equal((await readLines(t.path))[1], 'garbage')
    })

    it('a damaged last line that was acknowledged is not cut off: the chain continues from the head', async () => {
      const records = await writeRecords(t.path, 4)
      const lines = await readLines(t.path)
      lines[3] = 'x'.repeat(lines[3]!.length)
      await writeLines(t.path, lines)
      const report = await verifyAuditLog(t.path)
      assert.equal(report.torn, undefined)
      assert.equal(report.firstBad?.line, 4)
      const log = await openAuditLog({ path: t.path })
      assert.equal(log.recovery.truncatedBytes, 0)
      assert.match(log.recovery.warnings.join('\n'), /damaged/)
      const next = await log.append('test.after', {})
      await log.close()
      assert.equal(next.seq, 4)
      assert.equal(next.prev, records[3]?.hash)
      assert.equal((await readLines(t.path))[3], lines[3])
      assert.equal((await verifyAuditLog(t.path)).firstBad?.line, 4)
    })
  })

  describe('crash repair', () => {
    it('cuts off a torn last line (no newline) on open; the chain continues and verifies', async () => {
      const records = await writeRecords(t.path, 5)
      const intact = await readFile(t.path)
      // what a crash in the middle of writing record 5 leaves: a prefix of its line
      const log0 = await openAuditLog({ path: join(t.dir, 'other.log') })
      await writeRecords(join(t.dir, 'other.log'), 6)
      await log0.close()
      const torn = (await readLines(join(t.dir, 'other.log')))[5]!.slice(0, 57)
      await appendFile(t.path, torn)

      const before = await verifyAuditLog(t.path)
      assert.deepEqual(before, { ok: true, records: 5, last: { seq: 4, hash: records[4]?.hash }, torn: { line: 6, bytes: 57 } })

      const log = await openAuditLog({ path: t.path })
      assert.equal(log.recovery.truncatedBytes, 57)
      assert.deepEqual(log.recovery.warnings, [])
      assert.deepEqual(await readFile(t.path), intact)
      const next = await log.append('test.after', { after: true })
      await log.close()
      assert.equal(next.seq, 5)
      assert.equal(next.prev, records[4]?.hash)
      assert.deepEqual(await verifyAuditLog(t.path), { ok: true, records: 6, last: { seq: 5, hash: next.hash } })
    })

    it('cuts off an unparseable last line after the head (power loss), but only that', async () => {
      await writeRecords(t.path, 3)
      const intact = await readFile(t.path)
      await appendFile(t.path, Buffer.concat([Buffer.alloc(40), Buffer.from('"prev":"00","hash":"11"}\n')]))
      const before = await verifyAuditLog(t.path)
      assert.equal(before.ok, true)
      assert.equal(before.torn?.line, 4)
      const log = await openAuditLog({ path: t.path })
      assert.equal(log.recovery.truncatedBytes, 65)
      await log.close()
      assert.deepEqual(await readFile(t.path), intact)
    })

    it('accepts a head one record behind (crash between the log sync and the head update)', async () => {
      const records = await writeRecords(t.path, 4)
      await writeFile(t.head, `${JSON.stringify({ seq: 2, hash: records[2]?.hash })}\n`)
      assert.deepEqual(await verifyAuditLog(t.path), { ok: true, records: 4, last: { seq: 3, hash: records[3]?.hash } })
      const log = await openAuditLog({ path: t.path })
      assert.deepEqual(log.recovery, { truncatedBytes: 0, warnings: [] })
      const next = await log.append('test.after', {})
      await log.close()
      assert.equal(next.seq, 4)
      assert.equal(next.prev, records[3]?.hash)
      assert.equal(JSON.parse(await readFile(t.head, 'utf8')).seq, 4)
      assert.equal((await verifyAuditLog(t.path)).ok, true)
    })

    it('a crash before the first record leaves a log that opens and verifies', async () => {
      const log = await openAuditLog({ path: t.path })
      await log.close()
      await appendFile(t.path, '{"seq":0,"ti')
      assert.equal((await verifyAuditLog(t.path)).ok, true)
      const again = await openAuditLog({ path: t.path })
      const first = await again.append('test.first', {})
      await again.close()
      assert.equal(first.seq, 0)
      assert.equal((await verifyAuditLog(t.path)).records, 1)
    })

    it('terminates, rather than cuts, an over-long unterminated tail that cannot be a torn record', async () => {
      await writeRecords(t.path, 2)
      await appendFile(t.path, 'y'.repeat(70 * 1024))
      const log = await openAuditLog({ path: t.path })
      assert.equal(log.recovery.truncatedBytes, 0)
      assert.equal(log.recovery.warnings.length, 1)
      const next = await log.append('test.after', {})
      await log.close()
      assert.equal(next.seq, 2)
      const report = await verifyAuditLog(t.path)
      assert.equal(report.firstBad?.line, 3)
      assert.equal((await readLines(t.path)).length, 4)
    })

    it('never crashes on arbitrary garbage: open succeeds and verify reports', async () => {
      await writeFile(t.path, Buffer.from([0xff, 0xfe, 0x0a, 0x7b, 0x0a, 0x00, 0x0a]))
      await writeFile(t.head, 'not json')
      const log = await openAuditLog({ path: t.path })
      const record = await log.append('test.after', {})
      await log.close()
      assert.equal(record.seq, 0)
      assert.equal((await verifyAuditLog(t.path)).firstBad?.line, 1)
      await truncate(t.path, 0)
      assert.equal((await verifyAuditLog(t.path)).ok, false, 'the unreadable head is still reported')
    })
  })
})
