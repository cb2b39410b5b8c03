import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { decodeBase64Strict } from '../../src/daemon/bodies.ts'
import { encodeFrame, FrameReader, LineTooLongError } from '../../src/ipc/index.ts'
import { SPLICE_MIN_CHARS } from '../../src/ipc/frames.ts'
import type { IpcFrame } from '../../src/ipc/index.ts'

function frameBytes (header: Record<string, unknown>, body?: Uint8Array): Buffer {
  return Buffer.concat(encodeFrame({ ...header }, body).chunks)
}

/** Feed `stream` in pieces of `size` bytes */
function feed (reader: FrameReader, stream: Buffer, size: number): IpcFrame[] {
  const out: IpcFrame[] = []
  for (let i = 0; i < stream.length; i += size) out.push(...reader.push(Buffer.from(stream.subarray(i, i + size))))
  return out
}

describe('IPC frames: header lines and raw bodies', () => {
  it('bodies with newlines and any bytes come out whole, whatever the chunking', () => {
    const body = Buffer.concat([Buffer.from('\n\n{"jsonrpc":"2.0"}\n'), randomBytes(70_000)])
    const stream = Buffer.concat([
      frameBytes({ jsonrpc: '2.0', id: 1, method: 'a' }),
      frameBytes({ jsonrpc: '2.0', id: 2, method: 'b' }, body),
      frameBytes({ jsonrpc: '2.0', id: 3, method: 'c' }, new Uint8Array(0)),
      frameBytes({ jsonrpc: '2.0', id: 4, method: 'd' })
    ])
    for (const size of [1, 7, 4096, 65_536, stream.length]) {
      const frames = feed(new FrameReader({ maxLineBytes: 1024, maxBodyBytes: 100_000 }), stream, size)
      assert.deepEqual(frames.map(f => f.kind === 'message' ? f.message.id : f.kind), [1, 2, 3, 4], `chunks of ${size}`)
      const second = frames[1] as Extract<IpcFrame, { kind: 'message' }>
      assert.ok(second.body?.equals(body))
      assert.equal(second.message.bodyBytes, body.length)
      assert.equal((frames[2] as Extract<IpcFrame, { kind: 'message' }>).body?.length, 0)
      assert.equal((frames[0] as Extract<IpcFrame, { kind: 'message' }>).body, undefined)
    }
  })

  it('a declared body over the limit is reported and skipped unbuffered; the stream stays in sync', () => {
    const reader = new FrameReader({ maxLineBytes: 1024, maxBodyBytes: 10 })
    const stream = Buffer.concat([frameBytes({ id: 1 }, Buffer.alloc(5000, 10)), frameBytes({ id: 2 })])
    const frames = feed(reader, stream, 100)
    assert.deepEqual(frames.map(f => f.kind), ['tooLarge', 'message'])
    assert.equal((frames[0] as Extract<IpcFrame, { kind: 'tooLarge' }>).declared, 5000)
  })

  it('bad lines and bad bodyBytes are typed frames, not throws; only an overlong line throws', () => {
    const reader = new FrameReader({ maxLineBytes: 64, maxBodyBytes: 10 })
    const frames = reader.push(Buffer.from('not json\n[1,2]\n{"id":1,"bodyBytes":-1}\n{"id":2,"bodyBytes":1.5}\n\n{"id":3}\n'))
    assert.deepEqual(frames.map(f => f.kind === 'invalid' ? f.code : f.kind), ['ParseError', 'InvalidRequest', 'InvalidRequest', 'InvalidRequest', 'message'])
    assert.throws(() => reader.push(Buffer.alloc(100, 0x41)), LineTooLongError)
  })
})

describe('header lines with a long bodyBase64 (put in without JSON.stringify)', () => {
  const long = randomBytes(SPLICE_MIN_CHARS).toString('base64')
  const line = (header: Record<string, unknown>): string => Buffer.concat(encodeFrame(structuredClone(header)).chunks).toString('utf8')

  it('are the very line JSON.stringify writes, in a result and in params', () => {
    for (const header of [
      { jsonrpc: '2.0', id: 7, result: { from: '12D3KooWpeer', id: 'r1', bodyBase64: long, contentType: 'application/octet-stream' } },
      { jsonrpc: '2.0', method: 'msg.received', params: { from: '12D3KooWpeer', id: 'n"1\\', bodyBase64: long, contentType: 'image/png', note: 'é ☃ \u2028' } }
    ]) {
      assert.equal(line(header), JSON.stringify(header) + '\n')
      assert.deepEqual(JSON.parse(line(header)), header)
    }
  })

  it('never hand the long text to JSON.stringify', () => {
    const stringify = JSON.stringify
    let sawText = false
    JSON.stringify = ((value: unknown, ...rest: unknown[]) => {
      const out = (stringify as (...a: unknown[]) => string)(value, ...rest)
      if (out.includes(long)) sawText = true
      return out
    }) as typeof JSON.stringify
    try {
      line({ jsonrpc: '2.0', id: 9, result: { bodyBase64: long } })
    } finally {
      JSON.stringify = stringify
    }
    assert.equal(sawText, false)
  })

  it('fall back to JSON.stringify for a text that is not base64, a short one, or a header holding the stand-in elsewhere', () => {
    const notBase64 = long.slice(0, -8) + '"\\\n\u0000xy'
    const standIn = '\u0000agentnet-body\u0000'
    for (const header of [
      { jsonrpc: '2.0', id: 1, result: { bodyBase64: notBase64 } },
      { jsonrpc: '2.0', id: 2, result: { bodyBase64: 'aGVsbG8=' } },
      { jsonrpc: '2.0', id: 3, result: { id: standIn, bodyBase64: long } },
      { jsonrpc: '2.0', id: 4, result: null, params: { bodyBase64: long } }
    ]) {
      assert.equal(line(header), JSON.stringify(header) + '\n')
    }
  })
})

