/**
 * Crypto pool crossover: what one Ed25519 verify + sign costs the main
 * thread inline and handed to the pool, by how many jobs arrive per tick.
 *
 * For each burst size b (1, 4, 16, 64 request pairs per tick, a verify and a
 * sign each, ~200-byte messages) it runs bursts back to back for a fixed time
 * and reports, for `CryptoPool({ workers: 0 })` (inline, the bare library
 * baseline) and `CryptoPool({ workers: n, offloadUtilization: 0 })` (always
 * offloaded):
 * - main-thread µs per pair: event-loop active time ÷ pairs (what the network
 *   stack loses per request; offloading pays when this drops);
 * - pairs/s: throughput with the main thread doing nothing else;
 * - latency: µs from submitting a burst to its last answer.
 * The pool is worth it on a busy node when its main-thread cost is well under
 * the inline one; the thread hop's latency is why an idle node stays inline
 * (`offloadUtilization`, see `src/protocol/crypto-pool.ts`).
 *
 * Run: `./node_modules/.bin/node test/bench/crypto-pool.bench.ts [--quick] [--workers n]`
 * (`--quick`: 300 ms per cell). In-process by design: it measures the cost of
 * the hand-off itself; `peers.bench.ts` measures the node.
 */

import { availableParallelism } from 'node:os'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createCryptoPool, createSigner, ed25519PublicKeyOf } from '../../src/protocol/index.ts'
import type { CryptoPool } from '../../src/protocol/index.ts'

const { values: args } = parseArgs({ options: { quick: { type: 'boolean', default: false }, workers: { type: 'string' } } })
const CELL_MS = args.quick === true ? 300 : 2000
const WORKERS = Number(args.workers ?? Math.max(1, availableParallelism() - 1))
const BURSTS = [1, 4, 16, 64]

const key = await generateKeyPair('Ed25519')
const signer = createSigner(key)
const publicKey = ed25519PublicKeyOf(peerIdFromPrivateKey(key))
const payload = new Uint8Array(200).fill(0x33)
const signature = signer.sign(payload)

interface Cell { mainUs: number, pairsPerSec: number, latencyUs: number }

async function cell (pool: CryptoPool, burst: number): Promise<Cell> {
  let pairs = 0
  let latency = 0
  let bursts = 0
  const elu0 = performance.eventLoopUtilization()
  const t0 = performance.now()
  while (performance.now() - t0 < CELL_MS) {
    const started = performance.now()
    const jobs: Array<boolean | Uint8Array | Promise<boolean | Uint8Array>> = []
    for (let i = 0; i < burst; i++) {
      jobs.push(pool.verify(publicKey, payload, signature))
      jobs.push(pool.sign(signer, payload))
    }
    const answers = await Promise.all(jobs)
    if (answers[0] !== true) throw new Error('verify failed')
    latency += performance.now() - started
    bursts++
    pairs += burst
    // let the loop turn, as a node's would between network events
    await new Promise(resolve => setImmediate(resolve))
  }
  const wall = performance.now() - t0
  const elu = performance.eventLoopUtilization(elu0)
  return { mainUs: elu.active * 1000 / pairs, pairsPerSec: pairs * 1000 / wall, latencyUs: latency * 1000 / bursts }
}

const inline = createCryptoPool({ workers: 0 })
inline.start()
const pooled = createCryptoPool({ workers: WORKERS, offloadUtilization: 0 })
pooled.start()
// warm both (keys cached, worker spawned)
await cell(inline, 16)
await cell(pooled, 16)

console.log(`Ed25519 verify + sign pairs, ${availableParallelism()} cores, pool of ${WORKERS} worker(s), ${CELL_MS} ms per cell`)
console.log('')
console.log('| pairs per tick | inline main-thread µs/pair | pool main-thread µs/pair | ratio | inline pairs/s | pool pairs/s | inline latency µs | pool latency µs |')
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|')
for (const burst of BURSTS) {
  const a = await cell(inline, burst)
  const b = await cell(pooled, burst)
  const f = (x: number): string => x.toFixed(0)
  console.log(`| ${burst} | ${f(a.mainUs)} | ${f(b.mainUs)} | ${(b.mainUs / a.mainUs).toFixed(2)} | ${f(a.pairsPerSec)} | ${f(b.pairsPerSec)} | ${f(a.latencyUs)} | ${f(b.latencyUs)} |`)
}
await pooled.stop()
await inline.stop()
