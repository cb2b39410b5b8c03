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
import { createInterface } from 'node:readline'
import { createLeakDetector } from './detect.ts'
import { InvalidDialogLogError } from './errors.ts'
import { AUDIT_BATCH_CHARS, AUDIT_PROGRESS_BYTES } from './constants.ts'
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
}

interface Pending {
  line: number
  sender: string
  recipient: string
  text: string
  start: number
}

/** Audit dialog logs. */
export async function auditDialogFiles (files: string[], options: AuditOptions = {}): Promise<DialogAudit> {
  const started = Date.now()
  const detector = createLeakDetector(options.canaries ?? [])
  const audit: DialogAudit = { files, messages: 0, bytes: 0, leakingMessages: 0, findings: [], byLabel: {}, flows: [], durationMs: 0 }
  for (const file of files) {
    await auditFile(file, detector, audit, options)
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

async function auditFile (file: string, detector: LeakDetector, audit: DialogAudit, options: AuditOptions): Promise<void> {
  await stat(file).catch(() => { throw new InvalidDialogLogError(`${file}: no such file`) })
  const progressBytes = options.progressBytes ?? AUDIT_PROGRESS_BYTES
  let nextProgress = progressBytes
  let fileBytes = 0
  let batch: Pending[] = []
  let batchChars = 0
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return
    await inspectBatch(file, batch, detector, audit)
    batch = []
    batchChars = 0
  }
  const lines = createInterface({ input: createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 }), crlfDelay: Infinity })
  let n = 0
  for await (const raw of lines) {
    n++
    fileBytes += Buffer.byteLength(raw) + 1
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
    if (fileBytes >= nextProgress) {
      nextProgress += progressBytes
      options.onProgress?.({ file, bytes: fileBytes, messages: audit.messages, leaks: audit.leakingMessages })
    }
  }
  await flush()
  audit.bytes += fileBytes
}

/** Index of the message holding offset `pos` of the batch text. */
function messageAt (batch: Pending[], pos: number): number {
  let lo = 0
  let hi = batch.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (batch[mid]!.start <= pos) lo = mid
    else hi = mid - 1
  }
  return lo
}

async function inspectBatch (file: string, batch: Pending[], detector: LeakDetector, audit: DialogAudit): Promise<void> {
  const text = batch.map(m => m.text).join('\n\n')
  const findings = await detector.guard.inspect(text)
  if (findings.length === 0) return
  const suspects = new Set<number>()
  for (const f of findings) {
    const first = messageAt(batch, f.start)
    const last = messageAt(batch, Math.max(f.start, f.end - 1))
    for (let i = first; i <= last; i++) suspects.add(i)
  }
  // every suspect alone: exact leaks per message, nothing attributed across a boundary
  for (const i of [...suspects].sort((a, b) => a - b)) {
    const m = batch[i]!
    const leaks = await detector.find(m.text)
    if (leaks.length === 0) continue
    audit.leakingMessages++
    audit.findings.push({ file, line: m.line, sender: m.sender, recipient: m.recipient, leaks })
    for (const l of leaks) audit.byLabel[l.label] = (audit.byLabel[l.label] ?? 0) + 1
  }
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
