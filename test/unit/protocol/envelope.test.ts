import assert from 'node:assert/strict'
import { describe, it, before } from 'node:test'
import {
  decodeMessage,
  decodeSignedMessage,
  encodeMessage,
  encodeSignedMessage,
  InvalidArgumentError,
  MalformedFrameError,
  MAX_NONCE_BYTES,
  MIN_NONCE_BYTES,
  UnsupportedVersionError
} from '../../../src/protocol/index.ts'
import { encodeFrameToSign, setFrameSignature } from '../../../src/protocol/envelope.ts'
import { frameOf, identity, message, prng, randomBytes, randomInt } from './helpers.ts'
import type { Identity } from './helpers.ts'
import type { Message, MessageKind } from '../../../src/protocol/index.ts'

const KINDS: MessageKind[] = ['request', 'response', 'oneway', 'error']

function isDecodeError (err: unknown): boolean {
  return err instanceof MalformedFrameError || err instanceof UnsupportedVersionError
}

/** Decode a whole frame; on success check that re-encoding gives the same bytes */
function decodeFrameCanonically (frame: Uint8Array): Message {
  const { payload, signature } = decodeSignedMessage(frame)
  const msg = decodeMessage(payload)
  assert.deepEqual(encodeMessage(msg), Uint8Array.from(payload), 'payload re-encodes to the same bytes')
  assert.deepEqual(encodeSignedMessage({ payload, signature }), Uint8Array.from(frame), 'frame re-encodes to the same bytes')
  return msg
}

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

