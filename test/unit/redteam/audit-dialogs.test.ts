import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { auditDialogFiles, InvalidDialogLogError } from '../../../src/redteam/index.ts'
import { DIALOG_CANARIES, generateDialogLog } from '../../fixtures/dialogs.ts'
import { runCli } from '../../helpers/cli.ts'

describe('agentnet audit-dialogs', () => {
  let dir: string
  before(async () => { dir = await mkdtemp(join(tmpdir(), 'an-dlg-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it('finds every planted leak in a 10,000-message log, by label, sender and recipient, and nothing else', async () => {
    const file = join(dir, 'leaky.jsonl')
    const log = await generateDialogLog(file, 10_000, 37)
    const audit = await auditDialogFiles([file], { canaries: DIALOG_CANARIES })
    assert.equal(audit.messages, 10_000)
    assert.equal(log.planted.size, 270)
    assert.deepEqual(audit.findings.map(f => f.line), [...log.planted.keys()])
    for (const f of audit.findings) {
      const label = log.planted.get(f.line)!
      assert.ok(f.leaks.some(l => l.label === label), `line ${f.line}: ${label} not in ${JSON.stringify(f.leaks)}`)
      assert.notEqual(f.sender, f.recipient)
    }
    assert.equal(audit.leakingMessages, 270)
    assert.ok(audit.flows.length > 0 && audit.flows.every(fl => fl.messages > 0 && fl.labels.length > 0))
  })

  it('worker threads find exactly what the in-thread audit finds', async () => {
    const file = join(dir, 'leaky.jsonl')
    const [here, workers] = await Promise.all([
      auditDialogFiles([file], { canaries: DIALOG_CANARIES, workers: 0 }),
      auditDialogFiles([file], { canaries: DIALOG_CANARIES, workers: 2 })
    ])
    assert.equal(here.leakingMessages, 270)
    assert.deepEqual(workers.findings, here.findings)
    assert.deepEqual(workers.byLabel, here.byLabel)
  })

  it('reports nothing in a clean log', async () => {
    const file = join(dir, 'clean.jsonl')
    await generateDialogLog(file, 10_000, 0)
    const audit = await auditDialogFiles([file], { canaries: DIALOG_CANARIES })
    assert.equal(audit.messages, 10_000)
    assert.deepEqual(audit.findings, [])
  })

  it('does not attribute a value split over two messages to either', async () => {
    const file = join(dir, 'split.jsonl')
    await writeFile(file, [
      JSON.stringify({ sender: 'a', recipient: 'b', text: 'first half 4539 1488' }),
      JSON.stringify({ sender: 'a', recipient: 'b', text: '0343 6467 second half' })
    ].join('\n') + '\n')
    const audit = await auditDialogFiles([file], { canaries: DIALOG_CANARIES })
    // each half alone holds 8 digits of the card: both leak, each on its own, nothing across the boundary
    assert.deepEqual(audit.findings.map(f => [f.line, f.leaks.map(l => l.label)]), [[1, ['card']], [2, ['card']]])
    const none = join(dir, 'split4.jsonl')
    await writeFile(none, [
      JSON.stringify({ sender: 'a', recipient: 'b', text: 'ends with 4539' }),
      JSON.stringify({ sender: 'a', recipient: 'b', text: '1488 starts this' })
    ].join('\n') + '\n')
    assert.deepEqual((await auditDialogFiles([none], { canaries: DIALOG_CANARIES })).findings, [])
  })

  it('names a malformed line', async () => {
    const file = join(dir, 'bad.jsonl')
    await writeFile(file, '{"sender":"a","recipient":"b","text":"ok"}\n{"sender":"a","text":"no recipient"}\n')
    await assert.rejects(auditDialogFiles([file]), (err: unknown) => err instanceof InvalidDialogLogError && /bad\.jsonl:2: a message needs string fields/.test(err.message))
  })

  it('the CLI prints progress on long files, reports to whom, never the values, and exits 1', async () => {
    const file = join(dir, 'cli.jsonl')
    await generateDialogLog(file, 10_000, 37)
    const canaries = join(dir, 'canaries.json')
    await writeFile(canaries, JSON.stringify(DIALOG_CANARIES))
    const res = await runCli(['audit-dialogs', file, '--canary-file', canaries, '--json'], { env: { AGENTNET_AUDIT_PROGRESS_BYTES: '262144' }, timeoutMs: 60_000 })
    assert.equal(res.code, 1, res.stderr)
    const json = JSON.parse(res.stdout)
    assert.equal(json.leakingMessages, 270)
    assert.match(res.stderr, /cli\.jsonl: [\d.]+ MiB, \d+ messages, \d+ leaking/)
    for (const c of DIALOG_CANARIES) {
      assert.ok(!(res.stdout + res.stderr).includes(c.value))
      assert.ok(!(res.stdout + res.stderr).includes(c.value.replace(/\W/g, '')))
    }
    const human = await runCli(['audit-dialogs', join(dir, 'clean.jsonl'), '--canary-file', canaries])
    assert.equal(human.code, 0, human.stderr)
    assert.match(human.stdout, /10000 messages \([\d.]+ MiB\) in 1 file\(s\): 0 leaking/)
  })
})
