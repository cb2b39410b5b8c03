/**
 * secretlint's profiler is off: scanning leaves nothing on Node's global
 * performance timeline. With it on, every scan added marks and measures that
 * nobody cleared (a million entries in a soak: the node's heap grew ~50 KB
 * per message).
 */
import assert from 'node:assert/strict'
import { performance } from 'node:perf_hooks'
import { describe, it } from 'node:test'
import { scanSecrets } from '../../../src/guard/secrets.ts'

describe('secret scanning and the performance timeline', () => {
  it('200 scans that wake secretlint add no performance entries', async () => {
    const before = performance.getEntries().length
    for (let i = 0; i < 200; i++) {
      const hits = await scanSecrets(`aws key AKIAIOSFODNN7EXAMPL${i % 10} and more text`, true)
      assert.ok(Array.isArray(hits))
    }
    // let any deferred measure run
    await new Promise(resolve => setImmediate(resolve))
    assert.equal(performance.getEntries().length, before)
  })
})
