import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { BIN, makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { RunningNode } from '../helpers/cli.ts'

describe('agents on two nodes talk through plain IPC sockets', () => {
  let homeA: string
  let homeB: string
  let nodeA: RunningNode
  let nodeB: RunningNode
  let peerB: string
  let peerA: string
  let x: RawSocket
  let y: RawSocket
  let z: RawSocket

  before(async () => {
    homeA = await makeHome()
    homeB = await makeHome()
    nodeA = await startNode(homeA)
    nodeB = await startNode(homeB)
    const idB = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeB])
    peerB = idB.peerId
    peerA = (await runJson<{ peerId: string }>(['id', '--home', homeA])).peerId
    await runJson(['connect', idB.addresses[0] ?? '', '--home', homeA])
    // private by default: A asks B for trust, B's operator approves
    assert.equal((await runJson<{ state: string }>(['trust', 'request', peerB, '--reason', 'integration test', '--home', homeA])).state, 'pending-outbound')
    assert.equal((await runJson<{ state: string }>(['trust', 'approve', peerA, '--home', homeB])).state, 'trusted')
    x = await RawSocket.connect(join(homeA, 'agentnet.sock'))
    y = await RawSocket.connect(join(homeB, 'agentnet.sock'))
    z = await RawSocket.connect(join(homeB, 'agentnet.sock'))
  })

  after(async () => {
    x.close()
    y.close()
    z.close()
    await nodeA.stop()
    await nodeB.stop()
    await removeHome(homeA)
    await removeHome(homeB)
  })

  it('X on A sends to echo served by Y on B and gets the reply, in the form it sent', async () => {
    assert.deepEqual((await y.call('service.register', { service: 'echo' })).result, { service: 'echo' })
    for (const body of ['hello, agent', { task: 'sum', args: [1, 2] }, 42, null]) {
      x.send({ jsonrpc: '2.0', id: 'req', method: 'msg.send', params: { to: peerB, service: 'echo', body } })
      const note = await y.next(m => m.method === 'msg.received')
      assert.equal(note.params.from, peerA)
      assert.equal(note.params.service, 'echo')
      assert.equal(note.params.kind, 'request')
      assert.deepEqual(note.params.body, body)
      y.send({ jsonrpc: '2.0', id: 'rep', method: 'msg.reply', params: { id: note.params.id, body: note.params.body } })
      assert.deepEqual((await y.next(m => m.id === 'rep')).result, { ok: true })
      const reply = await x.next(m => m.id === 'req')
      assert.equal(reply.result.from, peerB)
      assert.equal(reply.result.id, note.params.requestId)
      assert.deepEqual(reply.result.body, body)
    }
  })

  it('bytes travel as bodyBase64 both ways', async () => {
    const bytes = Buffer.from([0, 1, 2, 255, 254]).toString('base64')
    x.send({ jsonrpc: '2.0', id: 'b64', method: 'msg.send', params: { to: peerB, service: 'echo', bodyBase64: bytes } })
    const note = await y.next(m => m.method === 'msg.received')
    assert.equal(note.params.bodyBase64, bytes)
    assert.equal(note.params.contentType, 'application/octet-stream')
    await y.call('msg.reply', { id: note.params.id, bodyBase64: note.params.bodyBase64 })
    assert.equal((await x.next(m => m.id === 'b64')).result.bodyBase64, bytes)
  })

  it('a service error reaches the sender with its code', async () => {
    x.send({ jsonrpc: '2.0', id: 'err', method: 'msg.send', params: { to: peerB, service: 'echo', body: 'fail please' } })
    const note = await y.next(m => m.method === 'msg.received')
    await y.call('msg.reply', { id: note.params.id, error: { code: 'Overloaded', message: 'try later' } })
    const reply = await x.next(m => m.id === 'err')
    assert.equal(reply.error.data.code, 'Overloaded')
    assert.match(reply.error.message, /try later/)
  })

  it('one-way messages resolve once the receiving node accepted them', async () => {
    const sent = await x.call('msg.send', { to: peerB, service: 'echo', body: 'fire and forget', oneway: true })
    assert.equal(sent.result.accepted, true)
    const note = await y.next(m => m.method === 'msg.received')
    assert.equal(note.params.kind, 'oneway')
    assert.equal(note.params.body, 'fire and forget')
    assert.equal(sent.result.id, note.params.requestId)
  })

  it('a service name is held by one connection and freed when it disconnects', async () => {
    const taken = await z.call('service.register', { service: 'echo' })
    assert.equal(taken.error.data.code, 'ServiceTaken')
    // several agents with their own services share node B
    assert.deepEqual((await z.call('service.register', { service: 'translate' })).result, { service: 'translate' })
    x.send({ jsonrpc: '2.0', id: 'tr', method: 'msg.send', params: { to: peerB, service: 'translate', body: 'bonjour' } })
    const note = await z.next(m => m.method === 'msg.received')
    await z.call('msg.reply', { id: note.params.id, body: 'hello' })
    assert.equal((await x.next(m => m.id === 'tr')).result.body, 'hello')

    z.close()
    await new Promise(resolve => setTimeout(resolve, 200))
    const gone = await x.call('msg.send', { to: peerB, service: 'translate', body: 'anyone?' })
    assert.equal(gone.error.data.code, 'NoSuchService')
    z = await RawSocket.connect(join(homeB, 'agentnet.sock'))
    assert.deepEqual((await z.call('service.register', { service: 'translate' })).result, { service: 'translate' })
  })

  it('a request to a service nobody registered fails fast with NoSuchService', async () => {
    const started = Date.now()
    const reply = await x.call('msg.send', { to: peerB, service: 'nobody-here', body: 'hi' })
    assert.equal(reply.error.data.code, 'NoSuchService')
    assert.ok(Date.now() - started < 2000)
  })

  it('bad msg.send params are JSON-RPC errors', async () => {
    assert.equal((await x.call('msg.send', { service: 'echo', body: 'x' })).error.code, -32602)
    assert.equal((await x.call('msg.send', { to: peerB, service: 'echo', body: 'x', bodyBase64: 'AA==' })).error.code, -32602)
    assert.equal((await x.call('msg.send', { to: peerB, service: 'bad service name!', body: 'x' })).error.code, -32602)
    assert.equal((await x.call('msg.send', { to: peerB, service: 'echo', body: 'x', timeoutMs: -1 })).error.code, -32602)
    // a timer beyond 2^31 - 1 ms fired after 1 ms: out-of-range timeouts are refused, naming the bounds
    for (const timeoutMs of [1e308, 2 ** 31, 50, Number.MAX_SAFE_INTEGER]) {
      const refused = (await x.call('msg.send', { to: peerB, service: 'echo', body: 'x', timeoutMs })).error
      assert.equal(refused.code, -32602, `timeoutMs ${timeoutMs}`)
      assert.match(refused.message, /timeoutMs must be a number of ms from 100 to 3600000/)
    }
    assert.equal((await y.call('msg.reply', { id: 'no-such-delivery', body: 'x' })).error.data.code, 'UnknownDelivery')
  })

  it('agentnet send and agentnet listen --echo, as real processes', async () => {
    y.close()
    await new Promise(resolve => setTimeout(resolve, 200))
    const listener = spawn(process.execPath, [BIN, 'listen', 'echo', '--echo', '--home', homeB], { stdio: ['ignore', 'pipe', 'pipe'] })
    let printed = ''
    listener.stdout.on('data', (d: Buffer) => { printed += d.toString() })
    await new Promise<void>(resolve => listener.stderr.once('data', () => { resolve() }))
    try {
      const reply = await runJson<{ from: string, id: string, body: string }>(['send', peerB, 'echo', 'ping from the CLI', '--home', homeA])
      assert.equal(reply.from, peerB)
      assert.equal(reply.body, 'ping from the CLI')
      const oneway = await runJson<{ accepted: boolean }>(['send', peerB, 'echo', 'one way', '--oneway', '--home', homeA])
      assert.equal(oneway.accepted, true)
      await new Promise(resolve => setTimeout(resolve, 200))
      const lines = printed.trim().split('\n').map(l => JSON.parse(l))
      assert.deepEqual(lines.map(l => [l.kind, l.body, l.from]), [['request', 'ping from the CLI', peerA], ['oneway', 'one way', peerA]])
      const missing = await runCli(['send', peerB, 'nobody', 'x', '--home', homeA, '--timeout', '2'])
      assert.equal(missing.code, 1)
      assert.match(missing.stderr, /no service "nobody"/)
    } finally {
      listener.kill('SIGINT')
      await new Promise(resolve => listener.on('close', resolve))
    }
  })
})
