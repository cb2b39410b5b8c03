/**
 * An "attacker" for integration tests: a bare libp2p node (TCP, Noise, yamux,
 * identify, ping) with its own Ed25519 key and none of agentnet's checks. It
 * dials a real agentnet node, opens `/agentnet/msg/1.0.0` streams, writes
 * whatever frames it likes and records what the node answers: unsigned acks
 * (`0x1a <len> <id>`) and signed envelopes (responses and `error`s whose body
 * is `{code, message}`).
 *
 * Frames can be sealed legitimately ({@link Attacker.seal}) or crafted field
 * by field from an arbitrary, possibly inconsistent {@link Message} and an
 * arbitrary signer ({@link craftFrame}).
 */

import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { lpStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import { encodeFrame, FrameDecoder } from '../../src/messaging/index.ts'
import {
  createSigner,
  decodeMessage,
  decodeSignedMessage,
  encodeMessage,
  encodeSignedMessage,
  PROTOCOL_VERSION,
  sealEnvelope,
  signingPayload,
  verifySignature
} from '../../src/protocol/index.ts'
import type { Message, MessageSigner, SealFields } from '../../src/protocol/index.ts'
import type { Connection, Libp2p, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export const MSG_PROTOCOL = '/agentnet/msg/2.0.0'
export const TOKEN_PROTOCOL = '/agentnet/token/1.0.0'
const ACK_TAG = 0x1a

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** What came back on a stream */
export type Received =
  | { type: 'ack', id: string }
  | {
    type: 'message'
    message: Message
    /** the envelope's signature verified under the expected remote peer */
    signatureValid: boolean
    /** `{code, message}` of an `error` envelope */
    error?: { code: string, message: string }
  }
  | { type: 'garbage', frame: Uint8Array, reason: string }

export interface OpenOptions {
  /** Open a fresh connection even if one to the target exists */
  newConnection?: boolean
  signal?: AbortSignal
}

/** One `/agentnet/msg/1.0.0` stream driven by the attacker */
export class AttackStream {
  readonly stream: Stream
  readonly connection: Connection
  /** Who we expect to sign what comes back */
  readonly remotePeer: PeerId
  readonly received: Received[] = []
  /** set once the stream closed or was reset */
  closed = false
  /** the error of a reset, if any */
  closeError: Error | undefined
  private readonly decoder = new FrameDecoder(64 * 1024 * 1024)
  private waiters = new Set<() => void>()

  constructor (stream: Stream, connection: Connection) {
    this.stream = stream
    this.connection = connection
    this.remotePeer = connection.remotePeer
    stream.addEventListener('message', (evt) => {
      let frames: Uint8Array[]
      try {
        frames = this.decoder.push(evt.data)
      } catch (err) {
        this.received.push({ type: 'garbage', frame: new Uint8Array(0), reason: (err as Error).message })
        this.wake()
        return
      }
      for (const frame of frames) {
        this.received.push(this.parse(frame))
      }
      this.wake()
    })
    stream.addEventListener('close', (evt) => {
      this.closed = true
      this.closeError = evt.error
      this.wake()
    })
  }

  private parse (frame: Uint8Array): Received {
    // copy: the decoder hands out views into its buffer
    frame = frame.slice()
    if (frame.length >= 2 && frame[0] === ACK_TAG && frame[1] === frame.length - 2) {
      return { type: 'ack', id: decoder.decode(frame.subarray(2)) }
    }
    try {
      const { payload, signature } = decodeSignedMessage(frame)
      const message = decodeMessage(payload)
      let signatureValid = false
      try {
        signatureValid = verifySignature(this.remotePeer, signedBytesOf(payload), signature)
      } catch {}
      const out: Received = { type: 'message', message, signatureValid }
      if (message.kind === 'error') {
        try {
          const body = JSON.parse(decoder.decode(message.body)) as { code?: unknown, message?: unknown }
          out.error = { code: String(body.code), message: String(body.message) }
        } catch {
          out.error = { code: '<unparseable>', message: decoder.decode(message.body) }
        }
      }
      return out
    } catch (err) {
      return { type: 'garbage', frame, reason: (err as Error).message }
    }
  }

  private wake (): void {
    for (const w of [...this.waiters]) w()
  }

  /** Write raw bytes (no framing added), respecting back-pressure */
  async sendRaw (bytes: Uint8Array): Promise<void> {
    if (!this.stream.send(bytes)) {
      try {
        await this.stream.onDrain({ signal: AbortSignal.timeout(10_000) })
      } catch (err) {
        // onDrain rejects with the close event when the stream dies meanwhile
        throw err instanceof Error ? err : new Error(`stream ${this.stream.status} while waiting to write${this.closeError != null ? ` (${this.closeError.message})` : ''}`)
      }
    }
  }

  /** Length-prefix each frame and write them all in one go */
  async sendFrames (...frames: Uint8Array[]): Promise<void> {
    const parts = frames.map(f => encodeFrame(f))
    const total = parts.reduce((n, p) => n + p.byteLength, 0)
    const out = new Uint8Array(total)
    let offset = 0
    for (const p of parts) {
      out.set(p, offset)
      offset += p.byteLength
    }
    await this.sendRaw(out)
  }

  /** Index of the next item to arrive: pass it as `since` to ignore what came before */
  mark (): number {
    return this.received.length
  }

  /** Resolves with the first item at index >= `since` matching `predicate` */
  async waitFor (predicate: (r: Received) => boolean, timeoutMs = 5000, since = 0): Promise<Received> {
    const find = (): Received | undefined => {
      for (let i = since; i < this.received.length; i++) {
        const r = this.received[i] as Received
        if (predicate(r)) return r
      }
      return undefined
    }
    const found = find()
    if (found !== undefined) return found
    return new Promise<Received>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined
      const check = (): void => {
        const hit = find()
        if (hit !== undefined) {
          done()
          resolve(hit)
        } else if (this.closed) {
          done()
          reject(new Error(`stream closed before the expected frame arrived${this.closeError != null ? ` (${this.closeError.message})` : ''}`))
        }
      }
      const done = (): void => {
        this.waiters.delete(check)
        clearTimeout(timer)
      }
      timer = setTimeout(() => {
        done()
        reject(new Error(`no matching frame within ${timeoutMs} ms (received ${this.received.length})`))
      }, timeoutMs)
      this.waiters.add(check)
      check()
    })
  }

  /** The answer (ack, response or error) to request `id`, among items from index `since` on */
  async replyTo (id: string, since = 0, timeoutMs = 5000): Promise<Received> {
    return this.waitFor(r => (r.type === 'ack' && r.id === id) || (r.type === 'message' && r.message.inReplyTo === id), timeoutMs, since)
  }

  /**
   * Send one frame and return the error code the node answers request `id`
   * with. Throws if the answer is not a correctly signed `error` envelope.
   */
  async expectError (frame: Uint8Array, id: string, timeoutMs = 5000): Promise<string> {
    const since = this.mark()
    await this.sendFrames(frame)
    const reply = await this.replyTo(id, since, timeoutMs)
    if (reply.type !== 'message' || reply.error === undefined) {
      throw new Error(`expected an error reply to ${id}, got ${describeReceived(reply)}`)
    }
    if (!reply.signatureValid) {
      throw new Error(`error reply to ${id} is not signed by ${this.remotePeer.toString()}`)
    }
    return reply.error.code
  }

  /** Send one frame and return the node's answer to request `id` */
  async exchange (frame: Uint8Array, id: string, timeoutMs = 5000): Promise<Received> {
    const since = this.mark()
    await this.sendFrames(frame)
    return this.replyTo(id, since, timeoutMs)
  }

  /** Resolves when the stream is closed or reset */
  async waitClosed (timeoutMs = 5000): Promise<void> {
    if (this.closed) return
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check)
        reject(new Error(`stream still open after ${timeoutMs} ms`))
      }, timeoutMs)
      const check = (): void => {
        if (this.closed) {
          clearTimeout(timer)
          this.waiters.delete(check)
          resolve()
        }
      }
      this.waiters.add(check)
    })
  }

  /** Reset the stream (both sides see it closed at once) */
  reset (): void {
    if (!this.closed) this.stream.abort(new Error('attacker reset'))
  }

  async close (): Promise<void> {
    if (this.closed) return
    await this.stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => { this.stream.abort(new Error('close failed')) })
  }
}

