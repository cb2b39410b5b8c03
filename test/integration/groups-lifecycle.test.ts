/**
 * Groups on real nodes: trust revocation removes a member, an offline member
 * gets its messages on reconnect, and a node that stopped uncleanly moves the
 * group to a new epoch before it sends again.
 */

import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { encoder, epochOf, mesh, removeHome, startGroupNode, waitFor, guarded } from './groups-helpers.ts'
import type { GroupNode } from './groups-helpers.ts'

const FAST = { heartbeatIntervalMs: 200, committerTimeoutMs: 60_000, ackTimeoutMs: 1500, requestTimeoutMs: 2000, selfUpdateIntervalMs: 0, saveDelayMs: 20 }

describe('groups: revocation, offline delivery, unclean restart', () => {
  const all: GroupNode[] = []
  let a: GroupNode, b: GroupNode, c: GroupNode
  let groupId: string
  after(async () => {
    for (const n of all) {
      await n.stop().catch(() => {})
      await removeHome(n.home)
    }
  })

  it('forms a group', async () => {
    a = await startGroupNode({ init: FAST })
    b = await startGroupNode({ init: FAST })
    c = await startGroupNode({ init: FAST })
    all.push(a, b, c)
    await mesh([a, b, c])
    groupId = (await a.svc.create({ name: 'lifecycle' })).groupId
    await a.svc.add({ groupId, peer: b.id })
    await a.svc.add({ groupId, peer: c.id })
    await waitFor('joined', () => epochOf(b, groupId) === 2 && epochOf(c, groupId) === 2)
  })

  it('a member offline when a message is sent gets it when it is reachable again', async () => {
    a.dialPolicy.set(c.id, 'drop')
    const out = await a.svc.send({ groupId, body: await guarded('while you were away'), contentType: 'text/plain' })
    assert.deepEqual([out.delivered, out.queued], [1, 1])
    await new Promise(resolve => setTimeout(resolve, 300))
    assert.ok(!c.received.some(m => m.text === 'while you were away'))
    a.dialPolicy.clear()
    await waitFor('C got it on retry', () => c.received.some(m => m.text === 'while you were away'), 5000)
  })

  it('a node that stopped uncleanly refreshes the epoch before it sends again', async () => {
    await b.svc.send({ groupId, body: await guarded('before the crash'), contentType: 'text/plain' })
    await new Promise(resolve => setTimeout(resolve, 100))
    const epoch = epochOf(a, groupId) ?? 0
    // B's node dies: no clean group stop, so its state file says it was running
    await b.libp2p.stop()
    const b2 = await startGroupNode({ key: b.key, home: b.home, init: FAST })
    all.push(b2)
    await mesh([a, b2, c])
    await waitFor('a new epoch, asked for by B', () => epochOf(a, groupId) === epoch + 1 && epochOf(b2, groupId) === epoch + 1 && epochOf(c, groupId) === epoch + 1, 10_000)
    await b2.svc.send({ groupId, body: await guarded('after the crash'), contentType: 'text/plain' })
    await waitFor('A heard B after the crash', () => a.received.some(m => m.text === 'after the crash'))
    b = b2
  })

  it('revoking trust in a member removes it (asked of the committer by a member)', async () => {
    await b.svc.onTrustRevoked(c.id)
    await waitFor('C removed', () => c.svc.list().length === 0 && !(a.svc.list()[0]?.members.includes(c.id) ?? true))
    assert.ok(b.audit.some(e => e.type === 'groups.removed' && e.peer === c.id))
    await waitFor('B on the new epoch', () => epochOf(b, groupId) === epochOf(a, groupId))
  })

  it('the committer leaves: the next member commits its removal and carries on', async () => {
    await a.svc.leave({ groupId })
    assert.equal(a.svc.list().length, 0)
    await waitFor('B alone and committer', () => {
      const g = b.svc.list()[0]
      return g?.committer === b.id && g.members.length === 1 && g.members[0] === b.id
    })
  })
})
