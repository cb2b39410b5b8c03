/**
 * The half-sent-frame timer of FrameDecoder: it runs from the first byte of
 * the frame in part, so steady traffic whose chunks always end inside a frame
 * never trips it, while a frame left unfinished does.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeFrame, FrameDecoder } from '../../../src/messaging/index.ts'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('FrameDecoder stall timer', () => {
  it('steady traffic split mid-frame in every chunk does not trip it; an unfinished frame does', async () => {
    let stalled = 0
    const decoder = new FrameDecoder(1024, { timeoutMs: 120, onTimeout: () => { stalled++ } })
    const frame = encodeFrame(new Uint8Array(100).fill(1))
    // each push: the rest of one frame and the first half of the next
    let got = decoder.push(frame.subarray(0, 50))
    assert.equal(got.length, 0)
    for (let i = 0; i < 12; i++) {
      await sleep(40)
      const chunk = new Uint8Array(frame.byteLength)
      chunk.set(frame.subarray(50), 0)
      chunk.set(frame.subarray(0, 50), frame.byteLength - 50)
      got = decoder.push(chunk)
      assert.equal(got.length, 1)
    }
    assert.equal(stalled, 0, 'over 480 ms of steady traffic, never a stall')
    // now the frame in part is left unfinished
    const deadline = Date.now() + 2000
    while (stalled === 0 && Date.now() < deadline) await sleep(20)
    assert.equal(stalled, 1)
    assert.equal(decoder.partial, 50)
    decoder.dispose()
  })

  it('a decoder between frames holds no timer', async () => {
    let stalled = 0
    const decoder = new FrameDecoder(1024, { timeoutMs: 30, onTimeout: () => { stalled++ } })
    assert.equal(decoder.push(encodeFrame(new Uint8Array(10))).length, 1)
    await sleep(100)
    assert.equal(stalled, 0)
  })
})
