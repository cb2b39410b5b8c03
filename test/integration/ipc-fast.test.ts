/**
 * The IPC socket's fast path and its bounds, against real `agentnet start`
 * processes on 127.0.0.1 and real Unix-socket clients:
 *
 * - binary bodies (`ipc.hello {features: ["binary"]}`, a header line with
 *   `bodyBytes` then raw bytes) both ways, beside a plain JSON client;
 * - a standard-library Python client (`json.dumps`, `readline()`) with
 *   600 KB bodies in `bodyBase64`, the lines the node reads and writes
 *   without parsing the text: the same bytes both ways;
 * - `bodyBase64` checked without a regex, `bodyBytes` over the limit refused
 *   with the connection kept;
 * - an agent that stops reading its socket: the sender gets `AgentNotReading`
 *   (never `accepted: true` for what will not be delivered), the node logs it,
 *   and once the agent reads again it gets every message that was accepted;
 * - the connection limit answers with a `TooManyClients` line before closing;
 * - 256 requests of 1 MiB, 64 in flight, through the IPC socket at both ends.
 */

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connectClient, RemoteError } from '../../src/client/index.ts'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { AgentnetClient } from '../../src/client/index.ts'
import type { RunningNode } from '../helpers/cli.ts'
import type { Socket } from 'node:net'

/** A raw client that speaks binary frames: header lines plus `bodyBytes` raw bytes */
class FrameSocket {
  readonly socket: Socket
  private buffer = Buffer.alloc(0)
  private readonly frames: Array<{ msg: any, body?: Buffer }> = []
  private waiters: Array<() => void> = []
  closed = false

  private constructor (socket: Socket) {
    this.socket = socket
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d])
      while (true) {
        const nl = this.buffer.indexOf(10)
        if (nl === -1) break
        const msg = JSON.parse(this.buffer.subarray(0, nl).toString('utf8'))
        const n = typeof msg.bodyBytes === 'number' ? msg.bodyBytes : -1
        if (n >= 0 && this.buffer.length < nl + 1 + n) break
        this.frames.push({ msg, body: n >= 0 ? Buffer.from(this.buffer.subarray(nl + 1, nl + 1 + n)) : undefined })
        this.buffer = this.buffer.subarray(nl + 1 + Math.max(n, 0))
      }
      this.wake()
    })
    socket.on('close', () => { this.closed = true; this.wake() })
    socket.on('error', () => {})
  }

  static async connect (path: string): Promise<FrameSocket> {
    const socket = createConnection(path)
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    return new FrameSocket(socket)
  }

  private wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  send (header: Record<string, unknown>, body?: Uint8Array): void {
    this.socket.write(JSON.stringify(body === undefined ? header : { ...header, bodyBytes: body.byteLength }) + '\n')
    if (body !== undefined) this.socket.write(body)
  }

  async next (match: (msg: any) => boolean = () => true, timeoutMs = 10_000): Promise<{ msg: any, body?: Buffer }> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const i = this.frames.findIndex(f => match(f.msg))
      if (i !== -1) return this.frames.splice(i, 1)[0] as { msg: any, body?: Buffer }
      if (this.closed) throw new Error('socket closed')
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame')
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, 100)
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  close (): void {
    this.socket.destroy()
  }
}

async function nodeWith (config: Record<string, unknown>): Promise<{ home: string, node: RunningNode, peerId: string, address: string }> {
  const home = await makeHome()
  const file = join(home, 'config.json')
  await writeFile(file, JSON.stringify({ nat: { autonat: false, webrtc: false, dcutr: false }, relay: { reserve: false }, ...config }))
  const node = await startNode(home, ['--config', file])
  const id = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', home])
  return { home, node, peerId: id.peerId, address: id.addresses[0] ?? '' }
}

/** A's ipc.maxConnections: above what the other tests hold at once, closes still in progress included */
const LIMIT = 8

