import assert from 'node:assert/strict'
import { createCipheriv, randomBytes } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import { describe, it } from 'node:test'
import { createGuard, LeakBlockedError } from '../../../src/guard/index.ts'
import { printableRuns } from '../../../src/guard/decode.ts'
import { detectPii } from '../../../src/guard/detectors.ts'
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

  it('addresses spelled by random bytes are not e-mail findings; written ones still are', async () => {
    const guard = createGuard()
    const inBinary = async (inner: string): Promise<string[]> => {
      const body = Buffer.concat([Buffer.from([0x80, 0x00]), Buffer.from(inner, 'latin1'), Buffer.from([0x00, 0x81])]).toString('latin1')
      return (await guard.inspect(body, { binary: true })).filter(f => f.category === 'pii/email').map(f => body.slice(f.start, f.end))
    }
    // what random bytes spelled (seen in a MiB of them): short, mixed case
    for (const chance of ['!=b\nW@C9.fd\nLxP', '\r\nt[O@A.eg\npp!', 'og-\nTp%@r.KNG\nP:@', ',/{\nU@69.lw\n!Wk']) {
      assert.deepEqual(await inBinary(chance), [], chance)
      assert.ok(detectPii(chance).some(h => h.detector === 'email'), `text mode still sees ${JSON.stringify(chance)}`)
    }
    for (const written of ['bob@acme.io', 'john.doe@example.com', 'Jane.Doe@acme.org', 'ops+alerts@corp.example.net']) {
      assert.deepEqual(await inBinary(`From: ${written}\n`), [written], written)
    }
    // below the binary rule's lengths, or an upper-case domain: left to registered values in binary content
    assert.deepEqual(await inBinary('To: a@b.io\n'), [])
    assert.deepEqual(await inBinary('To: J@ACME.ORG\n'), [])
    // in text bodies nothing changed
    assert.deepEqual((await guard.inspect('write to a@b.io')).map(f => f.category), ['pii/email'])
  })

  it('64 MiB of pseudo-random bytes: text-mode detectors see addresses in their printable runs, the binary rule none', async () => {
    // deterministic (AES-CTR keystream), so the test does not depend on a lucky draw
    const stream = createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16))
    const guard = createGuard()
    let chance = 0
    let found = 0
    for (let i = 0; i < 64; i++) {
      const text = stream.update(Buffer.alloc(1 << 20)).toString('latin1')
      chance += detectPii(printableRuns(text, 6).text).filter(h => h.detector === 'email').length
      found += (await guard.inspect(text, { binary: true })).filter(f => f.category === 'pii/email').length
    }
    assert.ok(chance > 0, 'random bytes do spell addresses (what the binary rule is for)')
    assert.equal(found, 0)
  })

  it('binary must be a boolean', async () => {
    await assert.rejects(createGuard().check({ peerNames: ['*'], body: 'x', binary: 'yes' as unknown as boolean }), /binary must be a boolean/)
  })
})
