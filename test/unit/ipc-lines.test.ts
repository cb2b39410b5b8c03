import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { LineSplitter, LineTooLongError } from '../../src/ipc/index.ts'

describe('LineSplitter', () => {
  it('splits lines across chunk boundaries', () => {
    const s = new LineSplitter(100)
    assert.deepEqual(s.push(Buffer.from('ab')), [])
    assert.deepEqual(s.push(Buffer.from('c\nde\n\nf')), ['abc', 'de', ''])
    assert.deepEqual(s.push(Buffer.from('g\n')), ['fg'])
  })

  it('keeps multi-byte UTF-8 characters split across chunks intact', () => {
    const s = new LineSplitter(100)
    const bytes = Buffer.from('héllo\n')
    assert.deepEqual(s.push(bytes.subarray(0, 2)), [])
    assert.deepEqual(s.push(bytes.subarray(2)), ['héllo'])
  })

  it('throws once an unfinished line passes the limit, without buffering more', () => {
    const s = new LineSplitter(10)
    assert.deepEqual(s.push(Buffer.from('0123456789')), [])
    assert.throws(() => s.push(Buffer.from('x')), LineTooLongError)
    assert.throws(() => new LineSplitter(4).push(Buffer.from('12345\n')), LineTooLongError)
    assert.deepEqual(new LineSplitter(4).push(Buffer.from('1234\n')), ['1234'])
  })
})