export function describeReceived (r: Received): string {
  if (r.type === 'ack') return `ack(${r.id})`
  if (r.type === 'garbage') return `garbage(${r.reason})`
  return `${r.message.kind}(inReplyTo=${r.message.inReplyTo}${r.error != null ? `, ${r.error.code}` : ''})`
}

/** Encode `message` as is (it may be inconsistent) and sign the payload with `signer` (anyone) */
export function craftFrame (message: Message, signer: MessageSigner): Uint8Array {
  const payload = encodeMessage(message)
  return encodeSignedMessage({ payload, signature: signer.sign(signedBytesOf(payload)) })
}

/**
 * What the envelope signature covers for `payload` (`/agentnet/msg/2.0.0`:
 * the payload with its body replaced by the body's SHA-256); the payload
 * itself when it does not decode (such a frame is refused before its
 * signature is looked at).
 */
export function signedBytesOf (payload: Uint8Array): Uint8Array {
  try {
    return signingPayload(payload, decodeMessage(payload).body)
  } catch {
    return payload
  }
}

/** A frame built from an already encoded payload and any 64-byte signature */
export function frameFromParts (payload: Uint8Array, signature: Uint8Array): Uint8Array {
  return encodeSignedMessage({ payload, signature })
}

/** Split a frame into its decoded message, payload and signature (copies) */
export function dissect (frame: Uint8Array): { message: Message, payload: Uint8Array, signature: Uint8Array } {
  const { payload, signature } = decodeSignedMessage(frame.slice())
  return { message: decodeMessage(payload), payload, signature }
}

