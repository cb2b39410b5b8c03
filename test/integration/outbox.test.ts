import assert from 'node:assert/strict'
import { sources } from '../helpers/sources.ts'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import { OUTBOUND_KINDS } from '../../src/outbox/index.ts'
import type { RunningNode } from '../helpers/cli.ts'
import type { OutboundKind } from '../../src/outbox/index.ts'

type Counts = Record<OutboundKind, number>

const root = new URL('../../', import.meta.url).pathname


describe('every piece of agent-authored content passes the outbox exactly once', () => {
  let homeA: string
  let homeB: string
  let nodeA: RunningNode
  let nodeB: RunningNode
  let peerA: string
  let peerB: string
  let x: RawSocket
  let y: RawSocket
  let seq = 0

  const admitted = async (socket: RawSocket): Promise<Counts> => {
    const id = `m${seq++}`
    socket.send({ jsonrpc: '2.0', id, method: 'node.metrics' })
    return (await socket.next(m => m.id === id)).result.outbox.admitted as Counts
  }
  const call = async (socket: RawSocket, method: string, params: unknown): Promise<any> => {
    const id = `c${seq++}`
    socket.send({ jsonrpc: '2.0', id, method, params })
    return socket.next(m => m.id === id)
  }
  /** counts after − before, only the kinds that moved */
  const moved = (before: Counts, after: Counts): Partial<Counts> => {
    const out: Partial<Counts> = {}
    for (const kind of OUTBOUND_KINDS) if (after[kind] !== before[kind]) out[kind] = after[kind] - before[kind]
    return out
  }

  before(async () => {
    homeA = await makeHome()
    homeB = await makeHome()
    // both DHT servers so a card publication has somewhere to go on loopback
    const config = join(homeA, '..', `outbox-${process.pid}.json`)
    await writeFile(config, JSON.stringify({ dht: { mode: 'server' } }))
    nodeA = await startNode(homeA, ['--config', config])
    nodeB = await startNode(homeB, ['--config', config])
    const idB = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeB])
    peerB = idB.peerId
    peerA = (await runJson<{ peerId: string }>(['id', '--home', homeA])).peerId
    await runJson(['connect', idB.addresses[0] ?? '', '--home', homeA])
    x = await RawSocket.connect(join(homeA, 'agentnet.sock'))
    y = await RawSocket.connect(join(homeB, 'agentnet.sock'))
  })

  after(async () => {
    x.close()
    y.close()
    await nodeA.stop()
    await nodeB.stop()
    await removeHome(homeA)
    await removeHome(homeB)
  })

  it('a trust request\'s reason', async () => {
    const before = await admitted(x)
    const result = await call(x, 'trust.request', { peer: peerB, reason: 'outbox test' })
    assert.equal(result.result.state, 'pending-outbound')
    assert.deepEqual(moved(before, await admitted(x)), { 'trust-reason': 1 })
    const pending = (await call(y, 'trust.pending', {})).result as Array<{ peerId: string, reason: string }>
    assert.equal(pending.find(p => p.peerId === peerA)?.reason, 'outbox test')
    // approving sends no agent-authored text
    const beforeB = await admitted(y)
    assert.equal((await call(y, 'trust.approve', { peer: peerA })).result.state, 'trusted')
    assert.deepEqual(moved(beforeB, await admitted(y)), {})
  })

  it('msg.send (request) and msg.reply (body)', async () => {
    assert.ok((await call(y, 'service.register', { service: 'echo' })).result)
    const [beforeA, beforeB] = [await admitted(x), await admitted(y)]
    const id = `s${seq++}`
    x.send({ jsonrpc: '2.0', id, method: 'msg.send', params: { to: peerB, service: 'echo', body: 'ping' } })
    const note = await y.next(m => m.method === 'msg.received')
    assert.equal((await call(y, 'msg.reply', { id: note.params.id, body: 'pong' })).result.ok, true)
    assert.equal((await x.next(m => m.id === id)).result.body, 'pong')
    assert.deepEqual(moved(beforeA, await admitted(x)), { request: 1 })
    assert.deepEqual(moved(beforeB, await admitted(y)), { reply: 1 })
  })

  it('msg.reply (error text)', async () => {
    const [beforeA, beforeB] = [await admitted(x), await admitted(y)]
    const id = `s${seq++}`
    x.send({ jsonrpc: '2.0', id, method: 'msg.send', params: { to: peerB, service: 'echo', body: 'fail please' } })
    const note = await y.next(m => m.method === 'msg.received')
    assert.equal((await call(y, 'msg.reply', { id: note.params.id, error: { code: 'OutOfStock', message: 'nothing left' } })).result.ok, true)
    const answer = await x.next(m => m.id === id)
    assert.equal(answer.error.data.code, 'OutOfStock')
    assert.equal(answer.error.message, 'nothing left')
    assert.deepEqual(moved(beforeA, await admitted(x)), { request: 1 })
    assert.deepEqual(moved(beforeB, await admitted(y)), { error: 1 })
  })

  it('msg.send (one-way)', async () => {
    const before = await admitted(x)
    const result = await call(x, 'msg.send', { to: peerB, service: 'echo', body: 'fyi', oneway: true })
    assert.equal(result.result.accepted, true)
    assert.equal((await y.next(m => m.method === 'msg.received')).params.kind, 'oneway')
    assert.deepEqual(moved(before, await admitted(x)), { oneway: 1 })
  })

  it('card.publish', async () => {
    const before = await admitted(x)
    const result = await call(x, 'card.publish', { name: 'outbox agent', services: ['echo'] })
    assert.equal(result.result?.name, 'outbox agent', JSON.stringify(result.error))
    assert.deepEqual(moved(before, await admitted(x)), { card: 1 })
  })

  it('only the outbox makes a Guarded value', async () => {
    for (const file of await sources(join(root, 'src'))) {
      if (file.endsWith('src/outbox/index.ts')) continue
      assert.doesNotMatch(await readFile(file, 'utf8'), /as (Guarded\w*|GuardedBody|GuardedText)\b/, `${file} casts to a Guarded type`)
    }
  })
})
