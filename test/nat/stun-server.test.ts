import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { after, before, describe, it } from 'node:test'
import { MAGIC_COOKIE, bindingResponse, startStunServer } from './stun-server.ts'
import type { StunServer } from './stun-server.ts'

function bindingRequest (transactionId: Buffer): Buffer {
  const header = Buffer.alloc(20)
  header.writeUInt16BE(0x0001, 0)
  header.writeUInt16BE(0, 2)
  header.writeUInt32BE(MAGIC_COOKIE, 4)
  transactionId.copy(header, 8)
  return header
}

/** Decode XOR-MAPPED-ADDRESS (IPv4) from a Binding Success Response */
function xorMapped (response: Buffer): { ip: string, port: number } {
  let offset = 20
  while (offset + 4 <= response.length) {
    const type = response.readUInt16BE(offset)
    const length = response.readUInt16BE(offset + 2)
    if (type === 0x0020) {
      const port = response.readUInt16BE(offset + 6) ^ (MAGIC_COOKIE >>> 16)
      const cookie = Buffer.alloc(4)
      cookie.writeUInt32BE(MAGIC_COOKIE)
      const ip = [...response.subarray(offset + 8, offset + 12)].map((b, i) => b ^ (cookie[i] as number)).join('.')
      return { ip, port }
    }
    offset += 4 + Math.ceil(length / 4) * 4
  }
  throw new Error('no XOR-MAPPED-ADDRESS')
}

describe('STUN binding server fixture (RFC 5389)', () => {
  let server: StunServer
  before(async () => { server = await startStunServer({ host: '127.0.0.1', port: 0 }) })
  after(async () => { await server.close() })

  it('answers a Binding Request with the source address as XOR-MAPPED-ADDRESS', async () => {
    const client = createSocket('udp4')
    await new Promise<void>(resolve => client.bind(0, '127.0.0.1', resolve))
    const transactionId = randomBytes(12)
    const answer = new Promise<Buffer>(resolve => client.once('message', resolve))
    client.send(bindingRequest(transactionId), server.port, '127.0.0.1')
    const response = await answer
    const { port } = client.address()
    client.close()
    assert.equal(response.readUInt16BE(0), 0x0101)
    assert.equal(response.readUInt16BE(2), response.length - 20)
    assert.equal(response.readUInt32BE(4), MAGIC_COOKIE)
    assert.deepEqual(response.subarray(8, 20), transactionId)
    assert.deepEqual(xorMapped(response), { ip: '127.0.0.1', port })
    assert.equal(server.answered(), 1)
  })

  it('ignores what is not a well-formed Binding Request', () => {
    const request = bindingRequest(randomBytes(12))
    assert.equal(bindingResponse(request.subarray(0, 19), '1.2.3.4', 5), undefined)
    const wrongCookie = Buffer.from(request)
    wrongCookie.writeUInt32BE(0, 4)
    assert.equal(bindingResponse(wrongCookie, '1.2.3.4', 5), undefined)
    const indication = Buffer.from(request)
    indication.writeUInt16BE(0x0011, 0)
    assert.equal(bindingResponse(indication, '1.2.3.4', 5), undefined)
    const badLength = Buffer.from(request)
    badLength.writeUInt16BE(8, 2)
    assert.equal(bindingResponse(badLength, '1.2.3.4', 5), undefined)
    assert.deepEqual(xorMapped(bindingResponse(request, '198.18.0.11', 40000) as Buffer), { ip: '198.18.0.11', port: 40000 })
  })
})
