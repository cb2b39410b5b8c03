/**
 * Committer failover and the tie-break between competing commits, on real
 * libp2p nodes on 127.0.0.1 with short heartbeat and failover timers.
 */

import assert from 'node:assert/strict'
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { after, describe, it } from 'node:test'
import { createCommit, encodeMlsMessage } from 'ts-mls'
import { createSigner, MLS_SIGNATURE_SCHEME } from '../../src/protocol/index.ts'
import { sealFrame, sendRawFrame } from '../../src/groups/index.ts'
import { encoder, epochOf, mesh, removeHome, startGroupNode, waitFor, guarded } from './groups-helpers.ts'
import type { GroupNode } from './groups-helpers.ts'
import type { GroupRecord } from '../../src/groups/store.ts'

const FAST = { heartbeatIntervalMs: 200, committerTimeoutMs: 2500, ackTimeoutMs: 2000, requestTimeoutMs: 3000, selfUpdateIntervalMs: 0 }
const rec = (n: GroupNode, id: string): GroupRecord => {
  const r = n.svc.groups.get(id)
  assert.ok(r, `${n.id} has no group ${id}`)
  return r
}
const lastHash = (n: GroupNode, id: string): string | undefined => n.svc.groups.get(id)?.last?.hash
const COMMITTER = fileURLToPath(new URL('../fixtures/group-committer.ts', import.meta.url))