/** Is this connection served (answers node.info) or refused (an error line, then closed)? */
async function served (socket: RawSocket): Promise<boolean> {
  socket.send({ jsonrpc: '2.0', id: 'probe', method: 'node.info' })
  const line = await socket.next()
  if (line.id === 'probe' && line.result?.peerId != null) return true
  assert.equal(line.id, null)
  assert.equal(line.error.data.code, 'TooManyClients')
  assert.match(line.error.message, /ipc\.maxConnections/)
  await socket.waitClosed()
  return false
}

/** The SDK's connect, retried while the node still counts connections that are closing */
async function connectWhenFree (home: string): Promise<AgentnetClient> {
  while (true) {
    try {
      return await connectClient({ home })
    } catch (err) {
      if (!(err instanceof RemoteError && err.code === 'TooManyClients')) throw err
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }
}

describe('IPC fast path and bounds (real nodes, real sockets)', () => {
  let a: Awaited<ReturnType<typeof nodeWith>>
  let b: Awaited<ReturnType<typeof nodeWith>>

  before(async () => {
    // A keeps the default buffer bounds (the 1 MiB bulk test's echo agent lives on A)
    // b is a stranger to a: 64 MiB in flight is past a stranger's default bounds (32 requests, 4 MiB; issue 9), so they are raised here
    a = await nodeWith({ ipc: { maxConnections: LIMIT }, trust: { publicServices: ['bulk'] }, messaging: { requestTimeoutMs: 60_000, untrustedInFlightRequests: 64, untrustedInFlightBytes: 128 * 1024 * 1024 } })
    // small bounds on B so that a stalled agent hits them quickly
    b = await nodeWith({
      trust: { publicServices: ['echo', 'sink'] },
      ipc: { maxClientBufferBytes: 1_048_576, deliveryWaitMs: 300 },
      // no retries: a request or reply dropped for a full queue (rather than held back) fails the bulk test instead of being re-sent
      messaging: { maxBodyBytes: 1_048_576, requestTimeoutMs: 60_000, retries: 0 }
    })
    await runJson(['connect', b.address, '--home', a.home])
  })

  after(async () => {
    await a?.node.stop()
    await b?.node.stop()
    if (a != null) await removeHome(a.home)
    if (b != null) await removeHome(b.home)
  })

  it('binary frames carry bodies both ways; a plain JSON client still works beside them', async () => {
    const agent = await FrameSocket.connect(join(b.home, 'agentnet.sock'))
    agent.send({ jsonrpc: '2.0', id: 'h', method: 'ipc.hello', params: { features: ['binary', 'future-thing'] } })
    const hello = (await agent.next(m => m.id === 'h')).msg
    assert.deepEqual(hello.result.features, ['binary'])
    agent.send({ jsonrpc: '2.0', id: 'r', method: 'service.register', params: { service: 'echo' } })
    assert.equal((await agent.next(m => m.id === 'r')).msg.result.service, 'echo')

    const sender = await FrameSocket.connect(join(a.home, 'agentnet.sock'))
    sender.send({ jsonrpc: '2.0', id: 'h', method: 'ipc.hello', params: { features: ['binary'] } })
    await sender.next(m => m.id === 'h')
    // bytes with newlines and a NUL: they must never be scanned as lines
    const bytes = Buffer.concat([Buffer.from('\n\n\0{"jsonrpc":"2.0"}\n'), randomBytes(200_000)])
    sender.send({ jsonrpc: '2.0', id: 's1', method: 'msg.send', params: { to: b.peerId, service: 'echo' } }, bytes)
    const note = await agent.next(m => m.method === 'msg.received')
    assert.equal(note.msg.params.contentType, 'application/octet-stream')
    assert.equal(note.msg.params.bodyBase64, undefined)
    assert.ok(note.body?.equals(bytes))
    const answer = Buffer.from('answer\n\0bytes')
    agent.send({ jsonrpc: '2.0', id: 'rep', method: 'msg.reply', params: { id: note.msg.params.id } }, answer)
    assert.deepEqual((await agent.next(m => m.id === 'rep')).msg.result, { ok: true })
    const reply = await sender.next(m => m.id === 's1')
    assert.equal(reply.msg.result.from, b.peerId)
    assert.equal(reply.msg.result.contentType, 'application/octet-stream')
    assert.ok(reply.body?.equals(answer))

    // text on the binary path: contentType says so; the receiver gets the bytes and the type
    sender.send({ jsonrpc: '2.0', id: 's2', method: 'msg.send', params: { to: b.peerId, service: 'echo', contentType: 'text/plain; charset=utf-8' } }, Buffer.from('héllo'))
    const textNote = await agent.next(m => m.method === 'msg.received')
    assert.equal(textNote.msg.params.contentType, 'text/plain; charset=utf-8')
    assert.equal(textNote.body?.toString('utf8'), 'héllo')
    agent.send({ jsonrpc: '2.0', id: 'rep2', method: 'msg.reply', params: { id: textNote.msg.params.id, body: 'plain reply' } })
    // the binary client gets the reply raw, with its type
    const textReply = await sender.next(m => m.id === 's2')
    assert.equal(textReply.body?.toString('utf8'), 'plain reply')

    // a plain JSON client (no hello) beside it: base64 in, base64 out, unchanged
    const plain = await RawSocket.connect(join(a.home, 'agentnet.sock'))
    const b64 = Buffer.from([0, 1, 2, 10, 255]).toString('base64')
    plain.send({ jsonrpc: '2.0', id: 'p', method: 'msg.send', params: { to: b.peerId, service: 'echo', bodyBase64: b64 } })
    const plainNote = await agent.next(m => m.method === 'msg.received')
    assert.deepEqual([...plainNote.body ?? []], [0, 1, 2, 10, 255])
    agent.send({ jsonrpc: '2.0', id: 'rep3', method: 'msg.reply', params: { id: plainNote.msg.params.id } }, plainNote.body)
    const plainReply = await plain.next(m => m.id === 'p')
    assert.equal(plainReply.result.bodyBase64, b64)
    assert.equal(plainReply.bodyBytes, undefined)

    // the TS SDK negotiates binary and shows bodies as before (bytes too)
    const sdk = await connectClient({ home: a.home })
    assert.equal(sdk.binary, true)
    const viaSdk = sdk.send({ to: b.peerId, service: 'echo', bytes: Buffer.from([9, 8, 7]) })
    const sdkNote = await agent.next(m => m.method === 'msg.received')
    assert.deepEqual([...sdkNote.body ?? []], [9, 8, 7])
    agent.send({ jsonrpc: '2.0', id: 'rep4', method: 'msg.reply', params: { id: sdkNote.msg.params.id } }, sdkNote.body)
    const sdkReply = await viaSdk
    assert.equal(sdkReply.bodyBase64, Buffer.from([9, 8, 7]).toString('base64'))
    assert.deepEqual([...sdkReply.bytes ?? []], [9, 8, 7])
    sdk.close()
    plain.close()
    sender.close()
    agent.close()
  })

  it('a standard-library Python client sends and gets 600 KB bodies as bodyBase64 (json.dumps as it writes them): the same bytes both ways; a long text that is not base64 is refused with its id', async () => {
    const agent = await FrameSocket.connect(join(b.home, 'agentnet.sock'))
    agent.send({ jsonrpc: '2.0', id: 'h', method: 'ipc.hello', params: { features: ['binary'] } })
    await agent.next(m => m.id === 'h')
    agent.send({ jsonrpc: '2.0', id: 'r', method: 'service.register', params: { service: 'echo' } })
    assert.equal((await agent.next(m => m.id === 'r')).msg.result.service, 'echo')
    const received: Buffer[] = []
    const serve = (async () => {
      for (let i = 0; i < 2; i++) {
        const note = await agent.next(m => m.method === 'msg.received', 30_000)
        received.push(note.body ?? Buffer.alloc(0))
        agent.send({ jsonrpc: '2.0', id: `rep${i}`, method: 'msg.reply', params: { id: note.msg.params.id } }, note.body)
      }
    })()
    // default json.dumps separators (", " and ": "), one line per request, replies read with readline()
    const script = [
      'import base64, json, os, socket, sys',
      'path, to = sys.argv[1], sys.argv[2]',
      's = socket.socket(socket.AF_UNIX); s.connect(path); f = s.makefile("rb")',
      'def call(i, b64):',
      '    s.sendall((json.dumps({"jsonrpc": "2.0", "id": i, "method": "msg.send", "params": {"to": to, "service": "echo", "bodyBase64": b64, "timeoutMs": 30000}}) + "\\n").encode())',
      '    return json.loads(f.readline())',
      'out = []',
      'for i in range(2):',
      '    body = bytes(b | 0x80 for b in os.urandom(600000 + i))',
      '    reply = call(i, base64.b64encode(body).decode())',
      '    out.append({"id": reply["id"], "same": base64.b64decode(reply["result"]["bodyBase64"]) == body, "sent": body[:16].hex()})',
      'bad = base64.b64encode(os.urandom(300000)).decode()',
      'reply = call("bad", bad[:1000] + "!" + bad[1000:])',
      'out.append({"id": reply["id"], "code": reply["error"]["data"]["code"]})',
      'print(json.dumps(out))'
    ].join('\n')
    const { spawn } = await import('node:child_process')
    const python = spawn('python3', ['-c', script, join(a.home, 'agentnet.sock'), b.peerId], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    python.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    python.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const code = await new Promise<number | null>(resolve => python.on('close', resolve))
    assert.equal(code, 0, stderr)
    await serve
    const results = JSON.parse(stdout) as Array<{ id: unknown, same?: boolean, sent?: string, code?: string }>
    assert.deepEqual(results.map(r => r.id), [0, 1, 'bad'])
    assert.deepEqual(results.slice(0, 2).map(r => r.same), [true, true])
    // the echo agent got the very bytes Python encoded
    assert.deepEqual(received.map(r => r.length), [600_000, 600_001])
    assert.deepEqual(received.map(r => r.subarray(0, 16).toString('hex')), results.slice(0, 2).map(r => r.sent))
    assert.equal(results[2]?.code, 'InvalidParams')
    agent.close()
  })

  it('bodyBase64 is checked without a regex: non-base64 is refused; an oversize bodyBytes is skipped, the connection kept', async () => {
    const plain = await RawSocket.connect(join(a.home, 'agentnet.sock'))
    for (const bad of ['AB!D', 'QUJD QUJD', 'QUJD-_', 'Q', 'AA==AAAA']) {
      const reply = await plain.call('msg.send', { to: b.peerId, service: 'echo', bodyBase64: bad })
      assert.equal(reply.error?.data?.code, 'InvalidParams', `${bad} must be refused`)
    }
    // timeoutMs is range-checked (1e308 used to become a 1 ms timer)
    for (const timeoutMs of [1e308, 3_600_001, -1, 0]) {
      const reply = await plain.call('msg.send', { to: b.peerId, service: 'echo', body: 'x', timeoutMs })
      assert.equal(reply.error?.data?.code, 'InvalidParams', `timeoutMs ${timeoutMs}`)
      assert.match(reply.error.message, /timeoutMs/)
    }
    const frames = await FrameSocket.connect(join(a.home, 'agentnet.sock'))
    // 2 MiB declared, over messaging.maxBodyBytes (1 MiB): refused, its bytes skipped
    frames.send({ jsonrpc: '2.0', id: 'big', method: 'msg.send', params: { to: b.peerId, service: 'echo' } }, Buffer.alloc(2 * 1024 * 1024, 10))
    assert.equal((await frames.next(m => m.id === 'big')).msg.error.data.code, 'BodyTooLarge')
    frames.send({ jsonrpc: '2.0', id: 'after', method: 'node.info' })
    assert.ok((await frames.next(m => m.id === 'after')).msg.result.peerId)
    frames.close()
    plain.close()
  })

  it('an agent that stops reading: senders get AgentNotReading, never a confirmation; every accepted message is delivered once it reads', async () => {
    const stalled = await RawSocket.connect(join(b.home, 'agentnet.sock'))
    assert.equal((await stalled.call('service.register', { service: 'sink' })).result.service, 'sink')
    stalled.socket.pause() // stops reading: the kernel buffer fills, then the node's queue
    const sender = await RawSocket.connect(join(a.home, 'agentnet.sock'))
    const body = Buffer.alloc(200 * 1024, 'x').toString()
    let accepted = 0
    let refused: any
    for (let i = 0; i < 100 && refused == null; i++) {
      const reply = await sender.call('msg.send', { to: b.peerId, service: 'sink', body, oneway: true })
      if (reply.result?.accepted === true) accepted++
      else refused = reply.error
    }
    assert.ok(refused != null, 'the sender must be refused before 100 × 200 KiB are queued for a stalled agent')
    assert.equal(refused.data.code, 'AgentNotReading')
    assert.ok(accepted > 0)
    // a request of that size is refused the same way (no room for it was freed)
    const request = await sender.call('msg.send', { to: b.peerId, service: 'sink', body })
    assert.equal(request.error?.data?.code, 'AgentNotReading')
    // the node said so in its log, and kept the client
    assert.match(b.node.stderr(), /does not read its socket/)
    assert.equal(stalled.closed, false)
    // reading again: every accepted message arrives, nothing more
    stalled.socket.resume()
    for (let i = 0; i < accepted; i++) {
      const note = await stalled.next(m => m.method === 'msg.received', 20_000)
      assert.equal(note.params.body.length, body.length)
    }
    assert.equal((await stalled.call('node.info', {})).result.peerId, b.peerId)
    // and it takes messages again
    assert.equal((await sender.call('msg.send', { to: b.peerId, service: 'sink', body: 'back', oneway: true })).result.accepted, true)
    assert.equal((await stalled.next(m => m.method === 'msg.received')).params.body, 'back')
    sender.close()
    stalled.close()
  })

  it('a client over ipc.maxConnections gets a TooManyClients error line before the close', async () => {
    // fill every slot (closes of earlier tests may still be in progress: then retry)
    let held: RawSocket[] = []
    while (true) {
      const socket = await RawSocket.connect(join(a.home, 'agentnet.sock'))
      if (await served(socket)) {
        held.push(socket)
        continue
      }
      if (held.length === LIMIT) break
      for (const h of held) h.close()
      held = []
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    // the SDK turns it into a typed error
    await assert.rejects(connectClient({ home: a.home }), (err: unknown) => err instanceof RemoteError && err.code === 'TooManyClients')
    assert.match(a.node.stderr(), /too many clients/)
    // a slot frees: the next client gets in
    held.pop()?.close()
    const next = await connectWhenFree(a.home)
    assert.equal((await next.nodeInfo()).peerId, a.peerId)
    next.close()
    for (const s of held) s.close()
  })

  it('256 requests of 1 MiB, 64 in flight, through the IPC socket at both ends: every reply arrives', async () => {
    const echo = await connectWhenFree(a.home)
    await echo.registerService('bulk')
    echo.on('message', message => {
      void echo.reply({ id: message.id, bytes: message.bytes })
    })
    const client = await connectWhenFree(b.home)
    // random, but no ASCII: random bytes now and then look like an e-mail address to the leakage guard
    const body = randomBytes(1024 * 1024).map(x => x | 0x80)
    let next = 0
    let ok = 0
    const worker = async (): Promise<void> => {
      while (next < 256) {
        next++
        const reply = await client.send({ to: a.peerId, service: 'bulk', bytes: body, timeoutMs: 60_000 })
        assert.equal(reply.bytes?.byteLength, body.byteLength)
        assert.ok(Buffer.from(reply.bytes ?? []).subarray(0, 64).equals(body.subarray(0, 64)))
        ok++
      }
    }
    await Promise.all(Array.from({ length: 64 }, worker)).catch(err => {
      // the nodes' warnings say why (a refused delivery, a dropped client)
      console.error('A', a.node.stderr().split('\n').filter(l => /warn|error|"level":[45]0/.test(l)).slice(-10).join('\n'))
      console.error('B', b.node.stderr().split('\n').filter(l => /warn|error|"level":[45]0/.test(l)).slice(-10).join('\n'))
      throw err
    })
    assert.equal(ok, 256)
    client.close()
    echo.close()
  })
})
