/**
 * Persist first, then apply: a trust change shows to readers (the gates,
 * `trust.list`, the pending list) only once it is on disk, while the
 * decisions that build on it and the pending queue's admission see it at once.
 */

import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, it } from 'node:test'
import { StateWriteError } from '../../../src/errors/index.ts'
import { TrustRecords } from '../../../src/trust/records.ts'
import type { StoredPeer } from '../../../src/trust/store.ts'
import type { TrustEvents } from '../../../src/trust/index.ts'

const PEER = '12D3KooWLRPJAA5o6PzVGr7RMvd4GsM6hW5Ww3pyNRJdLX4Uvh4z'

function record (state: StoredPeer['state'], since = Date.now()): StoredPeer {
  return { state, since, updatedAt: since, reason: 'a reason', direction: state === 'pending-inbound' ? 'inbound' : 'none', via: 'request' }
}

describe('TrustRecords: persist first, then apply', () => {
  let home: string
  let records: TrustRecords

  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'an-records-'))
    records = new TrustRecords({
      home,
      now: () => Date.now(),
      staticPeers: new Set(),
      maxPending: 10,
      maxPendingPerSource: 5,
      pendingTtlMs: 60_000,
      emitter: new EventEmitter<TrustEvents>(),
      audit: async () => {}
    })
    await records.load()
  })

  afterEach(async () => {
    await records.flush()
    await rm(home, { recursive: true, force: true })
  })

  it('a pending request is listed once its journal line is written; admission counts it at once', async () => {
    const saving = records.save(PEER, record('pending-inbound'), 'ip4/10.0.0')
    // not on disk yet: no reader sees it
    assert.equal(records.effectiveState(PEER), undefined)
    assert.deepEqual(records.pendingList(), [])
    assert.equal(records.entryOf(PEER), undefined)
    // a decision made now builds on it, and the queue holds its place
    assert.equal(records.latestState(PEER), 'pending-inbound')
    assert.equal(records.queue.countFor('ip4/10.0.0'), 1)
    await saving
    assert.equal(records.effectiveState(PEER), 'pending-inbound')
    assert.deepEqual(records.pendingList().map(p => p.peerId), [PEER])
  })

  it('a decision applies once trust.json holds it', async () => {
    const saving = records.save(PEER, record('trusted'))
    assert.equal(records.effectiveState(PEER), undefined)
    await saving
    assert.equal(records.effectiveState(PEER), 'trusted')
    const doc = JSON.parse(await readFile(join(home, 'trust.json'), 'utf8'))
    assert.equal(doc.peers[PEER].state, 'trusted')
  })

  it('changes to one peer in flight together apply in the order they were made', async () => {
    const first = records.save(PEER, record('pending-inbound'))
    const second = records.save(PEER, record('trusted'))
    assert.equal(records.latestState(PEER), 'trusted')
    await Promise.all([first, second])
    assert.equal(records.effectiveState(PEER), 'trusted')
    assert.equal(records.queue.size, 0)
    assert.deepEqual(records.pendingList(), [])
  })

  it('a change that cannot be written is not applied, and the queue forgets it', async () => {
    await records.save(PEER, record('pending-inbound'), 'ip4/10.0.0')
    // trust.json cannot be replaced by a file: the approval's write fails
    await mkdir(join(home, 'trust.json'))
    await assert.rejects(records.save(PEER, record('trusted')), StateWriteError)
    assert.equal(records.effectiveState(PEER), 'pending-inbound')
    assert.equal(records.latestState(PEER), 'pending-inbound')
    assert.equal(records.queue.sourceFor(PEER), 'ip4/10.0.0')
    await rm(join(home, 'trust.json'), { recursive: true })
  })

  it('a pending request past its TTL is hidden at once, before its removal is written', async () => {
    await records.save(PEER, record('pending-inbound', Date.now() - 120_000))
    assert.equal(records.effectiveState(PEER), undefined)
    assert.deepEqual(records.pendingList(), [])
    await records.expire()
    assert.equal(records.peers.has(PEER), false)
    assert.equal(records.queue.size, 0)
  })
})
