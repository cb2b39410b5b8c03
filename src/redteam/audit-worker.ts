/**
 * A worker thread of the dialog audit: its own guard with the canaries,
 * inspecting batches of message texts sent by `audit-dialogs.ts`.
 *
 * @module
 */

import { parentPort, workerData } from 'node:worker_threads'
import { createBatchScanner, inspectTexts } from './audit-dialogs.ts'
import type { Canary } from './scenario.ts'

const scanner = createBatchScanner((workerData as { canaries: Canary[] }).canaries)

parentPort?.on('message', (msg: { id: number, texts: string[] }) => {
  inspectTexts(scanner, msg.texts).then(
    results => { parentPort?.postMessage({ id: msg.id, results }) },
    (err: unknown) => { parentPort?.postMessage({ id: msg.id, error: err instanceof Error ? err.message : String(err) }) }
  )
})
