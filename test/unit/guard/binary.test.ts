import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import { describe, it } from 'node:test'
import { createGuard, LeakBlockedError } from '../../../src/guard/index.ts'
import { Outbox } from '../../../src/outbox/index.ts'

const SECRET_NAME = 'Zoë Müller-Ångström'
const API_KEY = 'sk_live_51HqLyjWDarjtT1zdp7dcXQ2n0kV9xYs7'

/** Random bytes that are certainly not UTF-8 (a lone continuation byte up front), with `inner` in the middle */
function binaryAround (inner: Uint8Array): Uint8Array {
  const out = Buffer.concat([Buffer.from([0x80]), randomBytes(4096), inner, randomBytes(4096)])
  assert.equal(isUtf8(out), false)
  return out
}

function outbox (): Outbox {
  const guard = createGuard()
  guard.protect({ value: SECRET_NAME, label: 'client', category: 'pii/name' })
  guard.protect({ value: API_KEY, label: 'stripe', category: 'secret/api-key' })
  return new Outbox([{
    name: 'guard',
    run: async (content) => {
      const { body } = await guard.enforce({ peerNames: ['12D3KooWsomeone'], body: content.text })
      return body === content.text ? content : { ...content, text: body }
    }
  }])
}

describe('binary bodies that are not UTF-8 are screened as latin1', () => {
  it('an ASCII secret inside random bytes is blocked', async () => {
    await assert.rejects(outbox().admit({ kind: 'request', to: '12D3KooWsomeone', body: binaryAround(Buffer.from(API_KEY)), contentType: 'application/octet-stream' }), LeakBlockedError)
  })
  it('a registered value with non-ASCII characters, as UTF-8 bytes inside random bytes, is blocked', async () => {
    await assert.rejects(outbox().admit({ kind: 'request', to: '12D3KooWsomeone', body: binaryAround(Buffer.from(SECRET_NAME, 'utf8')), contentType: 'application/octet-stream' }), LeakBlockedError)
  })
  it('the same random bytes without a registered value pass, unchanged', async () => {
    const body = binaryAround(Buffer.from('nothing to see here'))
    const admitted = await outbox().admit({ kind: 'request', to: '12D3KooWsomeone', body, contentType: 'application/octet-stream' })
    assert.deepEqual(Buffer.from(admitted.body), Buffer.from(body))
  })
})
