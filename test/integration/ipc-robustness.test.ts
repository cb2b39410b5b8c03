import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeHome, removeHome, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { RunningNode } from '../helpers/cli.ts'

describe('IPC socket robustness against garbage', () => {
  let home: string
  let node: RunningNode
  let socketPath: string
  let bystander: RawSocket

  before(async () => {
    home = await makeHome()
    node = await startNode(home)
    socketPath = join(home, 'agentnet.sock')
    // a well-behaved client connected the whole time
    bystander = await RawSocket.connect(socketPath)
  })

  after(async () => {
    bystander.close()
    await node.stop()
    await removeHome(home)
  })

  it('the socket is private to its owner', async () => {
    assert.equal((await stat(socketPath)).mode & 0o777, 0o600)
  })

  it('answers many requests in flight on one connection, matched by id', async () => {
    const ids = Array.from({ length: 200 }, (_, i) => `r${i}`)
    for (const id of ids) {
      bystander.send({ jsonrpc: '2.0', id, method: 'node.info', params: {} })
    }
    const seen = new Set<string>()
    while (seen.size < ids.length) {
      const reply = await bystander.next()
      assert.ok(reply.result?.peerId)
      seen.add(reply.id)
    }
    assert.deepEqual([...seen].sort(), [...ids].sort())
  })

  it('survives 1,000 random-byte lines, each answered or ignored, never a crash', async () => {
    const garbage = await RawSocket.connect(socketPath)
    let sent = 0
    for (let i = 0; i < 1000; i++) {
      // random bytes without newlines, then a newline: one line each
      const bytes = randomBytes(1 + (i % 200)).map(b => b === 10 ? 11 : b)
      garbage.write(Buffer.concat([bytes, Buffer.from('\n')]))
      sent++
    }
    garbage.send({ jsonrpc: '2.0', id: 'after-garbage', method: 'node.info' })
    const errors: any[] = []
    while (true) {
      const reply = await garbage.next()
      if (reply.id === 'after-garbage') {
        assert.ok(reply.result.peerId)
        break
      }
      errors.push(reply)
    }
    assert.ok(errors.length > 0 && errors.length <= sent)
    assert.ok(errors.every(e => e.error?.code === -32700 || e.error?.code === -32600), 'parse or invalid-request errors only')
    garbage.close()
  })

  it('answers invalid JSON, bad requests, unknown methods and bad params with JSON-RPC errors', async () => {
    const s = await RawSocket.connect(socketPath)
    s.write('{"jsonrpc": "2.0", "id": 1, "method": \n')
    assert.equal((await s.next()).error.code, -32700)
    s.send([1, 2, 3])
    assert.equal((await s.next()).error.code, -32600)
    s.send({ jsonrpc: '1.0', id: 2, method: 'node.info' })
    assert.deepEqual(await s.next(), { jsonrpc: '2.0', id: 2, error: { code: -32600, message: 'expected {"jsonrpc":"2.0","method":string,...}', data: { code: 'InvalidRequest' } } })
    const unknown = await s.call('no.such.method', {}, 3)
    assert.equal(unknown.error.code, -32601)
    assert.equal(unknown.error.data.code, 'MethodNotFound')
    const proto = await s.call('__proto__', {}, 4)
    assert.equal(proto.error.code, -32601)
    const badParams = await s.call('peer.ping', { target: 42 }, 5)
    assert.equal(badParams.error.code, -32602)
    const badParams2 = await s.call('node.info', 'not an object', 6)
    assert.equal(badParams2.error.code, -32602)
    const badTarget = await s.call('peer.ping', { target: 'not-a-peer' }, 7)
    assert.equal(badTarget.error.data.code, 'InvalidTarget')
    s.close()
  })

  it('closes only the connection that sends a 10 MB line', async () => {
    const big = await RawSocket.connect(socketPath)
    const chunk = Buffer.alloc(1024 * 1024, 0x61)
    for (let i = 0; i < 10; i++) {
      if (big.closed) break
      big.write(chunk)
    }
    big.write('\n')
    const reply = await big.next()
    assert.equal(reply.error.code, -32001)
    assert.equal(reply.error.data.code, 'LineTooLong')
    await big.waitClosed()
  })

  it('still answers node.info on an existing and on a new connection', async () => {
    const existing = await bystander.call('node.info', {})
    assert.match(existing.result.peerId, /^12D3KooW/)
    const fresh = await RawSocket.connect(socketPath)
    const reply = await fresh.call('node.info', {})
    assert.equal(reply.result.peerId, existing.result.peerId)
    fresh.close()
    assert.equal(node.child.exitCode, null, 'the node is still running')
  })
})
