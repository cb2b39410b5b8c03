import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { ReplayCache } from '../../src/protocol/index.ts'
import { loadReplayCache, REPLAY_FILE, saveReplayCache } from '../../src/protocol/replay-state.ts'

const options = { windowMs: 60_000, maxSkewMs: 30_000, afterCrash: false }

describe('replay cache across restarts', () => {
  it('a clean snapshot is restored once, then consumed', async () => {
    const home = await mkdtemp(join(tmpdir(), 'an-replay-'))
    try {
      const cache = new ReplayCache({ windowMs: 60_000 })
      const now = Date.now()
      cache.checkAndRecord('peer', new Uint8Array(16).fill(7), now, now)
      await saveReplayCache(home, cache)
      const restored = await loadReplayCache(home, options)
      assert.throws(() => restored.checkAndRecord('peer', new Uint8Array(16).fill(7), now, Date.now()), { code: 'Replay' })
      assert.equal(restored.notBefore, 0)
      await assert.rejects(stat(join(home, REPLAY_FILE)), /ENOENT/)
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })

  it('after a crash, an unreadable or a corrupt snapshot, refuses everything up to start + skew', async () => {
    const home = await mkdtemp(join(tmpdir(), 'an-replay-'))
    try {
      const crash = await loadReplayCache(home, { ...options, afterCrash: true })
      assert.ok(crash.notBefore >= Date.now() + 29_000)

      await writeFile(join(home, REPLAY_FILE), 'garbage')
      const corrupt = await loadReplayCache(home, options)
      assert.ok(corrupt.notBefore >= Date.now() + 29_000)

      // a snapshot path that cannot be read (here: a directory) is no clean snapshot either
      await mkdir(join(home, REPLAY_FILE, 'x'), { recursive: true })
      const unreadable = await loadReplayCache(home, options)
      assert.ok(unreadable.notBefore >= Date.now() + 29_000)
      await assert.rejects(saveReplayCache(home, new ReplayCache()))
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })

  it('a first start with no snapshot and no crash accepts messages at once', async () => {
    const home = await mkdtemp(join(tmpdir(), 'an-replay-'))
    try {
      const fresh = await loadReplayCache(home, options)
      assert.equal(fresh.notBefore, 0)
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })
})
