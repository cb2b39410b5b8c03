/**
 * Dialog-audit benchmark: MB/s of `auditDialogFiles` (the engine of
 * `agentnet audit-dialogs`) over a generated JSONL log, beside a plain
 * line-reading loop over the same file (readline + JSON.parse of each line,
 * what any JSONL tool does) measured in the same run. Target: ≥ 20 MB/s.
 *
 * The log is the seeded generator of `test/fixtures/dialogs.ts`: ordinary
 * agent chatter (times, prices, order numbers, dates, URLs) with a leak
 * planted in every 97th message (cards, dates, IBANs, base64, notes, e-mail
 * addresses, a GitHub token), five canaries registered.
 *
 * Run: `./node_modules/.bin/node test/bench/audit-dialogs.bench.ts [--messages N] [--runs N] [--workers N] [--json]`
 * (defaults 200,000 messages, about 30 MB, and 3 runs; the best run is
 * reported beside the median, because on a shared machine the other
 * processes' load dominates the spread, and MB per CPU-second of the whole
 * process — all worker threads — as a figure the load does not change).
 */

import { createReadStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { auditDialogFiles } from '../../src/redteam/index.ts'
import { DIALOG_CANARIES, generateDialogLog } from '../fixtures/dialogs.ts'

function arg (name: string, fallback: number): number {
  const i = process.argv.indexOf(name)
  return i === -1 ? fallback : Number(process.argv[i + 1])
}

const messages = arg('--messages', 200_000)
const runs = arg('--runs', 3)
const workersArg = process.argv.includes('--workers') ? arg('--workers', 0) : undefined
const json = process.argv.includes('--json')

async function plainLoop (file: string): Promise<number> {
  let n = 0
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity })
  for await (const line of lines) {
    if (line === '') continue
    const m = JSON.parse(line) as { text: string }
    n += m.text.length
  }
  return n
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const dir = await mkdtemp(join(tmpdir(), 'an-dlg-bench-'))
try {
  const file = join(dir, 'dialogs.jsonl')
  const log = await generateDialogLog(file, messages, 97)
  const mb = log.bytes / 1e6
  const plain: number[] = []
  const audit: number[] = []
  const auditCpu: number[] = []
  let found = 0
  const cpuSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6
  for (let r = 0; r < runs; r++) {
    let t = performance.now()
    await plainLoop(file)
    plain.push(mb / ((performance.now() - t) / 1000))
    t = performance.now()
    const cpu = process.cpuUsage()
    const result = await auditDialogFiles([file], { canaries: DIALOG_CANARIES, ...(workersArg != null ? { workers: workersArg } : {}) })
    audit.push(mb / ((performance.now() - t) / 1000))
    auditCpu.push(mb / cpuSeconds(process.cpuUsage(cpu)))
    found = result.leakingMessages
  }
  const out = {
    messages,
    workers: workersArg ?? 'default',
    megabytes: Number(mb.toFixed(1)),
    planted: log.planted.size,
    found,
    plainMBps: { best: Number(Math.max(...plain).toFixed(1)), median: Number(median(plain).toFixed(1)) },
    auditMBps: { best: Number(Math.max(...audit).toFixed(1)), median: Number(median(audit).toFixed(1)) },
    /** MB per second of CPU time of the whole process (all threads): what one core does, whatever the load */
    auditMBperCpuSecond: Number(median(auditCpu).toFixed(1)),
    loadavg: loadavg().map(l => Number(l.toFixed(1))),
    node: process.version
  }
  if (json) {
    console.log(JSON.stringify(out))
  } else {
    console.log(`${messages} messages, ${out.megabytes} MB, ${out.planted} leaks planted, ${out.found} found`)
    console.log(`plain line-reading loop (readline + JSON.parse): best ${out.plainMBps.best} MB/s, median ${out.plainMBps.median} MB/s`)
    console.log(`audit-dialogs:                                  best ${out.auditMBps.best} MB/s, median ${out.auditMBps.median} MB/s (target ≥ 20)`)
    console.log(`audit-dialogs per CPU-second (all threads, load-independent): ${out.auditMBperCpuSecond} MB`)
    console.log(`load average ${out.loadavg.join(' ')}, Node ${out.node}`)
  }
} finally {
  await rm(dir, { recursive: true, force: true })
}