describe('groups: committer failover and tie-break', () => {
  const all: GroupNode[] = []
  after(async () => {
    for (const n of all) {
      await n.stop().catch(() => {})
      await removeHome(n.home)
    }
  })

  async function team (n: number, init = FAST): Promise<{ nodes: GroupNode[], groupId: string }> {
    const nodes: GroupNode[] = []
    for (let i = 0; i < n; i++) nodes.push(await startGroupNode({ init }))
    all.push(...nodes)
    await mesh(nodes)
    const [a] = nodes as [GroupNode]
    const { groupId } = await a.svc.create({ name: 'failover' })
    for (const m of nodes.slice(1)) await a.svc.add({ groupId, peer: m.id })
    // a member that missed a commit catches up at the next heartbeat: allow two (within 40 s)
    await waitFor('everyone joined', () => nodes.every(m => epochOf(m, groupId) === n - 1), Math.min(40_000, Math.max(15_000, 2 * init.heartbeatIntervalMs + 5_000))).catch((err: unknown) => {
      for (const m of nodes) console.log(m.id, JSON.stringify(m.svc.list()), JSON.stringify(m.audit))
      throw err
    })
    return { nodes, groupId }
  }

  it('the committer dies mid-fan-out: the successor takes over and every member ends on one epoch', async () => {
    const { nodes, groupId } = await team(4)
    const [a, b, c, d] = nodes as [GroupNode, GroupNode, GroupNode, GroupNode]
    const epoch = epochOf(a, groupId) ?? 0
    // the commit reaches B and D; the frame to C hangs; then A's node is killed (no clean group stop)
    a.dialPolicy.set(c.id, 'hang')
    const removal = a.svc.remove({ groupId, peer: d.id }).catch((err: unknown) => err)
    await waitFor('B applied the commit', () => epochOf(b, groupId) === epoch + 1)
    await a.libp2p.stop()
    assert.equal(epochOf(c, groupId), epoch, 'C missed the commit')
    await waitFor('B took over', () => rec(b, groupId).committer === b.id && rec(c, groupId).committer === b.id, 20_000).catch((err: unknown) => {
      for (const [n, x] of [['B', b], ['C', c]] as const) console.log(n, JSON.stringify(x.svc.list()), Date.now() - rec(x, groupId).lastHeartbeat, JSON.stringify(x.audit))
      throw err
    })
    assert.equal(rec(b, groupId).term, 2)
    await waitFor('C caught up', () => epochOf(c, groupId) === epoch + 1 && lastHash(c, groupId) === lastHash(b, groupId), 20_000).catch((err: unknown) => {
      for (const [n, x] of [['B', b], ['C', c]] as const) console.log(n, JSON.stringify(x.svc.list()), lastHash(x, groupId), JSON.stringify(x.audit))
      throw err
    })
    await waitFor('D learnt its removal', () => d.svc.list().length === 0)
    assert.ok(b.audit.some(e => e.type === 'groups.takeover'))
    await b.svc.send({ groupId, body: await guarded('under the new committer'), contentType: 'text/plain' })
    await waitFor('C heard B', () => c.received.some(m => m.text === 'under the new committer'))
    // the successor commits too
    const e = await startGroupNode({ init: FAST })
    all.push(e)
    await mesh([b, c, e])
    await c.svc.add({ groupId, peer: e.id })
    await waitFor('E joined under B', () => epochOf(e, groupId) === epochOf(b, groupId) && epochOf(c, groupId) === epochOf(b, groupId)).catch((err: unknown) => {
      for (const [n, x] of [['B', b], ['C', c], ['E', e]] as const) console.log(n, JSON.stringify(x.svc.list()), lastHash(x, groupId), JSON.stringify(x.audit))
      throw err
    })
    await removal
  })

  it('the committer\'s process is SIGKILLed mid-fan-out: the successor takes over and every member ends on one epoch', async () => {
    const child = fork(COMMITTER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    let home = ''
    try {
      child.send({ init: FAST })
      const [{ ready }] = await once(child, 'message') as [{ ready: { id: string, addr: string, home: string } }]
      home = ready.home
      let seq = 0
      const call = async (cmd: string, args: Record<string, unknown> = {}): Promise<unknown> => {
        const n = ++seq
        const { promise, resolve, reject } = Promise.withResolvers<unknown>()
        const onMessage = (m: { n?: number, ok?: unknown, error?: string }): void => {
          if (m.n !== n) return
          child.off('message', onMessage)
          if (m.error !== undefined) reject(new Error(m.error))
          else resolve(m.ok)
        }
        child.on('message', onMessage)
        child.send({ n, cmd, ...args })
        return promise
      }
      const members: GroupNode[] = []
      for (let i = 0; i < 3; i++) members.push(await startGroupNode({ init: FAST }))
      all.push(...members)
      const [b, c, d] = members as [GroupNode, GroupNode, GroupNode]
      await mesh(members)
      await call('dial', { addrs: members.map(m => m.libp2p.getMultiaddrs()[0]?.toString()) })
      const groupId = String(await call('create', { name: 'killed' }))
      for (const m of members) await call('add', { groupId, peer: m.id })
      await waitFor('everyone joined', () => members.every(m => epochOf(m, groupId) === 3))
      // the remove's commit reaches B and D; the frame to C hangs; the committer's process dies before its acks are in
      await call('hang', { peer: c.id })
      await call('remove', { groupId, peer: d.id })
      await waitFor('B applied the commit', () => epochOf(b, groupId) === 4)
      child.kill('SIGKILL')
      await once(child, 'exit')
      assert.equal(epochOf(c, groupId), 3, 'C missed the commit')
      await waitFor('B took over', () => rec(b, groupId).committer === b.id && rec(c, groupId).committer === b.id, 20_000)
      assert.equal(rec(b, groupId).term, 2)
      assert.equal(rec(b, groupId).committer, b.id)
      await waitFor('C caught up', () => epochOf(c, groupId) === 4 && lastHash(c, groupId) === lastHash(b, groupId), 20_000)
      await waitFor('D learnt its removal', () => d.svc.list().length === 0)
      assert.deepEqual(b.svc.list()[0]?.members, [ready.id, b.id, c.id])
      await b.svc.send({ groupId, body: await guarded('after the kill'), contentType: 'text/plain' })
      await waitFor('C heard B', () => c.received.some(m => m.text === 'after the kill'))
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      if (home !== '') await removeHome(home)
    }
  })

  it('the committer dies after its add commit reached a member, before the Welcome: the successor sends it', async () => {
    const { nodes, groupId } = await team(3)
    const [a, b, c] = nodes as [GroupNode, GroupNode, GroupNode]
    const e = await startGroupNode({ init: FAST })
    all.push(e)
    await mesh([a, b, c, e])
    const epoch = epochOf(a, groupId) ?? 0
    a.dialPolicy.set(c.id, 'hang')
    const adding = a.svc.add({ groupId, peer: e.id }).catch((err: unknown) => err)
    await waitFor('B applied the add', () => epochOf(b, groupId) === epoch + 1)
    await a.libp2p.stop()
    await waitFor('E joined through B', () => epochOf(e, groupId) === epoch + 1 && rec(e, groupId).committer === b.id, 25_000)
    await waitFor('C caught up', () => epochOf(c, groupId) === epoch + 1, 25_000)
    await e.svc.send({ groupId, body: await guarded('hello from E'), contentType: 'text/plain' })
    await waitFor('B and C read E', () => b.received.some(m => m.text === 'hello from E') && c.received.some(m => m.text === 'hello from E'))
    await adding
  })

  it('two commits for one epoch: the lower hash wins whatever the arrival order', async () => {
    // no heartbeat during the test (it would tell B and C which commit A applied); so none either to catch up
    // a member whose ack came late while the team forms: generous ack and request timeouts instead (CI is loaded)
    const { nodes, groupId } = await team(3, { ...FAST, heartbeatIntervalMs: 60_000, committerTimeoutMs: 600_000, ackTimeoutMs: 15_000, requestTimeoutMs: 15_000 })
    const [a, b, c] = nodes as [GroupNode, GroupNode, GroupNode]
    const state = rec(a, groupId).state
    const epoch = epochOf(a, groupId) ?? 0
    const one = encodeMlsMessage((await createCommit({ state, cipherSuite: a.svc.cs }, {})).commit)
    const two = encodeMlsMessage((await createCommit({ state, cipherSuite: a.svc.cs }, {})).commit)
    const signer = createSigner(a.key, MLS_SIGNATURE_SCHEME)
    const gid = rec(a, groupId).groupId
    const send = async (to: GroupNode, mls: Uint8Array): Promise<void> => {
      await sendRawFrame(a.libp2p, to.libp2p.peerId, sealFrame(signer, to.libp2p.peerId, 'mls.commit', { groupId: gid, epoch, term: 1, mls }).bytes, AbortSignal.timeout(5000))
    }
    await send(b, one)
    await send(b, two)
    await send(c, two)
    await send(c, one)
    await waitFor('both applied a commit', () => epochOf(b, groupId) === epoch + 1 && epochOf(c, groupId) === epoch + 1)
    const { createHash } = await import('node:crypto')
    const h = (x: Uint8Array): string => createHash('sha256').update(x).digest('hex')
    const winner = [h(one), h(two)].sort()[0]
    assert.equal(lastHash(b, groupId), winner)
    assert.equal(lastHash(c, groupId), winner)
    assert.ok(b.audit.some(e => e.type === 'groups.rollback') || c.audit.some(e => e.type === 'groups.rollback'))
  })

  it('two nodes that both believe they are committer converge: the higher term wins', async () => {
    const { nodes, groupId } = await team(3)
    const [a, b, c] = nodes as [GroupNode, GroupNode, GroupNode]
    const epoch = epochOf(a, groupId) ?? 0
    // partition A from B: B stops hearing A, takes over with term 2; A still believes it commits for term 1
    a.dialPolicy.set(b.id, 'drop')
    b.dialPolicy.set(a.id, 'drop')
    await waitFor('B took over', () => rec(b, groupId).committer === b.id, 20_000)
    // both commit for the same epoch (a self-update each)
    await Promise.allSettled([a.svc.selfUpdate(rec(a, groupId)), b.svc.selfUpdate(rec(b, groupId))])
    // heal the partition
    a.dialPolicy.clear()
    b.dialPolicy.clear()
    await waitFor('every node on B\'s branch', () => {
      const h = lastHash(b, groupId)
      return nodes.every(n => rec(n, groupId).committer === b.id && lastHash(n, groupId) === h && epochOf(n, groupId) === epochOf(b, groupId))
    }, 25_000)
    assert.equal(rec(a, groupId).term, 2)
    assert.ok((epochOf(b, groupId) ?? 0) > epoch)
    await a.svc.send({ groupId, body: await guarded('back on one branch'), contentType: 'text/plain' })
    await waitFor('B and C read A', () => b.received.some(m => m.text === 'back on one branch') && c.received.some(m => m.text === 'back on one branch'))
  })
})
