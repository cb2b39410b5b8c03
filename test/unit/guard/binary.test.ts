import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import { describe, it } from 'node:test'
import { createGuard, LeakBlockedError } from '../../../src/guard/index.ts'
import { printableRuns } from '../../../src/guard/decode.ts'
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
      // as the guard stage calls it (src/agent/guard-stage.ts)
      const { body } = await guard.enforce({ peerNames: ['12D3KooWsomeone'], body: content.text, binary: content.latin1 === true })
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

describe('binary bodies: the detectors look at the printable runs', () => {
  it('printableRuns: runs of ≥ min printable characters, joined by a line break, with offsets back', () => {
    const view = printableRuns('ab\x00cdefgh\x80\x81ijklmn\x01xyz', 6)
    assert.equal(view.text, 'cdefgh\nijklmn')
    assert.equal(view.at(0), 3)
    assert.equal(view.at(5), 8)
    assert.equal(view.at(6), 8, 'the separator maps to the end of the run before it')
    assert.equal(view.at(7), 11)
    assert.equal(view.at(12), 16)
    assert.equal(printableRuns('\x80\x81\x82', 6).text, '')
    assert.equal(printableRuns('tab\there\r\nend', 6).text, 'tab\there\r\nend')
    assert.throws(() => printableRuns('x', 0), RangeError)
  })

  it('secrets and PII nobody registered, inside random bytes, are found at their byte offsets', async () => {
    const guard = createGuard()
    const email = 'jane.doe@example.org'
    const card = '4111 1111 1111 1111'
    const body = Buffer.from(binaryAround(Buffer.concat([Buffer.from([0x80]), Buffer.from(email), randomBytes(64).map(b => b | 0x80), Buffer.from(card), Buffer.from([0x80])])))
    const text = body.toString('latin1')
    const findings = await guard.inspect(text, { binary: true })
    const at = (needle: string): number => body.indexOf(needle)
    const mail = findings.find(f => f.category === 'pii/email')
    assert.ok(mail, JSON.stringify(findings))
    assert.deepEqual([mail.start, mail.end], [at(email), at(email) + email.length])
    const pan = findings.find(f => f.category === 'pii/card')
    assert.ok(pan, JSON.stringify(findings))
    assert.deepEqual([pan.start, pan.end], [at(card), at(card) + card.length])
    // redaction covers exactly those bytes
    guard.setPolicy({ peer: '*', action: 'redact', allow: [] })
    const decision = await guard.check({ peerNames: ['12D3KooWsomeone'], body: text, binary: true })
    assert.equal(decision.action, 'redact')
    assert.equal(decision.body?.includes(email), false)
    const redacted = decision.body as string
    assert.equal(redacted.includes(card), false)
    assert.equal(redacted.slice(0, at(email)), text.slice(0, at(email)), 'nothing before the address changed')
    const tail = text.length - (at(card) + card.length)
    assert.equal(redacted.slice(-tail), text.slice(-tail), 'nothing after the card number changed')
  })

  it('a MiB of random bytes with the high bit set holds no run, so no finding and nothing to scan', async () => {
    const body = randomBytes(1 << 20).map(b => b | 0x80)
    const text = Buffer.from(body).toString('latin1')
    assert.equal(printableRuns(text, 6).text, '')
    assert.deepEqual(await createGuard().inspect(text, { binary: true }), [])
  })

  it('binary must be a boolean', async () => {
    await assert.rejects(createGuard().check({ peerNames: ['*'], body: 'x', binary: 'yes' as unknown as boolean }), /binary must be a boolean/)
  })
})
