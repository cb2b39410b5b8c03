/**
 * The dialog-dataset audit: scans conversation logs (JSONL, one message per
 * line: `{"sender", "recipient", "text"}`, other fields ignored) for
 * canaries, secrets and PII, and reports which message leaked what to whom
 * (labels and categories, never the text).
 *
 * Messages are inspected in batches (one guard pass over many messages);
 * a finding that straddles two messages sends each of them through the
 * guard alone, so nothing is attributed across a message boundary.
 *
 * @module
 */

import { createReadStream } from 'node:fs'
import { stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { extname } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { createLeakDetector } from './detect.ts'
import { createGuard, mightHoldSecret } from '../guard/index.ts'
import type { Guard } from '../guard/index.ts'
import { InvalidDialogLogError } from './errors.ts'
import { AUDIT_BATCH_CHARS, AUDIT_PROGRESS_BYTES, AUDIT_WORKERS_MIN_BYTES } from './constants.ts'
import type { Canary } from './scenario.ts'
import type { Leak, LeakDetector } from './detect.ts'

/** One message that leaked. */
export interface DialogFinding {
  file: string
  /** 1-based line number. */
  line: number
  sender: string
  recipient: string
  leaks: Leak[]
}

export interface DialogAudit {
  files: string[]
  messages: number
  bytes: number
  leakingMessages: number
  findings: DialogFinding[]
  /** Leaking messages per label. */
  byLabel: Record<string, number>
  /** Per sender → recipient pair that saw a leak: messages and labels. */
  flows: Array<{ sender: string, recipient: string, messages: number, labels: string[] }>
  durationMs: number
}

export interface DialogProgress {
  file: string
  bytes: number
  messages: number
  leaks: number
}

export interface AuditOptions {
  canaries?: Canary[]
  /** Called every `progressBytes` bytes (default 8 MiB). */
  onProgress?: (p: DialogProgress) => void
  progressBytes?: number
  /** Stop at a malformed line (default), or skip it. */
  skipInvalid?: boolean
  /** Worker threads inspecting batches; 0 inspects on this thread. Default: with ≥ 3 CPUs and ≥ 32 MiB of input, CPUs − 1 (at most 4), else 0. */
  workers?: number
}

type Results = Array<{ index: number, leaks: Leak[] }>

/** Inspects batches of texts, here or in worker threads. */
interface Inspector {
  inspect: (texts: string[]) => Promise<Results>
  /** Batches in flight before the reader waits. */
  depth: number
  close: () => Promise<void>
}

function localInspector (canaries: Canary[]): Inspector {
  const scanner = createBatchScanner(canaries)
  return { inspect: async texts => inspectTexts(scanner, texts), depth: 1, close: async () => {} }
}

function workerInspector (canaries: Canary[], count: number): Inspector {
  const self = fileURLToPath(import.meta.url)
  const script = new URL(`./audit-worker${extname(self)}`, import.meta.url)
  const pending = new Map<number, { resolve: (r: Results) => void, reject: (e: Error) => void }>()
  const workers = Array.from({ length: count }, () => {
    const w = new Worker(script, { workerData: { canaries } })
    w.on('message', (m: { id: number, results?: Results, error?: string }) => {
      const p = pending.get(m.id)
      pending.delete(m.id)
      if (m.error != null) p?.reject(new InvalidDialogLogError(`the audit worker failed: ${m.error}`))
      else p?.resolve(m.results ?? [])
    })
    w.on('error', err => {
      for (const p of pending.values()) p.reject(err)
      pending.clear()
    })
    return w
  })
  let next = 0
  return {
    depth: count * 2,
    inspect: async texts => new Promise<Results>((resolve, reject) => {
      const id = next++
      pending.set(id, { resolve, reject })
      workers[id % workers.length]!.postMessage({ id, texts })
    }),
    close: async () => { await Promise.all(workers.map(async w => w.terminate())) }
  }
}

interface Pending {
  line: number
  sender: string
  recipient: string
  text: string
  start: number
}

/**
 * Worker threads pay off with spare cores and enough input: each loads the
 * guard and compiles its automaton (~0.5 s of CPU), and the reading thread
 * needs a core too. Measured on 2 cores: in-thread 19 MB per CPU-second,
 * 2 workers 12; so workers only with ≥ 3 cores and ≥ 32 MiB of logs.
 */
async function defaultWorkers (files: string[]): Promise<number> {
  const cores = availableParallelism()
  if (cores < 3) return 0
  let bytes = 0
  for (const f of files) bytes += (await stat(f).catch(() => ({ size: 0 }))).size
  return bytes >= AUDIT_WORKERS_MIN_BYTES ? Math.min(4, cores - 1) : 0
}

/** Audit dialog logs. */
export async function auditDialogFiles (files: string[], options: AuditOptions = {}): Promise<DialogAudit> {
  const started = Date.now()
  const canaries = options.canaries ?? []
  const count = options.workers ?? await defaultWorkers(files)
  const inspector = count > 0 ? workerInspector(canaries, count) : localInspector(canaries)
  const audit: DialogAudit = { files, messages: 0, bytes: 0, leakingMessages: 0, findings: [], byLabel: {}, flows: [], durationMs: 0 }
  try {
    for (const file of files) {
      await auditFile(file, inspector, audit, options)
    }
  } finally {
    await inspector.close()
  }
  const order = new Map(files.map((f, i) => [f, i]))
  audit.findings.sort((a, b) => (order.get(a.file)! - order.get(b.file)!) || a.line - b.line)
  for (const f of audit.findings) {
    audit.leakingMessages++
    for (const l of f.leaks) audit.byLabel[l.label] = (audit.byLabel[l.label] ?? 0) + 1
  }
  const flows = new Map<string, { sender: string, recipient: string, messages: number, labels: Set<string> }>()
  for (const f of audit.findings) {
    const key = JSON.stringify([f.sender, f.recipient])
    const flow = flows.get(key) ?? { sender: f.sender, recipient: f.recipient, messages: 0, labels: new Set<string>() }
    flow.messages++
    for (const l of f.leaks) {
      flow.labels.add(l.label)
    }
    flows.set(key, flow)
  }
  audit.flows = [...flows.values()].map(f => ({ ...f, labels: [...f.labels].sort() }))
  audit.durationMs = Date.now() - started
  return audit
}

async function auditFile (file: string, inspector: Inspector, audit: DialogAudit, options: AuditOptions): Promise<void> {
  await stat(file).catch(() => { throw new InvalidDialogLogError(`${file}: no such file`) })
  const progressBytes = options.progressBytes ?? AUDIT_PROGRESS_BYTES
  let nextProgress = progressBytes
  let batch: Pending[] = []
  let batchChars = 0
  const inFlight: Array<Promise<void>> = []
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    const messages = batch
    batch = []
    batchChars = 0
    const done = inspector.inspect(messages.map(m => m.text)).then(results => {
      for (const { index, leaks } of results) {
        const m = messages[index]!
        audit.findings.push({ file, line: m.line, sender: m.sender, recipient: m.recipient, leaks })
      }
    })
    done.catch(() => {}) // awaited below in order; a failure is thrown there, not reported as unhandled
    inFlight.push(done)
    while (inFlight.length >= inspector.depth) await inFlight.shift()
  }
  // bytes read so far (in 1 MiB chunks: progress is that coarse, the total exact)
  const input = createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })
  const lines = createInterface({ input, crlfDelay: Infinity })
  let n = 0
  for await (const raw of lines) {
    n++
    if (raw.trim() === '') continue
    let msg: { sender?: unknown, recipient?: unknown, text?: unknown }
    try {
      msg = JSON.parse(raw)
    } catch {
      if (options.skipInvalid === true) continue
      throw new InvalidDialogLogError(`${file}:${n}: not JSON (each line must be {"sender", "recipient", "text"})`)
    }
    if (msg == null || typeof msg !== 'object' || typeof msg.text !== 'string' || typeof msg.sender !== 'string' || typeof msg.recipient !== 'string') {
      if (options.skipInvalid === true) continue
      throw new InvalidDialogLogError(`${file}:${n}: a message needs string fields sender, recipient and text`)
    }
    audit.messages++
    batch.push({ line: n, sender: msg.sender, recipient: msg.recipient, text: msg.text, start: batchChars })
    batchChars += msg.text.length + 2
    if (batchChars >= AUDIT_BATCH_CHARS) await flush()
    if (input.bytesRead >= nextProgress) {
      while (nextProgress <= input.bytesRead) nextProgress += progressBytes
      options.onProgress?.({ file, bytes: input.bytesRead, messages: audit.messages, leaks: audit.findings.length })
    }
  }
  await flush()
  while (inFlight.length > 0) await inFlight.shift()
  audit.bytes += input.bytesRead
}

