/**
 * The worker-thread side of {@link CryptoPool} (`crypto-pool.ts`): Ed25519
 * verify and sign over batches, with node:crypto (the same calls as the
 * inline path in `signing.ts`, so a worker's answer is the answer the main
 * thread would have computed).
 *
 * Messages in (from the pool):
 * - `{ type: 'key', id, key }`: a signing `KeyObject` (node clones KeyObjects
 *   across threads; the raw key never leaves node:crypto);
 * - `{ type: 'batch', id, kinds, keys, bodies, offsets, buf }`: job `i` is
 *   `buf[offsets[i]..offsets[i + 1])`; a verify job (`kinds[i] === 0`) holds
 *   `publicKey(32) || signature(64) || signedData`, a sign job (`1`) holds
 *   the signed data and signs with key `keys[i]`. Digest jobs (`2` verify,
 *   `3` sign) end with a body of `bodies[i]` bytes after the signed data,
 *   whose last 32 bytes are filled with the body's SHA-256 first.
 *
 * Message out, one per batch: `{ id, ok, sigs }`, `ok[i]` 1 when job `i`
 * verified (or signed), `sigs[i * 64..]` the signature of sign job `i`.
 *
 * @module
 */

import { Buffer } from 'node:buffer'
import { createHash, createPublicKey, sign, verify } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import type { KeyObject } from 'node:crypto'

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PUBLIC_KEY_BYTES = 32
const SIGNATURE_BYTES = 64
/** Public keys kept ready, as in `signing.ts` */
const PUBLIC_KEY_CACHE_SIZE = 1024
/** SHA-256 of a digest job's body */
const DIGEST_BYTES = 32

interface KeyMessage { type: 'key', id: number, key: KeyObject }
interface BatchMessage { type: 'batch', id: number, kinds: Uint8Array, keys: Int32Array, bodies: Uint32Array, offsets: Uint32Array, buf: ArrayBuffer }

const signingKeys = new Map<number, KeyObject>()
const publicKeys = new Map<string, KeyObject | null>()

function publicKey (raw: Buffer): KeyObject | null {
  const id = raw.toString('latin1')
  let key = publicKeys.get(id)
  if (key !== undefined) return key
  try {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' })
  } catch {
    // not a point node:crypto accepts: every signature under it is invalid
    key = null
  }
  if (publicKeys.size >= PUBLIC_KEY_CACHE_SIZE) {
    const oldest = publicKeys.keys().next()
    if (oldest.done !== true) publicKeys.delete(oldest.value)
  }
  publicKeys.set(id, key)
  return key
}

function run (msg: BatchMessage): { id: number, ok: Uint8Array<ArrayBuffer>, sigs: Uint8Array<ArrayBuffer> } {
  const n = msg.kinds.length
  const ok = new Uint8Array(new ArrayBuffer(n))
  const sigs = new Uint8Array(new ArrayBuffer(n * SIGNATURE_BYTES))
  const buf = Buffer.from(msg.buf)
  for (let i = 0; i < n; i++) {
    const start = msg.offsets[i] as number
    let end = msg.offsets[i + 1] as number
    const kind = msg.kinds[i] as number
    try {
      if (kind >= 2) {
        // a digest job: the body follows the signed bytes, whose last 32 bytes await its SHA-256
        end -= msg.bodies[i] as number
        createHash('sha256').update(buf.subarray(end, end + (msg.bodies[i] as number))).digest().copy(buf, end - DIGEST_BYTES)
      }
      if (kind === 0 || kind === 2) {
        const key = publicKey(buf.subarray(start, start + PUBLIC_KEY_BYTES))
        const signature = buf.subarray(start + PUBLIC_KEY_BYTES, start + PUBLIC_KEY_BYTES + SIGNATURE_BYTES)
        ok[i] = key !== null && verify(null, buf.subarray(start + PUBLIC_KEY_BYTES + SIGNATURE_BYTES, end), key, signature) ? 1 : 0
      } else {
        const key = signingKeys.get(msg.keys[i] as number)
        if (key === undefined) continue // ok[i] = 0: the pool signs this one inline
        sigs.set(sign(null, buf.subarray(start, end), key), i * SIGNATURE_BYTES)
        ok[i] = 1
      }
    } catch {
      ok[i] = 0
    }
  }
  return { id: msg.id, ok, sigs }
}

parentPort?.on('message', (msg: KeyMessage | BatchMessage) => {
  if (msg.type === 'key') {
    signingKeys.set(msg.id, msg.key)
    return
  }
  const result = run(msg)
  parentPort?.postMessage(result, [result.ok.buffer, result.sigs.buffer])
})