/** Re-encode a captured frame with some fields changed, keeping its original signature */
export function tamper (frame: Uint8Array, changes: Partial<Message>): Uint8Array {
  const { message, signature } = dissect(frame)
  return frameFromParts(encodeMessage({ ...message, ...changes }), signature)
}

let counter = 0

/** A fresh request ID */
export function newId (prefix = 'atk'): string {
  counter++
  return `${prefix}-${counter}-${randomBytes(4).toString('hex')}`
}

export class Attacker {
  readonly libp2p: Libp2p
  readonly key: PrivateKey
  readonly peerId: PeerId
  readonly signer: MessageSigner
  private readonly streams = new Set<AttackStream>()

  private constructor (libp2p: Libp2p, key: PrivateKey) {
    this.libp2p = libp2p
    this.key = key
    this.peerId = libp2p.peerId
    this.signer = createSigner(key)
  }

  /** Start an attacker; pass `key` to reuse an identity (e.g. a stolen one) */
  static async create (key?: PrivateKey): Promise<Attacker> {
    key ??= await generateKeyPair('Ed25519')
    const libp2p = await createLibp2p({
      privateKey: key,
      addresses: { listen: [] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { inboundConnectionThreshold: 1000 },
      services: { identify: identify(), ping: ping() }
    })
    await libp2p.start()
    return new Attacker(libp2p, key)
  }

  /** Dial `target`, reusing an open connection unless `newConnection` */
  async connect (target: Multiaddr, options: OpenOptions = {}): Promise<Connection> {
    return this.libp2p.dial(target, { force: options.newConnection === true, signal: options.signal ?? AbortSignal.timeout(10_000) })
  }

  /** Open a msg stream on `target` (an existing connection or a multiaddr) */
  async open (target: Multiaddr | Connection, options: OpenOptions = {}): Promise<AttackStream> {
    const connection = 'newStream' in target ? target : await this.connect(target, options)
    const stream = await connection.newStream(MSG_PROTOCOL, { signal: options.signal ?? AbortSignal.timeout(10_000) })
    const s = new AttackStream(stream, connection)
    this.streams.add(s)
    stream.addEventListener('close', () => { this.streams.delete(s) })
    return s
  }

  /** Seal a legitimate envelope as this attacker (a correct frame from an authenticated peer) */
  seal (fields: SealFields): Uint8Array {
    return sealEnvelope(fields, this.signer)
  }

  /** A complete, valid message from this attacker to `to`, for crafting */
  message (to: PeerId, overrides: Partial<Message> = {}): Message {
    return {
      version: PROTOCOL_VERSION,
      from: this.signer.from,
      to: to.toMultihash().bytes,
      service: 'echo',
      kind: 'request',
      id: newId(),
      inReplyTo: '',
      nonce: new Uint8Array(randomBytes(16)),
      timestamp: Date.now(),
      ttl: 5000,
      contentType: 'text/plain; charset=utf-8',
      token: new Uint8Array(0),
      body: encoder.encode('hello'),
      ...overrides
    }
  }

  /**
   * A legitimate request over `stream` to the `service` on the stream's peer:
   * resolves with the reply (response, error or ack).
   */
  async request (stream: AttackStream, service: string, body: string, extra: Partial<SealFields> = {}): Promise<Received> {
    const id = newId('legit')
    return stream.exchange(this.seal({ to: stream.remotePeer, service, kind: 'request', id, body: encoder.encode(body), contentType: 'text/plain; charset=utf-8', ...extra }), id)
  }

  /**
   * Ask `target` for a session token over `/agentnet/token/1.0.0`, like an
   * honest node would (the token is bound to this attacker's peer ID).
   */
  async requestToken (target: Multiaddr | Connection, services: string[], lifetimeMs?: number): Promise<{ token?: Uint8Array, expiresAt?: number, error?: { code: string, message: string } }> {
    const connection = 'newStream' in target ? target : await this.connect(target)
    const signal = AbortSignal.timeout(5000)
    const stream = await connection.newStream(TOKEN_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: 16 * 1024 })
      await lp.write(encoder.encode(JSON.stringify({ services, lifetimeMs })), { signal })
      const reply = JSON.parse(decoder.decode((await lp.read({ signal })).subarray())) as { token?: string, expiresAt?: number, error?: { code: string, message: string } }
      return {
        token: typeof reply.token === 'string' ? new Uint8Array(Buffer.from(reply.token, 'base64')) : undefined,
        expiresAt: reply.expiresAt,
        error: reply.error
      }
    } finally {
      await stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => { stream.abort(new Error('close failed')) })
    }
  }

  async stop (): Promise<void> {
    for (const s of this.streams) s.reset()
    await this.libp2p.stop()
  }
}
