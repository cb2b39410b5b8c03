import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { openAuditLog, verifyAuditLog } from '../../src/audit/index.ts'
import type { AuditRecord } from '../../src/audit/index.ts'

const WRITER = fileURLToPath(new URL('../fixtures/audit-writer.ts', import.meta.url))
const RUNS = 20
const IN_FLIGHT = 4

interface RunResult {
  acked: Map<number, number>
  ready: boolean
}

/** Start the writer, SIGKILL it `delayMs` after it has opened the log (or after spawn if `early`) */
async function runAndKill (path: string, run: number, delayMs: number, early: boolean): Promise<RunResult> {
  const child = spawn(process.execPath, [WRITER, path, String(run)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const acked = new Map<number, number>()
  let ready = false
  let buffered = ''
  let stderr = ''
  let timer: NodeJS.Timeout | undefined
  const kill = (): void => { child.kill('SIGKILL') }
  if (early) {
    timer = setTimeout(kill, delayMs)
  }
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk
    let newline
    while ((newline = buffered.indexOf('\n')) !== -1) {
      const line = buffered.slice(0, newline)
      buffered = buffered.slice(newline + 1)
      if (line.startsWith('ready ')) {
        ready = true
        const recovery = JSON.parse(line.slice(6)) as { warnings: string[] }
        assert.deepEqual(recovery.warnings, [], `run ${run}: open found damage`)
        if (!early) {
          timer = setTimeout(kill, delayMs)
        }
        continue
      }
      const [seq, i] = line.split(' ').map(Number)
      assert.ok(Number.isSafeInteger(seq) && Number.isSafeInteger(i), `bad writer output ${JSON.stringify(line)}`)
      acked.set(seq!, i!)
    }
  })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => child.on('close', (c, s) => { resolve([c, s]) }))
  clearTimeout(timer)
  assert.equal(signal, 'SIGKILL', `run ${run}: writer exited by itself (code ${code}): ${stderr}`)
  return { acked, ready }
}

async function readRecords (path: string): Promise<AuditRecord[]> {
  const text = await readFile(path, 'utf8')
  return text.split('\n').filter(line => line !== '').map(line => JSON.parse(line) as AuditRecord)
}

describe('audit log under SIGKILL', () => {
  let dir: string

  before(async () => { dir = await mkdtemp(join(tmpdir(), 'agentnet-audit-crash-')) })
  after(async () => { await rm(dir, { recursive: true, force: true }) })

  it(`keeps every acknowledged record and a valid chain across ${RUNS} kills`, async (t) => {
    const path = join(dir, 'audit.log')
    const ackedByRun: Array<Map<number, number>> = []
    let totalAcked = 0
    let tornSeen = 0
    for (let run = 0; run < RUNS; run++) {
      // most kills land in the append loop; every fifth lands during start-up or open
      const early = run % 5 === 4
      const delay = 50 + Math.floor(Math.random() * 250)
      const { acked } = await runAndKill(path, run, delay, early)
      ackedByRun.push(acked)
      totalAcked += acked.size

      // read-only verify of the log exactly as the crash left it
      const raw = await verifyAuditLog(path).catch((err: Error) => {
        // killed before the log was first created
        assert.equal(run, 0, err.message)
        return undefined
      })
      if (raw !== undefined) {
        assert.equal(raw.ok, true, `run ${run}: ${JSON.stringify(raw.firstBad)}`)
        if (raw.torn !== undefined) {
          tornSeen++
        }
      }

      // reopening repairs whatever the crash left, finds no damage, and verifies clean
      const log = await openAuditLog({ path })
      assert.deepEqual(log.recovery.warnings, [], `run ${run}`)
      await log.close()
      const report = await verifyAuditLog(path)
      assert.equal(report.ok, true, `run ${run}: ${JSON.stringify(report.firstBad)}`)
      assert.equal(report.torn, undefined)

      // the log holds exactly what the writers attempted, in order, and everything they were told was written
      const records = await readRecords(path)
      assert.equal(records.length, report.records)
      const bySeq = new Map(records.map(record => [record.seq, record]))
      for (let r = 0; r <= run; r++) {
        const mine = records.filter(record => record.data.run === r)
        assert.deepEqual(mine.map(record => record.data.i), mine.map((_, i) => i), `run ${r}: records are a prefix of the attempts`)
        const acks = ackedByRun[r]!
        assert.ok(mine.length >= acks.size && mine.length <= acks.size + IN_FLIGHT, `run ${r}: ${mine.length} records for ${acks.size} acknowledgements`)
        for (const [seq, i] of acks) {
          const record = bySeq.get(seq)
          assert.ok(record !== undefined, `run ${r}: acknowledged seq ${seq} is missing`)
          assert.equal(record.data.run, r)
          assert.equal(record.data.i, i)
        }
      }
      // runs follow each other in the chain
      const runsInOrder = records.map(record => record.data.run as number)
      assert.deepEqual(runsInOrder, [...runsInOrder].sort((a, b) => a - b))
    }
    assert.ok(totalAcked > RUNS * 5, `only ${totalAcked} appends were acknowledged; the writer barely ran`)
    t.diagnostic(`${totalAcked} acknowledged appends over ${RUNS} kills; ${tornSeen} torn tails`)
  })
})
