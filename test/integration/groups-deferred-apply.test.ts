/**
 * A member processes an acknowledged commit `applyDelayMs` after its ack,
 * or at once when anything else needs the group. Here B and C wait ten
 * minutes by the clock (and tick once a minute), so every step below that
 * moves them on is the "needed sooner" path: a joiner's status query, a
 * message in the new epoch, a send of their own, the next commit, a stop.
 */

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { epochOf, guarded, mesh, removeHome, startGroupNode, waitFor } from './groups-helpers.ts'
import type { GroupNode } from './groups-helpers.ts'

const lazy = { applyDelayMs: 600_000, heartbeatIntervalMs: 60_000 }
const rejected = (n: GroupNode): unknown[] => n.audit.filter(e => e.type === 'groups.rejected')

describe('groups: deferred processing of acknowledged commits', () => {
  let a: GroupNode, b: GroupNode, c: GroupNode, d: GroupNode
  let groupId: string

  before(async () => {
    a = await startGroupNode()
    b = await startGroupNode({ init: lazy })
    c = await startGroupNode({ init: lazy })
    d = await startGroupNode()
    await mesh([a, b, c, d])
    groupId = (await a.svc.create({ name: 'deferred' })).groupId
    await a.svc.add({ groupId, peer: b.id })
    await waitFor('B joined at epoch 1', () => epochOf(b, groupId) === 1)
  })

  after(async () => {
    for (const n of [a, b, c, d]) {
      await n?.stop().catch(() => {})
      if (n !== undefined) await removeHome(n.home)
    }
  })

  it('a joiner\'s status query makes a member that acknowledged the commit process it: the Welcome is taken at once', async () => {
    await a.svc.add({ groupId, peer: c.id })
    await waitFor('C joined at epoch 2', () => epochOf(c, groupId) === 2)
    assert.equal(epochOf(b, groupId), 2)
    // the first Welcome was taken: no WelcomeBeforeCommit at C (and its retry), no NotMember at B
    for (const n of [a, b, c]) assert.deepEqual(rejected(n), [])
  })

  it('the ack goes out at once and the processing waits', async () => {
    await a.svc.add({ groupId, peer: d.id })
    await waitFor('D joined at epoch 3', () => epochOf(d, groupId) === 3)
    await a.svc.remove({ groupId, peer: d.id })
    assert.equal(epochOf(a, groupId), 4, 'the committer applied after every ack')
    assert.equal(epochOf(b, groupId), 3, 'B acknowledged and has not processed yet')
    assert.equal(epochOf(c, groupId), 3, 'C acknowledged and has not processed yet')
  })

  it('a send of the member\'s own processes the commit first; a message of the new epoch does too at the receiver', async () => {
    await c.svc.send({ groupId, body: await guarded('from C'), contentType: 'text/plain' })
    assert.equal(epochOf(c, groupId), 4)
    await waitFor('A and B received C\'s message at epoch 4', () =>
      [a, b].every(n => n.received.some(m => m.text === 'from C' && m.epoch === 4)))
    assert.equal(epochOf(b, groupId), 4)
  })

  it('the next commit processes the queued one first: no member falls behind; a removed member\'s send is refused', async () => {
    await a.svc.remove({ groupId, peer: c.id })
    assert.equal(epochOf(b, groupId), 4, 'B holds the commit to epoch 5')
    // C holds its own removal: a send processes it first and is refused, nothing goes out
    assert.equal(epochOf(c, groupId), 4)
    await assert.rejects(c.svc.send({ groupId, body: await guarded('after my removal'), contentType: 'text/plain' }), { code: 'UnknownGroup' })
    assert.deepEqual(c.svc.list(), [])
    await a.svc.add({ groupId, peer: d.id })
    assert.equal(epochOf(a, groupId), 6)
    await waitFor('D joined again at epoch 6', () => epochOf(d, groupId) === 6)
    assert.equal(epochOf(b, groupId), 6, 'D\'s status query moved B on')
    assert.ok(![a, b, d].some(n => n.received.some(m => m.text === 'after my removal')))
    for (const n of [a, b, d]) assert.deepEqual(rejected(n), [])
  })

  it('a local membership call checks against the processed commit', async () => {
    assert.equal(epochOf(b, groupId), 6)
    await a.svc.remove({ groupId, peer: d.id })
    await a.svc.add({ groupId, peer: c.id })
    await waitFor('C joined again at epoch 8', () => epochOf(c, groupId) === 8)
    // C's status query moved B to 8; D's removal and C's add are both processed there
    assert.equal(epochOf(b, groupId), 8)
    await a.svc.remove({ groupId, peer: c.id })
    assert.equal(epochOf(b, groupId), 8, 'B holds the commit that removed C')
    // B asked to remove C, who is gone in the commit B holds: the call sees that, not the old member list
    await assert.rejects(b.svc.remove({ groupId, peer: c.id }), { code: 'NotMember' })
    assert.equal(epochOf(b, groupId), 9)
  })

  it('a stop does not wait out the delay and keeps the processed commit', async () => {
    await a.svc.add({ groupId, peer: d.id })
    await waitFor('D joined again at epoch 10', () => epochOf(d, groupId) === 10)
    await a.svc.remove({ groupId, peer: d.id })
    assert.equal(epochOf(a, groupId), 11)
    assert.equal(epochOf(b, groupId), 10, 'B holds the commit unprocessed')
    const started = Date.now()
    await b.stop()
    assert.ok(Date.now() - started < 5000, `stop took ${Date.now() - started} ms`)
    b = await startGroupNode({ key: b.key, home: b.home, init: lazy })
    assert.equal(epochOf(b, groupId), 11, 'the commit was processed and saved at the stop')
    assert.deepEqual(b.svc.list()[0]?.members, [a.id, b.id])
  })
})
