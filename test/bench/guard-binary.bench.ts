/**
 * How often the guard blocks a binary body for an e-mail address that random
 * bytes spelled by chance (compressed files, images and model weights look
 * random): per MiB of random bytes, the share of MiB in which
 *
 * - the text-mode e-mail rule finds an address in the body's printable runs
 *   (what binary bodies got before the binary rule: the default policy
 *   blocked every such body), and
 * - `guard.inspect(body, { binary: true })` finds one (the binary rule,
 *   `BINARY_EMAIL_MIN_CHARS` in src/guard/constants.ts).
 *
 * Every other detector's findings are counted too (by category), so a new
 * source of false positives on binary content shows here.
 *
 * Run: `./node_modules/.bin/node test/bench/guard-binary.bench.ts [--mib 1000] [--json]`
 * (~20 ms per MiB on one core; 10,000 MiB for a rate near 1 in 10,000).
 */

import { randomBytes } from 'node:crypto'
import { parseArgs } from 'node:util'
import { createGuard } from '../../src/guard/index.ts'
import { printableRuns } from '../../src/guard/decode.ts'
import { detectPii } from '../../src/guard/detectors.ts'
import { MIN_PRINTABLE_RUN } from '../../src/guard/constants.ts'

const { values: flags } = parseArgs({ options: { mib: { type: 'string', default: '1000' }, json: { type: 'boolean', default: false } } })
const mib = Number.parseInt(flags.mib, 10)
if (!Number.isSafeInteger(mib) || mib < 1) throw new RangeError('--mib must be a positive integer')

const guard = createGuard()
let textRule = 0
const binaryByCategory: Record<string, number> = {}
const started = performance.now()
for (let i = 0; i < mib; i++) {
  const body = randomBytes(1 << 20).toString('latin1')
  if (detectPii(printableRuns(body, MIN_PRINTABLE_RUN).text).some(h => h.detector === 'email')) textRule++
  for (const category of new Set((await guard.inspect(body, { binary: true })).map(f => f.category))) {
    binaryByCategory[category] = (binaryByCategory[category] ?? 0) + 1
  }
  if ((i + 1) % 500 === 0) process.stderr.write(`${i + 1} / ${mib} MiB\n`)
}
const seconds = (performance.now() - started) / 1000
const result = { mib, textRuleEmailMib: textRule, binaryRuleMibByCategory: binaryByCategory, seconds }
if (flags.json) {
  console.log(JSON.stringify(result))
} else {
  const pct = (n: number): string => `${n} of ${mib} MiB (${(100 * n / mib).toFixed(3)} %)`
  console.log(`random bytes, ${mib} MiB, ${seconds.toFixed(0)} s`)
  console.log(`| rule | MiB with an e-mail finding |\n|---|---|`)
  console.log(`| text-mode e-mail rule on the printable runs (binary bodies before) | ${pct(textRule)} |`)
  console.log(`| guard, binary body (now) | ${pct(binaryByCategory['pii/email'] ?? 0)} |`)
  const others = Object.entries(binaryByCategory).filter(([c]) => c !== 'pii/email')
  console.log(`other findings in binary mode: ${others.length === 0 ? 'none' : others.map(([c, n]) => `${c}: ${pct(n)}`).join(', ')}`)
}
