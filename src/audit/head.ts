/**
 * The head file: `{"seq":n,"hash":"…"}` of the last record known to be in the
 * log, replaced atomically after each append. It lets `verify` notice records
 * deleted from the end of the log, which the hash chain alone cannot show.
 */

import { open } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { writeFileAtomic } from '../utils/fs.ts'

const MAX_HEAD_BYTES = 1024
const HEX_HASH_PATTERN = /^[0-9a-f]{64}$/

export type HeadState =
  | { state: 'ok', seq: number, hash: string }
  | { state: 'missing' }
  | { state: 'unreadable', reason: string }

/** `<dir>/audit.log` → `<dir>/audit.head`; any other name gets `.head` appended */
export function headPathFor (logPath: string): string {
  const name = basename(logPath)
  return join(dirname(logPath), name.endsWith('.log') ? `${name.slice(0, -4)}.head` : `${name}.head`)
}

export async function readHead (headPath: string): Promise<HeadState> {
  let text: string
  try {
    const handle = await open(headPath, 'r')
    try {
      const buffer = Buffer.alloc(MAX_HEAD_BYTES + 1)
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0)
      if (bytesRead > MAX_HEAD_BYTES) {
        return { state: 'unreadable', reason: `${headPath} is larger than ${MAX_HEAD_BYTES} bytes` }
      }
      text = buffer.subarray(0, bytesRead).toString('utf8')
    } finally {
      await handle.close()
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return { state: 'missing' }
    }
    return { state: 'unreadable', reason: `${headPath} cannot be read: ${(err as Error).message}` }
  }
  try {
    const value = JSON.parse(text) as { seq?: unknown, hash?: unknown }
    if (Number.isSafeInteger(value.seq) && (value.seq as number) >= -1 && typeof value.hash === 'string' && HEX_HASH_PATTERN.test(value.hash)) {
      return { state: 'ok', seq: value.seq as number, hash: value.hash }
    }
  } catch {}
  return { state: 'unreadable', reason: `${headPath} does not hold {"seq": n, "hash": "<64 hex>"}` }
}

export async function writeHead (headPath: string, seq: number, hash: string): Promise<void> {
  await writeFileAtomic(headPath, `${JSON.stringify({ seq, hash })}\n`, 0o600)
}
