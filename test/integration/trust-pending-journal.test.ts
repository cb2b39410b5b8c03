import assert from 'node:assert/strict'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CorruptTrustStoreError, PENDING_FILE, TRUST_FILE } from '../../src/trust/index.ts'
import { makeHome, removeHome, startNode } from './trust-helpers.ts'

async function peerId (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}

const record = (state: string, reason: string, since = Date.now()): Record<string, unknown> =>
  ({ state, since, updatedAt: since, reason, direction: state === 'pending-inbound' ? 'inbound' : 'none', via: 'request' })

/**
 * The pending journal on disk (real nodes loading the files): a crash in the
 * middle of an append, a damaged line, a decision written before the
 * journal's `del`, and a trust.json from before the journal.
 */
describe('the pending-request journal', () => {
  it('a torn last line is ignored; the entries before it load and the journal is compacted', async () => {
    const home = await makeHome()
    try {
      const [p1, p2] = [await peerId(), await peerId()]
      await writeFile(join(home, PENDING_FILE),
        JSON.stringify({ put: p1, source: 'ip4/203.0.113.0/24', record: record('pending-inbound', 'first') }) + '\n' +
        JSON.stringify({ put: p2, source: 'ip4/198.51.100.0/24', record: record('pending-inbound', 'second') }) + '\n' +
        JSON.stringify({ del: p2 }) + '\n' +
        '{"put":"' + p1.slice(0, 10), { mode: 0o600 })
      const node = await startNode({ home })
      try {
        assert.deepEqual(node.trust.pending().map(p => [p.peerId, p.reason]), [[p1, 'first']])
        assert.equal(node.trust.stats().pendingSources, 1)
        const lines = (await readFile(join(home, PENDING_FILE), 'utf8')).trim().split('\n')
        assert.equal(lines.length, 1, 'compacted to the live entry')
        assert.equal((await stat(join(home, PENDING_FILE))).mode & 0o777, 0o600)
      } finally {
        await node.stop()
      }
      // a complete last line without its newline (a crash between the two) is rewritten before the next append
      const [p3, p4] = [await peerId(), await peerId()]
      await writeFile(join(home, PENDING_FILE),
        JSON.stringify({ put: p3, source: 'unknown', record: record('pending-inbound', 'third') }) + '\n' +
        JSON.stringify({ put: p4, source: 'unknown', record: record('pending-inbound', 'fourth') }), { mode: 0o600 })
      const again = await startNode({ home })
      try {
        assert.deepEqual(again.trust.pending().map(p => p.peerId).sort(), [p3, p4].sort())
        await again.trust.forget(p3)
      } finally {
        await again.stop()
      }
      const after = await startNode({ home })
      try {
        assert.deepEqual(after.trust.pending().map(p => p.peerId), [p4], 'the del went on a line of its own')
      } finally {
        await after.stop()
      }
    } finally {
      await removeHome(home)
    }
  })

  it('a damaged line before the last fails the start with CorruptTrustStore and leaves the file as it was', async () => {
    const home = await makeHome()
    try {
      const p1 = await peerId()
      const text = 'not json\n' + JSON.stringify({ put: p1, source: 'unknown', record: record('pending-inbound', 'x') }) + '\n'
      await writeFile(join(home, PENDING_FILE), text, { mode: 0o600 })
      await assert.rejects(startNode({ home }), CorruptTrustStoreError)
      assert.equal(await readFile(join(home, PENDING_FILE), 'utf8'), text)
      // a record in the journal that is not a pending request is damage too
      await writeFile(join(home, PENDING_FILE), JSON.stringify({ put: p1, source: 'unknown', record: record('trusted', 'x') }) + '\n{}\n', { mode: 0o600 })
      await assert.rejects(startNode({ home }), CorruptTrustStoreError)
    } finally {
      await removeHome(home)
    }
  })

  it('a decision in trust.json wins over a pending entry the journal still holds (stop between the two writes)', async () => {
    const home = await makeHome()
    try {
      const p1 = await peerId()
      await writeFile(join(home, TRUST_FILE), JSON.stringify({ version: 1, peers: { [p1]: record('rejected', 'x') }, invites: {} }), { mode: 0o600 })
      await writeFile(join(home, PENDING_FILE), JSON.stringify({ put: p1, source: 'unknown', record: record('pending-inbound', 'x') }) + '\n', { mode: 0o600 })
      const node = await startNode({ home })
      try {
        assert.equal(node.trust.stateOf(p1), 'rejected')
        assert.deepEqual(node.trust.pending(), [])
      } finally {
        await node.stop()
      }
    } finally {
      await removeHome(home)
    }
  })

  it('pending requests an older version kept in trust.json move to the journal at start', async () => {
    const home = await makeHome()
    try {
      const [p1, p2] = [await peerId(), await peerId()]
      await writeFile(join(home, TRUST_FILE), JSON.stringify({ version: 1, peers: { [p1]: record('pending-inbound', 'old style'), [p2]: record('trusted', 'kept') }, invites: {} }), { mode: 0o600 })
      const node = await startNode({ home })
      try {
        assert.deepEqual(node.trust.pending().map(p => p.peerId), [p1])
        const stored = JSON.parse(await readFile(join(home, TRUST_FILE), 'utf8')) as { peers: Record<string, unknown> }
        assert.deepEqual(Object.keys(stored.peers), [p2])
        const journal = (await readFile(join(home, PENDING_FILE), 'utf8')).trim().split('\n').map(l => JSON.parse(l) as { put?: string, source?: string })
        assert.deepEqual(journal.map(e => [e.put, e.source]), [[p1, 'unknown']])
        // a decision on it: trust.json gets the record, the journal a del
        await node.trust.approve(p1).catch(() => {})
        assert.equal(node.trust.stateOf(p1), 'trusted')
        assert.ok((await readFile(join(home, PENDING_FILE), 'utf8')).includes(`{"del":"${p1}"}`))
      } finally {
        await node.stop()
      }
      // and it stays decided across a restart
      const again = await startNode({ home })
      try {
        assert.equal(again.trust.stateOf(p1), 'trusted')
        assert.deepEqual(again.trust.pending(), [])
      } finally {
        await again.stop()
      }
    } finally {
      await removeHome(home)
    }
  })
})
