/**
 * Leakage-guard benchmark: the cost of `guard.check` per 1 KiB outbound
 * message with 1,000 and with 10,000 registered values, beside a baseline
 * measured in the same run, and the heap the registered values take.
 *
 * Baseline: what the send path does to every message anyway without the
 * guard — `TextEncoder.encode` of the body plus one Ed25519 signature over
 * it with node:crypto (the envelope signature). The guard rows are the cost
 * added on top of that.
 *
 * Messages (each 1,024 characters):
 * - `prose`: an ordinary agent message (times, prices, an order number, a
 *   date that is not registered) — no finding, secretlint's prefilter skips it;
 * - `prose+url`: the same with a URL (the prefilter still skips secretlint:
 *   an URL without credentials cannot match a rule);
 * - `prose+token`: the same with a GitHub token, so secretlint's recommended
 *   preset runs (and finds it);
 * - `leak`: prose holding one registered value (a card number, dashed).
 *
 * Registered values are a mix like a real vault: names, 16-digit numbers,
 * IBANs, dates, e-mail addresses, 8-word phrases (each value yields 1 to ~40
 * automaton patterns: dates in every format, partial-run windows).
 *
 * Also: `protect` of one more value followed by a check (what a run-time
 * registration costs the next message: only the small second automaton is
 * rebuilt), and the full compile time (first check after start).
 *
 * Memory: `process.memoryUsage().heapUsed` after `gc()` before and after
 * registering 10,000 values and compiling the automaton (external memory of
 * its typed arrays reported too). Run with `--expose-gc` (the script
 * re-runs itself with it when needed).
 *
 * Run: `./node_modules/.bin/node test/bench/guard.bench.ts [--json]`.
 * Run no other benchmark at the same time.
 */

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { guardStage } from '../../src/agent/guard-stage.ts'
import { AuditSink, openAuditLog } from '../../src/audit/index.ts'
import { Outbox } from '../../src/outbox/index.ts'
import { createSigner, sealEnvelope } from '../../src/protocol/index.ts'
import { spawnSync } from 'node:child_process'
import { generateKeyPairSync, sign } from 'node:crypto'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { createGuard } from '../../src/guard/index.ts'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}

const JSON_OUT = process.argv.includes('--json')
const ITER = 3000
const WARMUP = 500

let seed = 42
function rnd (): number { // mulberry32: deterministic, and distinct values (an LCG in doubles repeats quickly)
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}
function digits (n: number): string { let s = String(1 + Math.floor(rnd() * 9)); while (s.length < n) s += String(Math.floor(rnd() * 10)); return s }
const SYL = ['ka', 'lo', 'mi', 'ren', 'tor', 'vi', 'sa', 'dun', 'bel', 'gra', 'nix', 'ope', 'ul', 'zed', 'quin', 'har']
function word (): string { let w = ''; const n = 2 + Math.floor(rnd() * 3); for (let i = 0; i < n; i++) w += SYL[Math.floor(rnd() * SYL.length)]; return w }
const cap = (w: string): string => w[0]?.toUpperCase() + w.slice(1)

function value (i: number): { value: string, label: string, category: string } {
  switch (i % 6) {
    case 0: return { value: `${cap(word())} ${cap(word())}`, label: `name-${i}`, category: 'pii/name' }
    case 1: return { value: digits(16), label: `card-${i}`, category: 'finance/card' }
    case 2: return { value: `DE${digits(2)} ${digits(4)} ${digits(4)} ${digits(4)} ${digits(4)} ${digits(2)}`, label: `iban-${i}`, category: 'finance/iban' }
    case 3: return { value: `${1940 + Math.floor(rnd() * 70)}-${String(1 + Math.floor(rnd() * 12)).padStart(2, '0')}-${String(1 + Math.floor(rnd() * 28)).padStart(2, '0')}`, label: `date-${i}`, category: 'pii/dob' }
    case 4: return { value: `${word()}.${word()}${i}@mail.example`, label: `mail-${i}`, category: 'contact/email' }
    default: return { value: Array.from({ length: 8 }, word).join(' '), label: `note-${i}`, category: 'confidential/note' }
  }
}