describe('envelope codec', () => {
  let alice: Identity
  let bob: Identity

  before(async () => {
    alice = await identity()
    bob = await identity()
  })

  it('round-trips every kind', () => {
    for (const kind of KINDS) {
      const msg = message(alice, bob, { kind, inReplyTo: kind === 'request' ? '' : 'req-0' })
      const decoded = decodeMessage(encodeMessage(msg))
      assert.deepEqual({ ...decoded, from: [...decoded.from], to: [...decoded.to], nonce: [...decoded.nonce], token: [...decoded.token], body: [...decoded.body] },
        { ...msg, from: [...msg.from], to: [...msg.to], nonce: [...msg.nonce], token: [...msg.token], body: [...msg.body] })
      assert.equal(decoded.kind, kind)
    }
  })

  it('round-trips edge values', () => {
    const cases: Array<Partial<Message>> = [
      // every optional field at its default
      { service: '', id: '', inReplyTo: '', ttl: 0, contentType: '', token: new Uint8Array(0), body: new Uint8Array(0), timestamp: 0, from: new Uint8Array(0), to: new Uint8Array(0) },
      // extremes of the integer fields
      { ttl: 0xffffffff, timestamp: Number.MAX_SAFE_INTEGER },
      { ttl: 1, timestamp: 1 },
      { ttl: 127, timestamp: 128 },
      { timestamp: 2 ** 32 },
      // nonce sizes at both limits
      { nonce: new Uint8Array(MIN_NONCE_BYTES).fill(0xff) },
      { nonce: new Uint8Array(MAX_NONCE_BYTES).fill(0) },
      // non-ASCII strings, a BOM that must survive, astral characters
      { service: '\uFEFFservice', id: 'ид-😀', inReplyTo: '中文', contentType: 'application/json' },
      // large body and token
      { body: new Uint8Array(300_000).fill(7), token: new Uint8Array(200).fill(9) }
    ]
    for (const overrides of cases) {
      const msg = message(alice, bob, overrides)
      const bytes = encodeMessage(msg)
      const decoded = decodeMessage(bytes)
      assert.equal(decoded.service, msg.service)
      assert.equal(decoded.id, msg.id)
      assert.equal(decoded.inReplyTo, msg.inReplyTo)
      assert.equal(decoded.contentType, msg.contentType)
      assert.equal(decoded.ttl, msg.ttl)
      assert.equal(decoded.timestamp, msg.timestamp)
      assert.equal(hex(decoded.nonce), hex(msg.nonce))
      assert.equal(hex(decoded.body), hex(msg.body))
      assert.equal(hex(decoded.token), hex(msg.token))
      assert.equal(hex(decoded.from), hex(msg.from))
      assert.equal(hex(decoded.to), hex(msg.to))
      assert.equal(hex(encodeMessage(decoded)), hex(bytes))
    }
  })

  it('a frame to sign, once signed, is byte for byte the encoded SignedMessage; its payload is the encoded message', () => {
    for (const overrides of [{}, { body: new Uint8Array(0), token: new Uint8Array(0) }, { body: new Uint8Array(127).fill(1) }, { body: new Uint8Array(300_000).map((_, i) => i * 31), id: 'ид-😀' }]) {
      const msg = message(alice, bob, overrides)
      const { frame, payload } = encodeFrameToSign(msg)
      assert.equal(hex(payload), hex(encodeMessage(msg)))
      const signature = alice.signer.sign(payload)
      assert.equal(setFrameSignature(frame, signature), frame)
      assert.equal(hex(frame), hex(encodeSignedMessage({ payload: encodeMessage(msg), signature })))
      assert.throws(() => setFrameSignature(frame, signature.subarray(1)), InvalidArgumentError)
    }
  })

  it('writes the documented canonical bytes (defaults omitted, fields in order)', () => {
    const nonce = new Uint8Array(16).fill(0x11)
    const bytes = encodeMessage({
      version: 1,
      from: Uint8Array.of(0xaa),
      to: Uint8Array.of(0xbb),
      service: 's',
      kind: 'request',
      id: '',
      inReplyTo: '',
      nonce,
      timestamp: 300,
      ttl: 0,
      contentType: '',
      token: new Uint8Array(0),
      body: Uint8Array.of(1, 2)
    })
    const expected = '0801' + '1201aa' + '1a01bb' + '220173' + '4210' + '11'.repeat(16) + '48ac02' + '6a020102'
    assert.equal(hex(bytes), expected)

    const frame = encodeSignedMessage({ payload: bytes, signature: new Uint8Array(64).fill(0xee) })
    assert.equal(hex(frame), '0a' + bytes.length.toString(16) + expected + '1240' + 'ee'.repeat(64))
  })

  it('is strict: rejects non-canonical encodings of valid messages', () => {
    const nonceField = '4210' + '11'.repeat(16)
    const ok = '0801' + nonceField
    assert.doesNotThrow(() => decodeMessage(Buffer.from(ok, 'hex')))
    const bad: Record<string, string> = {
      empty: '',
      'version not first': nonceField + '0801',
      'version non-minimal varint': '088100' + nonceField,
      'explicit default (empty service)': '0801' + '2200' + nonceField,
      'explicit default (kind request)': '0801' + '2800' + nonceField,
      'explicit default (ttl 0)': '0801' + nonceField + '5000',
      'repeated field': '0801' + '220161' + '220162' + nonceField,
      'out of order': '0801' + nonceField + '220161',
      'unknown field 14': '0801' + nonceField + '720101',
      'unknown field 0': '0801' + '0201' + nonceField,
      'multi-byte tag': '0801' + nonceField + '8a0101',
      'wrong wire type for service': '0801' + '2001' + nonceField,
      'kind out of range': '0801' + '2804' + nonceField,
      'ttl above uint32': '0801' + nonceField + '508080808010',
      'timestamp above 2^53': '0801' + nonceField + '4880808080808080808001',
      'truncated varint': '0801' + nonceField + '4880',
      'length past end': '0801' + nonceField + '6a05616263',
      'huge length': '0801' + '22ffffffffffffff7f' + nonceField,
      'invalid utf-8': '0801' + '2201ff' + nonceField,
      'overlong utf-8': '0801' + '2202c0af' + nonceField,
      'utf-8 surrogate': '0801' + '2203eda080' + nonceField,
      'missing nonce': '0801',
      'short nonce': '0801' + '420f' + '11'.repeat(15),
      'long nonce': '0801' + '4221' + '11'.repeat(33)
    }
    for (const [name, h] of Object.entries(bad)) {
      assert.throws(() => decodeMessage(Buffer.from(h, 'hex')), MalformedFrameError, name)
    }
  })

  it('reports other versions as UnsupportedVersionError, without parsing the rest', () => {
    for (const [h, version] of [['0802', 2], ['0800', 0], ['08ffffffff0f', 0xffffffff], ['0802ffffff', 2]] as const) {
      assert.throws(() => decodeMessage(Buffer.from(h, 'hex')), (err: unknown) => err instanceof UnsupportedVersionError && err.version === version && err.code === 'UnsupportedVersion')
    }
    const v2 = encodeMessage(message(alice, bob, { version: 2 }))
    assert.throws(() => decodeMessage(v2), UnsupportedVersionError)
  })

  it('rejects frames that are not exactly payload then a 64-byte signature', () => {
    const payload = encodeMessage(message(alice, bob))
    const good = encodeSignedMessage({ payload, signature: new Uint8Array(64) })
    assert.doesNotThrow(() => decodeSignedMessage(good))
    const variants: Record<string, Uint8Array> = {
      empty: new Uint8Array(0),
      'signature only': good.subarray(good.length - 66),
      'payload only': good.subarray(0, good.length - 66),
      'trailing byte': Uint8Array.from([...good, 0]),
      truncated: good.subarray(0, good.length - 1),
      'short signature': Uint8Array.from([...good.subarray(0, good.length - 66), 0x12, 63, ...new Uint8Array(63)]),
      'long signature': Uint8Array.from([...good.subarray(0, good.length - 66), 0x12, 65, ...new Uint8Array(65)]),
      'fields swapped': Uint8Array.from([...good.subarray(good.length - 66), ...good.subarray(0, good.length - 66)]),
      'empty payload': Uint8Array.from([0x0a, 0x00, 0x12, 64, ...new Uint8Array(64)])
    }
    for (const [name, frame] of Object.entries(variants)) {
      assert.throws(() => decodeSignedMessage(frame), MalformedFrameError, name)
    }
  })

  it('returns byte fields as views of the input (no copies)', () => {
    const frame = frameOf(message(alice, bob), alice.signer)
    const { payload } = decodeSignedMessage(frame)
    const msg = decodeMessage(payload)
    assert.equal(payload.buffer, frame.buffer)
    assert.equal(msg.body.buffer, frame.buffer)
  })

  it('refuses to encode what it could not decode', () => {
    const bad: Array<[string, Partial<Message>]> = [
      ['short nonce', { nonce: new Uint8Array(MIN_NONCE_BYTES - 1) }],
      ['long nonce', { nonce: new Uint8Array(MAX_NONCE_BYTES + 1) }],
      ['negative ttl', { ttl: -1 }],
      ['ttl above uint32', { ttl: 2 ** 32 }],
      ['fractional timestamp', { timestamp: 1.5 }],
      ['unsafe timestamp', { timestamp: 2 ** 53 }],
      ['version above uint32', { version: 2 ** 32 }],
      ['unknown kind', { kind: 'toString' as MessageKind }],
      ['lone surrogate', { service: 'a\uD800b' }],
      ['body not bytes', { body: 'text' as unknown as Uint8Array }]
    ]
    for (const [name, overrides] of bad) {
      assert.throws(() => encodeMessage(message(alice, bob, overrides)), InvalidArgumentError, name)
    }
    assert.throws(() => encodeSignedMessage({ payload: new Uint8Array(0), signature: new Uint8Array(64) }), InvalidArgumentError)
    assert.throws(() => encodeSignedMessage({ payload: Uint8Array.of(8, 1), signature: new Uint8Array(63) }), InvalidArgumentError)
  })

  describe('decoder totality', () => {
    const ITERATIONS = 10_000

    it('10,000 random byte strings decode canonically or throw MalformedFrame/UnsupportedVersion', () => {
      const rand = prng(0xa9e17)
      let decodedFrames = 0
      let decodedPayloads = 0
      for (let i = 0; i < ITERATIONS; i++) {
        const input = randomBytes(rand, randomInt(rand, 160))
        // bias half of the inputs to get past the first checks: a payload tag
        // (frame), or a valid version field so the field loop sees random bytes
        if (input.length > 1 && i % 2 === 0) {
          input[0] = i % 4 === 0 ? 0x0a : 0x08
          if (i % 4 === 2) input[1] = 0x01
        }
        try {
          decodeFrameCanonically(input)
          decodedFrames++
        } catch (err) {
          if (!isDecodeError(err)) throw err
        }
        try {
          const msg = decodeMessage(input)
          assert.deepEqual(encodeMessage(msg), input)
          decodedPayloads++
        } catch (err) {
          if (!isDecodeError(err)) throw err
        }
      }
      // random bytes essentially never form a valid message; the point is that nothing else escaped
      assert.ok(decodedFrames + decodedPayloads < ITERATIONS)
    })

    it('10,000 single- and multi-byte mutations of a valid frame decode canonically or throw MalformedFrame/UnsupportedVersion', () => {
      const rand = prng(0x5eed)
      const frame = frameOf(message(alice, bob, { token: Uint8Array.of(1, 2, 3), inReplyTo: 'r', kind: 'response' }), alice.signer)
      const errors = new Map<string, number>()
      let decoded = 0
      for (let i = 0; i < ITERATIONS; i++) {
        const bytes = [...frame]
        const mutations = 1 + (i % 4 === 0 ? randomInt(rand, 8) : 0)
        for (let m = 0; m < mutations; m++) {
          const at = randomInt(rand, bytes.length + 1)
          switch (randomInt(rand, 6)) {
            case 0: bytes[at] = randomInt(rand, 256); break // overwrite
            case 1: bytes[at] = (bytes[at] ?? 0) ^ (1 << randomInt(rand, 8)); break // bit flip
            case 2: bytes.splice(at, 0, randomInt(rand, 256)); break // insert
            case 3: bytes.splice(at, 1 + randomInt(rand, 4)); break // delete
            case 4: bytes.length = Math.min(bytes.length, at); break // truncate
            default: bytes[at] = [0x00, 0x7f, 0x80, 0xff][randomInt(rand, 4)] as number // varint edge bytes
          }
        }
        const input = Uint8Array.from(bytes.filter((b) => b !== undefined))
        try {
          decodeFrameCanonically(input)
          decoded++
        } catch (err) {
          if (!isDecodeError(err)) throw err
          const name = (err as Error).name
          errors.set(name, (errors.get(name) ?? 0) + 1)
        }
      }
      // both outcomes occur, so the mutations really exercise the decoder
      assert.ok(decoded > 0, 'some mutations (e.g. inside the signature or body) still decode')
      assert.ok((errors.get('MalformedFrameError') ?? 0) > 0)
    })

    it('mutated payloads decode canonically or throw MalformedFrame/UnsupportedVersion', () => {
      const rand = prng(0xc0ffee)
      const payload = encodeMessage(message(alice, bob, { kind: 'error', inReplyTo: 'x', token: Uint8Array.of(9) }))
      for (let i = 0; i < ITERATIONS; i++) {
        const input = Uint8Array.from(payload)
        const flips = 1 + randomInt(rand, 3)
        for (let f = 0; f < flips; f++) input[randomInt(rand, input.length)] = randomInt(rand, 256)
        const cut = i % 3 === 0 ? randomInt(rand, input.length) : input.length
        try {
          const msg = decodeMessage(input.subarray(0, cut))
          assert.deepEqual(encodeMessage(msg), Uint8Array.from(input.subarray(0, cut)))
        } catch (err) {
          if (!isDecodeError(err)) throw err
        }
      }
    })
  })
})