/** Index of the text holding offset `pos` of the joined batch. */
function textAt (starts: number[], pos: number): number {
  let lo = 0
  let hi = starts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (starts[mid]! <= pos) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** The guards of a batch inspection: the full detector, and one without secretlint for the joined batch. */
export interface BatchScanner {
  detector: LeakDetector
  batchGuard: Guard
}

export function createBatchScanner (canaries: Canary[]): BatchScanner {
  const batchGuard = createGuard({ secretScan: false })
  for (const c of canaries) batchGuard.protect({ value: c.value, label: c.label, category: c.category })
  return { detector: createLeakDetector(canaries), batchGuard }
}

/**
 * Leaks of each text of a batch: one guard pass (without secretlint) over the
 * texts joined, then each text holding (part of) a finding, or that
 * secretlint's prefilter lets through, alone with the full detector, so
 * nothing is attributed across a boundary and secretlint never scans a
 * whole batch. Also run in the worker threads.
 */
export async function inspectTexts (scanner: BatchScanner, texts: string[]): Promise<Array<{ index: number, leaks: Leak[] }>> {
  const { detector, batchGuard } = scanner
  const starts: number[] = []
  const suspects = new Set<number>()
  let at = 0
  for (const [i, t] of texts.entries()) {
    starts.push(at)
    at += t.length + 2
    // secretlint runs on a message alone, and only when its prefilter says a rule could match
    if (mightHoldSecret(t)) suspects.add(i)
  }
  const findings = await batchGuard.inspect(texts.join('\n\n'))
  for (const f of findings) {
    const first = textAt(starts, f.start)
    const last = textAt(starts, Math.max(f.start, f.end - 1))
    for (let i = first; i <= last; i++) suspects.add(i)
  }
  const out: Array<{ index: number, leaks: Leak[] }> = []
  for (const index of [...suspects].sort((a, b) => a - b)) {
    const leaks = await detector.find(texts[index]!)
    if (leaks.length > 0) out.push({ index, leaks })
  }
  return out
}

/** The human summary. */
export function formatDialogAudit (audit: DialogAudit): string {
  const out = audit.findings.map(f => `${f.file}:${f.line}  ${f.sender} → ${f.recipient}  ${f.leaks.map(l => l.label === l.category ? l.category : `${l.label} (${l.category})`).join(', ')}`)
  if (out.length > 0) out.push('')
  for (const flow of audit.flows) {
    out.push(`${flow.sender} → ${flow.recipient}: ${flow.messages} message(s) leaking ${flow.labels.join(', ')}`)
  }
  const mb = audit.bytes / 1048576
  out.push(`${audit.messages} messages (${mb.toFixed(1)} MiB) in ${audit.files.length} file(s): ${audit.leakingMessages} leaking, ${(audit.durationMs / 1000).toFixed(1)} s`)
  return out.join('\n')
}