const PROSE = 'Hi there, following up on our call this morning. The team reviewed the proposal and we are happy to go ahead with the second option, ' +
  'provided the delivery window stays at 3 to 5 working days. The quoted total of $1,234.56 (order 100045872) looks right; please confirm the VAT line. ' +
  'We would like to schedule the kickoff for Tuesday at 10:30 or Thursday at 14:00, whichever suits your side; the room on floor 4 holds 12 people. ' +
  'On the technical side, version 2.4.1 of the connector fixed the retry issue we saw in March, so no further action is needed there. ' +
  'For the rollout we plan three phases of roughly two weeks each, starting 2027-01-11, with a review after each phase. '
function kib (text: string): string { let s = text; while (s.length < 1024) s += PROSE; return s.slice(0, 1024) }

interface Stat { p50: number, p99: number, mean: number }
function stats (samples: number[]): Stat {
  const s = [...samples].sort((a, b) => a - b)
  return { p50: s[Math.floor(s.length * 0.5)] as number, p99: s[Math.floor(s.length * 0.99)] as number, mean: s.reduce((a, b) => a + b, 0) / s.length }
}
async function time (fn: () => unknown): Promise<Stat> {
  for (let i = 0; i < WARMUP; i++) await fn()
  const out: number[] = []
  for (let i = 0; i < ITER; i++) {
    const t = process.hrtime.bigint()
    await fn()
    out.push(Number(process.hrtime.bigint() - t) / 1000)
  }
  return stats(out)
}

const { privateKey } = generateKeyPairSync('ed25519')
const libp2pKey = await generateKeyPair('Ed25519')
const enc = new TextEncoder()
const messages: Record<string, string> = {
  prose: kib(PROSE),
  'prose+url': kib('See https://docs.example.org/guides/rollout for the plan. ' + PROSE),
  'prose+token': kib('Deploy key ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8 expires Friday. ' + PROSE)
}

interface Row { name: string, values: number | '-', patterns?: number, stat: Stat }
const rows: Row[] = []
const loadBefore = loadavg()[0] as number
const progress = (s: string): void => { if (!JSON_OUT) process.stderr.write(s + '\n') }

progress('baseline…')
for (const [name, body] of Object.entries(messages)) {
  rows.push({ name: `baseline: encode + Ed25519 sign (${name})`, values: '-', stat: await time(() => sign(null, enc.encode(body), privateKey)) })
}
rows.push({ name: 'baseline: empty async call', values: '-', stat: await time(async () => {}) })

