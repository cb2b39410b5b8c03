/**
 * The replay cache's snapshot format, written at a clean stop and read at
 * the next start:
 *
 * ```
 * "ANRC" | version u8 (1) | horizon u64 | floor u64 | peers u32 |
 * (idLen u16 | id utf8 | watermark u64 | count u32 | (nonceLen u8 | nonce | ts u64)*)* |
 * sha256(everything before)
 * ```
 *
 * Integers are big-endian. Decoding is strict (checksum, magic, version,
 * bounds, no repeated peer or nonce, no trailing bytes) and hands each entry
 * to a sink; what to keep is the cache's decision.
 *
 * @module
 */

import { createHash } from 'node:crypto'
import { Buffer } from 'node:buffer'
import { CorruptSnapshotError } from './errors.ts'
import type { Bucket } from './replay-bucket.ts'

const MAGIC = [0x41, 0x4e, 0x52, 0x43] // "ANRC"
const SNAPSHOT_VERSION = 1
const HEADER_BYTES = MAGIC.length + 1 + 8 + 8 + 4 // magic, version, horizon, floor, peer count
const CHECKSUM_BYTES = 32
const TWO_32 = 0x1_0000_0000

function nonceKey (nonce: Uint8Array): string {
  return Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('latin1')
}

/** Encode every bucket of `peers` (nonces as stored: latin1 strings of their bytes). */
export function encodeSnapshot (horizon: number, floor: number, peers: ReadonlyMap<string, Bucket>): Uint8Array {
  const ids: Uint8Array[] = []
  let size = HEADER_BYTES + CHECKSUM_BYTES
  for (const bucket of peers.values()) {
    const id = Buffer.from(bucket.peer, 'utf8')
    ids.push(id)
    size += 2 + id.length + 8 + 4
    for (let k = bucket.head; k < bucket.keys.length; k++) size += 1 + (bucket.keys[k] as string).length + 8
  }
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  out.set(MAGIC, 0)
  let pos = MAGIC.length
  out[pos++] = SNAPSHOT_VERSION
  const u64 = (value: number): void => {
    view.setUint32(pos, Math.floor(value / TWO_32))
    view.setUint32(pos + 4, value >>> 0)
    pos += 8
  }
  u64(horizon)
  u64(floor)
  view.setUint32(pos, peers.size)
  pos += 4
  let i = 0
  for (const bucket of peers.values()) {
    const id = ids[i++] as Uint8Array
    view.setUint16(pos, id.length)
    out.set(id, pos + 2)
    pos += 2 + id.length
    u64(bucket.watermark)
    view.setUint32(pos, bucket.size)
    pos += 4
    for (let k = bucket.head; k < bucket.keys.length; k++) {
      const key = bucket.keys[k] as string
      out[pos++] = key.length
      out.set(Buffer.from(key, 'latin1'), pos)
      pos += key.length
      u64(bucket.times[k] as number)
    }
  }
  out.set(createHash('sha256').update(out.subarray(0, pos)).digest(), pos)
  return out
}

/** Receives a snapshot's content, in order: the header, then per peer its entries and its watermark. */
export interface SnapshotSink {
  header(horizon: number, floor: number): void
  entry(peer: string, key: string, ts: number, watermark: number): void
  watermark(peer: string, watermark: number): void
}

/**
 * Decode a snapshot into `sink`.
 *
 * @throws {CorruptSnapshotError} for anything but an intact snapshot
 */
export function decodeSnapshot (bytes: Uint8Array, maxPeerKeyLength: number, sink: SnapshotSink): void {
  if (!(bytes instanceof Uint8Array) || bytes.length < HEADER_BYTES + CHECKSUM_BYTES) throw new CorruptSnapshotError('Replay cache snapshot is truncated')
  const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES)
  const digest = createHash('sha256').update(body).digest()
  if (!digest.equals(bytes.subarray(body.length))) throw new CorruptSnapshotError('Replay cache snapshot checksum mismatch')
  for (let i = 0; i < MAGIC.length; i++) {
    if (body[i] !== MAGIC[i]) throw new CorruptSnapshotError('Not a replay cache snapshot')
  }
  if (body[MAGIC.length] !== SNAPSHOT_VERSION) throw new CorruptSnapshotError(`Unknown replay cache snapshot version ${String(body[MAGIC.length])}`)

  const view = new DataView(body.buffer, body.byteOffset, body.byteLength)
  let pos = MAGIC.length + 1
  const need = (n: number): void => {
    if (n > body.length - pos) throw new CorruptSnapshotError(`Replay cache snapshot truncated at offset ${pos}`)
  }
  const u64 = (): number => {
    need(8)
    const hi = view.getUint32(pos)
    const lo = view.getUint32(pos + 4)
    pos += 8
    const value = hi * TWO_32 + lo
    if (value > Number.MAX_SAFE_INTEGER) throw new CorruptSnapshotError(`Replay cache snapshot integer out of range at offset ${pos - 8}`)
    return value
  }
  const horizon = u64()
  const floor = u64()
  need(4)
  const peerCount = view.getUint32(pos)
  pos += 4
  sink.header(horizon, floor)

  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
  const seenPeers = new Set<string>()
  for (let p = 0; p < peerCount; p++) {
    need(2)
    const idLength = view.getUint16(pos)
    pos += 2
    need(idLength)
    let peer: string
    try {
      peer = utf8.decode(body.subarray(pos, pos + idLength))
    } catch {
      throw new CorruptSnapshotError(`Replay cache snapshot has an invalid peer ID at offset ${pos}`)
    }
    pos += idLength
    if (peer.length === 0 || peer.length > maxPeerKeyLength || seenPeers.has(peer)) throw new CorruptSnapshotError(`Replay cache snapshot has an invalid or repeated peer ID at offset ${pos - idLength}`)
    seenPeers.add(peer)
    const watermark = u64()
    need(4)
    const count = view.getUint32(pos)
    pos += 4
    const seenNonces = new Set<string>()
    for (let n = 0; n < count; n++) {
      need(1)
      const nonceLength = body[pos++] as number
      if (nonceLength === 0) throw new CorruptSnapshotError(`Replay cache snapshot has an empty nonce at offset ${pos - 1}`)
      need(nonceLength)
      const key = nonceKey(body.subarray(pos, pos + nonceLength))
      pos += nonceLength
      const ts = u64()
      if (seenNonces.has(key)) throw new CorruptSnapshotError(`Replay cache snapshot repeats a nonce at offset ${pos}`)
      seenNonces.add(key)
      sink.entry(peer, key, ts, watermark)
    }
    sink.watermark(peer, watermark)
  }
  if (pos !== body.length) throw new CorruptSnapshotError(`Replay cache snapshot has trailing bytes at offset ${pos}`)
}