describe('reading lines with a long bodyBase64 (the text not given to JSON.parse)', () => {
  const long = randomBytes(SPLICE_MIN_CHARS).toString('base64')
  const read = (text: string, size = 65_536): IpcFrame[] => feed(new FrameReader({ maxLineBytes: 4 * SPLICE_MIN_CHARS, maxBodyBytes: 10 }), Buffer.from(text), size)
  const messageOf = (frames: IpcFrame[]): Record<string, unknown> => {
    assert.equal(frames.length, 1)
    const frame = frames[0] as IpcFrame
    assert.equal(frame.kind, 'message')
    return (frame as Extract<IpcFrame, { kind: 'message' }>).message
  }

  it('give what JSON.parse gives, compact or as Python writes it, in params and in result, whatever the chunking', () => {
    const headers = [
      { jsonrpc: '2.0', id: 1, method: 'msg.send', params: { to: '12D3KooWpeer', service: 'echo', bodyBase64: long, note: 'é ☃' } },
      { jsonrpc: '2.0', id: 2, result: { id: 'r"1', bodyBase64: long } }
    ]
    for (const header of headers) {
      for (const text of [JSON.stringify(header), JSON.stringify(header, null, 1).replaceAll('\n', ' '), JSON.stringify(header).replace('"bodyBase64":', '"bodyBase64" :\t')]) {
        for (const size of [1000, 65_536, text.length + 1]) {
          assert.deepEqual(messageOf(read(text + '\n', size)), JSON.parse(text))
        }
      }
    }
  })

  it('never hand the long text to JSON.parse', () => {
    const header = { jsonrpc: '2.0', id: 3, method: 'msg.send', params: { bodyBase64: long } }
    // compact, and as Python's json.dumps writes it (`", "` and `": "`)
    for (const text of [JSON.stringify(header), JSON.stringify(header).replaceAll(',', ', ').replaceAll('":', '": ')]) {
      const parse = JSON.parse
      let sawText = false
      JSON.parse = ((json: string, ...rest: unknown[]) => {
        if (json.includes(long)) sawText = true
        return (parse as (...a: unknown[]) => unknown)(json, ...rest)
      }) as typeof JSON.parse
      let message: Record<string, unknown>
      try {
        message = messageOf(read(text + '\n'))
      } finally {
        JSON.parse = parse
      }
      assert.equal(sawText, false, text.slice(0, 40))
      assert.equal((message.params as Record<string, unknown>).bodyBase64, long)
    }
  })

  it('fall back to JSON.parse for look-alikes, escapes, duplicates and anything not plain ASCII', () => {
    const lines = [
      // the key twice: a nested look-alike
      `{"jsonrpc":"2.0","id":1,"method":"msg.send","params":{"bodyBase64":"${long}","x":{"bodyBase64":"QUJD"}}}`,
      // the real key escaped, a literal look-alike nested: the member is the escaped one
      `{"jsonrpc":"2.0","id":2,"method":"msg.send","params":{"body\\u0042ase64":"QUJD","x":{"bodyBase64":"${long}"}}}`,
      // a duplicate key after the literal one wins in JSON
      `{"jsonrpc":"2.0","id":3,"method":"msg.send","params":{"bodyBase64":"${long}","body\\u0042ase64":"QUJD"}}`,
      // escapes inside the text
      `{"jsonrpc":"2.0","id":4,"method":"msg.send","params":{"bodyBase64":"${long.slice(0, 100)}\\/\\u0041${long.slice(100)}"}}`,
      // not ASCII
      `{"jsonrpc":"2.0","id":5,"method":"msg.send","params":{"bodyBase64":"${long}é"}}`,
      // the key as a value
      `{"jsonrpc":"2.0","id":6,"method":"msg.send","params":{"k":"bodyBase64","v":"${long}"}}`,
      // the key only deeper than params
      `{"jsonrpc":"2.0","id":7,"method":"msg.send","params":{"x":{"bodyBase64":"${long}"}}}`,
      // params not an object
      `{"jsonrpc":"2.0","id":8,"method":"msg.send","params":["bodyBase64",{"bodyBase64":"${long}"}]}`
    ]
    for (const text of lines) {
      assert.deepEqual(messageOf(read(text + '\n')), JSON.parse(text))
    }
    const broken = read(`{"jsonrpc":"2.0","id":9,"method":"msg.send","params":{"bodyBase64":"${long}"}` + '\n')
    assert.deepEqual(broken.map(f => f.kind === 'invalid' ? f.code : f.kind), ['ParseError'])
  })
})

describe('bodyBase64 without a regex', () => {
  it('accepts standard base64, padded or not', () => {
    for (const bytes of [Buffer.alloc(0), Buffer.from([1]), Buffer.from([1, 2]), Buffer.from([1, 2, 3]), randomBytes(1000)]) {
      const b64 = bytes.toString('base64')
      assert.ok(decodeBase64Strict(b64).equals(bytes))
      assert.ok(decodeBase64Strict(b64.replace(/=+$/, '')).equals(bytes))
    }
  })

  it('refuses anything else', () => {
    for (const bad of ['A', 'AB!D', 'QUJD QUJD', 'QUJD\n', 'QUJD-_', 'AA==AAAA', 'Q===', 'é']) {
      assert.throws(() => decodeBase64Strict(bad), (err: Error & { code?: string }) => err.code === 'InvalidParams', JSON.stringify(bad))
    }
  })
})