const builds: Array<{ values: number, patterns: number, compileMs: number }> = []
let memory: { values: number, heapBytes: number, externalBytes: number, perValueBytes: number } | undefined
for (const n of [1_000, 10_000]) {
  progress(`${n} values…`)
  gc!(); gc!()
  const before = process.memoryUsage()
  const guard = createGuard({ maxValues: 20_000 })
  let leakValue = ''
  for (let i = 0; i < n; i++) {
    const v = value(i)
    guard.protect(v)
    if (i === 7) leakValue = v.value
  }
  const t = performance.now()
  await guard.check({ peerNames: ['p'], body: 'warm' }) // compiles the automaton
  builds.push({ values: n, patterns: guard.stats().patterns, compileMs: performance.now() - t })
  gc!(); gc!()
  const after = process.memoryUsage()
  if (n === 10_000) {
    const heapBytes = after.heapUsed - before.heapUsed
    const externalBytes = (after.external + after.arrayBuffers) - (before.external + before.arrayBuffers)
    memory = { values: guard.list().length, heapBytes, externalBytes, perValueBytes: Math.round((heapBytes + Math.max(0, externalBytes)) / n) }
  }
  const leak = kib(`Card for the booking: ${leakValue.replace(/(\d{4})(?=\d)/g, '$1-')}. ` + PROSE)
  for (const [name, body] of Object.entries({ ...messages, leak })) {
    rows.push({ name: `guard.check (${name})`, values: n, stat: await time(() => guard.check({ peerNames: ['12D3KooWpeer', 'partner'], body })) })
  }
  // the send path itself, with and without the guard stage: outbox admission + seal (sign) of a request
  const auditHome = await mkdtemp(join(tmpdir(), 'guard-bench-'))
  const audit = new AuditSink(await openAuditLog({ path: join(auditHome, 'audit.log') }))
  const guarded = new Outbox([guardStage(guard, { enabled: true, namesOf: async () => ['partner'], audit })])
  const bare = new Outbox([])
  const signer = createSigner(libp2pKey)
  const to = peerIdFromPrivateKey(libp2pKey).toMultihash().bytes
  const sendPath = async (outbox: Outbox, body: string): Promise<void> => {
    const admitted = await outbox.admit({ kind: 'request', to: '12D3KooWpeer', service: 'travel', body: enc.encode(body), contentType: 'text/plain; charset=utf-8' })
    sealEnvelope({ to, service: 'travel', kind: 'request', id: 'r', contentType: 'text/plain; charset=utf-8', body: admitted.body }, signer)
  }
  rows.push({ name: 'send path without the guard: outbox + seal (prose)', values: n, stat: await time(async () => { await sendPath(bare, messages.prose as string) }) })
  rows.push({ name: 'send path with the guard: outbox + guard + seal (prose)', values: n, stat: await time(async () => { await sendPath(guarded, messages.prose as string) }) })
  await audit.close()
  await rm(auditHome, { recursive: true, force: true })
  // a value registered at run time: the next check compiles only the small delta automaton
  const adds: number[] = []
  for (let i = 0; i < 200; i++) {
    const v = value(n + i)
    const t0 = process.hrtime.bigint()
    guard.protect({ ...v, label: `late-${i}` })
    await guard.check({ peerNames: ['p'], body: messages.prose as string })
    adds.push(Number(process.hrtime.bigint() - t0) / 1000)
  }
  rows.push({ name: 'protect one more value, then guard.check (prose)', values: n, stat: stats(adds) })
  const noSecret = createGuard({ maxValues: 20_000, secretScan: false })
  for (let i = 0; i < n; i++) noSecret.protect(value(i))
  rows.push({ name: 'guard.check (prose+url), secretlint off', values: n, stat: await time(() => noSecret.check({ peerNames: ['p'], body: messages['prose+url'] as string })) })
}

// the machine is shared: p99 and means mostly measure other processes when the load exceeds the cores
const load = { before: loadBefore, after: loadavg()[0] as number, cores: cpus().length }
if (JSON_OUT) {
  console.log(JSON.stringify({ iterations: ITER, rows, builds, memory, load }, null, 2))
} else {
  const f = (us: number): string => us < 1000 ? `${us.toFixed(1)} µs` : `${(us / 1000).toFixed(2)} ms`
  console.log(`\nguard.check per 1 KiB message (${ITER} iterations after ${WARMUP} warm-up; Node ${process.version}; 1-min load average ${load.before.toFixed(1)} → ${load.after.toFixed(1)} on ${load.cores} cores)\n`)
  console.log('| what | values | p50 | p99 | mean |')
  console.log('|---|---|---|---|---|')
  for (const r of rows) console.log(`| ${r.name} | ${r.values} | ${f(r.stat.p50)} | ${f(r.stat.p99)} | ${f(r.stat.mean)} |`)
  console.log('\n| values | distinct automaton patterns | compile (first check after a change) |')
  console.log('|---|---|---|')
  for (const b of builds) console.log(`| ${b.values} | ${b.patterns} | ${b.compileMs.toFixed(0)} ms |`)
  if (memory !== undefined) {
    console.log(`\nmemory, ${memory.values} values registered and compiled: heap +${(memory.heapBytes / 1048576).toFixed(1)} MiB, external +${(memory.externalBytes / 1048576).toFixed(1)} MiB, ≈ ${memory.perValueBytes} bytes per value`)
  }
}
