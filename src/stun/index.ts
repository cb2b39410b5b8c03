/**
 * @packageDocumentation
 *
 * A minimal STUN binding server (RFC 5389 §7, §15.2): every Binding Request
 * is answered with a Binding Success Response carrying the request's source
 * address as XOR-MAPPED-ADDRESS (and MAPPED-ADDRESS for RFC 3489 clients).
 * No authentication, no TURN; UDP over IPv4 or IPv6.
 *
 * Bootstrap nodes run it (`nat.stunServer`), so agents behind NAT learn the
 * address their router maps them to — the server-reflexive candidate WebRTC
 * needs to connect two NATed agents directly — from the network's own
 * bootstrap nodes instead of a third party's STUN server.
 *
 * @example
 *
 * ```ts
 * import { startStunServer } from './index.ts'
 *
 * const stun = await startStunServer({ host: '0.0.0.0', port: 3478 })
 * await stun.close()
 * ```
 */

import { createSocket } from 'node:dgram'
import { isIPv4 } from 'node:net'
import type { Socket } from 'node:dgram'

export const MAGIC_COOKIE = 0x2112A442
const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_MAPPED_ADDRESS = 0x0001
const ATTR_XOR_MAPPED_ADDRESS = 0x0020
const ATTR_SOFTWARE = 0x8022
const HEADER_BYTES = 20
const SOFTWARE = Buffer.from('agentnet')

export interface StunServer {
  socket: Socket
  address: string
  port: number
  /** Binding requests answered so far */
  answered: () => number
  close: () => Promise<void>
}

/** Encode an address attribute value; `xor` applies RFC 5389 §15.2 */
function addressValue (ip: string, port: number, transactionId: Buffer, xor: boolean): Buffer {
  const v4 = isIPv4(ip)
  const addr = v4 ? Buffer.from(ip.split('.').map(Number)) : ipv6Bytes(ip)
  const value = Buffer.alloc(4 + addr.length)
  value[1] = v4 ? 0x01 : 0x02
  value.writeUInt16BE(xor ? port ^ (MAGIC_COOKIE >>> 16) : port, 2)
  if (xor) {
    const mask = Buffer.concat([uint32(MAGIC_COOKIE), transactionId])
    for (let i = 0; i < addr.length; i++) addr[i] = (addr[i] as number) ^ (mask[i] as number)
  }
  addr.copy(value, 4)
  return value
}

function uint32 (n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n >>> 0)
  return b
}

function ipv6Bytes (ip: string): Buffer {
  const [head = '', tail = ''] = ip.split('::')
  const h = head === '' ? [] : head.split(':')
  const t = tail === '' ? [] : tail.split(':')
  const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

function attribute (type: number, value: Buffer): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4)
  padded.writeUInt16BE(type, 0)
  padded.writeUInt16BE(value.length, 2)
  value.copy(padded, 4)
  return padded
}

/**
 * The response to one datagram, or undefined when it is not a well-formed
 * STUN Binding Request (anything else is silently dropped, RFC 5389 §7.3)
 */
export function bindingResponse (request: Buffer, ip: string, port: number): Buffer | undefined {
  if (request.length < HEADER_BYTES || (request[0] as number) >> 6 !== 0) return undefined
  if (request.readUInt16BE(0) !== BINDING_REQUEST) return undefined
  if (request.readUInt32BE(4) !== MAGIC_COOKIE) return undefined
  const length = request.readUInt16BE(2)
  if (length % 4 !== 0 || HEADER_BYTES + length !== request.length) return undefined
  const transactionId = request.subarray(8, 20)
  const body = Buffer.concat([
    attribute(ATTR_XOR_MAPPED_ADDRESS, addressValue(ip, port, transactionId, true)),
    attribute(ATTR_MAPPED_ADDRESS, addressValue(ip, port, transactionId, false)),
    attribute(ATTR_SOFTWARE, SOFTWARE)
  ])
  const header = Buffer.alloc(HEADER_BYTES)
  header.writeUInt16BE(BINDING_SUCCESS, 0)
  header.writeUInt16BE(body.length, 2)
  header.writeUInt32BE(MAGIC_COOKIE, 4)
  transactionId.copy(header, 8)
  return Buffer.concat([header, body])
}

export async function startStunServer (options: { host?: string, port?: number } = {}): Promise<StunServer> {
  const host = options.host ?? '0.0.0.0'
  const socket = createSocket(isIPv4(host) ? 'udp4' : 'udp6')
  let answered = 0
  socket.on('message', (msg, rinfo) => {
    const response = bindingResponse(msg, rinfo.address, rinfo.port)
    if (response != null) {
      answered++
      socket.send(response, rinfo.port, rinfo.address)
    }
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(options.port ?? 3478, host, () => { socket.off('error', reject); resolve() })
  })
  const bound = socket.address()
  return {
    socket,
    address: bound.address,
    port: bound.port,
    answered: () => answered,
    close: async () => { await new Promise<void>(resolve => socket.close(() => { resolve() })) }
  }
}

