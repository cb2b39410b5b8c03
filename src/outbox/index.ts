/**
 * @packageDocumentation
 *
 * The outbox: the one door through which agent-authored content leaves the
 * node. Requests, one-way messages, reply bodies, error texts from a local
 * agent, trust-request reasons, agent-card fields and group messages all
 * pass {@link Outbox.admit} exactly once, before anything signs or encrypts
 * them. The outbox runs the outbound stages the composition root declares
 * (`src/agent`: trust check, then the leakage guard) and returns the content
 * branded {@link Guarded}.
 *
 * Skipping the outbox is a compile error: the send, reply, trust-request and
 * card-publish paths accept only {@link Guarded} values, and this module is
 * the only place that makes one (a test checks that no other file casts to
 * the brand).
 *
 * @example
 *
 * ```TypeScript
 * import { Outbox } from './src/outbox/index.ts'
 *
 * const outbox = new Outbox([
 *   { name: 'no-shouting', run: (content) => { if (content.text === 'HELLO') throw new Error('quieter'); return content } }
 * ])
 * const body = await outbox.admitText({ kind: 'trust-reason', to: '12D3KooW…', text: 'we met at the fair' })
 * // `body` is a Guarded<string>: trust.request(peer, body) accepts it
 * ```
 */

import { isUtf8 } from 'node:buffer'
import type { AbortOptions } from '@libp2p/interface'

declare const screened: unique symbol

/**
 * Content that passed the outbox. Only this module makes one, so a function
 * taking `Guarded<…>` cannot be handed content that skipped the guard.
 */
export type Guarded<T> = T & { readonly [screened]: true }
/** A message body (request, one-way, reply, group message) that passed the outbox */
export type GuardedBody = Guarded<Uint8Array>
/** A text (error message, trust reason) that passed the outbox */
export type GuardedText = Guarded<string>

/** What kind of agent-authored content is leaving */
export type OutboundKind = 'request' | 'oneway' | 'reply' | 'error' | 'trust-reason' | 'card' | 'group'

/** Every {@link OutboundKind}, for counters and documentation */
export const OUTBOUND_KINDS: readonly OutboundKind[] = ['request', 'oneway', 'reply', 'error', 'trust-reason', 'card', 'group']

/**
 * One piece of content on its way out. A stage may return it changed (the
 * guard's redaction) or throw a typed error to refuse it (`LeakBlocked`,
 * `RevokedByPeer`); nothing is sent then.
 */
export interface OutboundContent {
  kind: OutboundKind
  /** Recipient peer ID; absent for content published to everyone (an agent card) */
  to?: string
  /** Recipient service (requests, one-way messages, replies); the group ID for group messages */
  service?: string
  /** The text (UTF-8 decoded) of the content */
  text: string
  /**
   * The original bytes when the content is binary (`application/octet-stream`),
   * so a stage that does not change the content hands the bytes on untouched
   */
  bytes?: Uint8Array
  /** `text` is the latin1 reading of `bytes`, which are not UTF-8 (see {@link screenedText}): the guard screens it as binary */
  latin1?: boolean
  contentType: string
}

/** One outbound stage, e.g. the trust check or the leakage guard */
export interface OutboundStage {
  readonly name: string
  run: (content: OutboundContent, options: AbortOptions) => OutboundContent | Promise<OutboundContent>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * The text the stages screen for a body. Binary that is not UTF-8 is read as
 * latin1, one character per byte: decoding random bytes as UTF-8 costs
 * ~25 ms per MiB (every bad sequence becomes U+FFFD), latin1 ~1 ms, and ASCII
 * runs (keys, tokens, PII) read the same either way. A registered value with
 * non-ASCII characters is also matched in its latin1 reading (src/guard).
 */
export function screenedText (body: Uint8Array, binary: boolean): { text: string, latin1: boolean } {
  if (binary && !isUtf8(body)) {
    return { text: Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('latin1'), latin1: true }
  }
  return { text: decoder.decode(body), latin1: false }
}

export const TEXT_TYPE = 'text/plain; charset=utf-8'

/**
 * Runs the outbound stages, in the order given, over every piece of
 * agent-authored content, and brands what comes out.
 */
export class Outbox {
  readonly stages: readonly OutboundStage[]
  /** How many pieces of content of each kind were admitted (checked by tests, exported as metrics) */
  readonly admitted: Record<OutboundKind, number>
  /** Refused pieces of content by kind */
  readonly refused: Record<OutboundKind, number>

  constructor (stages: readonly OutboundStage[]) {
    this.stages = stages
    this.admitted = Object.fromEntries(OUTBOUND_KINDS.map(k => [k, 0])) as Record<OutboundKind, number>
    this.refused = Object.fromEntries(OUTBOUND_KINDS.map(k => [k, 0])) as Record<OutboundKind, number>
  }

  private async run (content: OutboundContent, options: AbortOptions): Promise<OutboundContent> {
    let current = content
    try {
      for (const stage of this.stages) {
        options.signal?.throwIfAborted()
        current = await stage.run(current, options)
      }
    } catch (err) {
      this.refused[content.kind]++
      throw err
    }
    this.admitted[content.kind]++
    return current
  }

  /** Admit a body; returns the bytes to send (changed if a stage redacted them) */
  async admit (content: { kind: OutboundKind, to?: string, service?: string, body: Uint8Array, contentType: string }, options: AbortOptions = {}): Promise<{ body: GuardedBody, contentType: string }> {
    const binary = content.contentType === 'application/octet-stream'
    const { text, latin1 } = screenedText(content.body, binary)
    const out = await this.run({
      kind: content.kind,
      to: content.to,
      service: content.service,
      text,
      bytes: binary ? content.body : undefined,
      latin1,
      contentType: content.contentType
    }, options)
    // a stage that changed the text (a redaction) replaces binary content with that text
    const body = out.bytes != null && out.text === text ? out.bytes : encoder.encode(out.text)
    return { body: body as GuardedBody, contentType: out.contentType }
  }

  /** Admit a text (an error message, a trust reason) */
  async admitText (content: { kind: OutboundKind, to?: string, service?: string, text: string }, options: AbortOptions = {}): Promise<GuardedText> {
    const out = await this.run({ ...content, contentType: TEXT_TYPE }, options)
    return out.text as GuardedText
  }

  /**
   * Admit a JSON value (agent-card fields): it is screened as its JSON text
   * and must still parse after the stages ran (a redaction keeps JSON valid
   * because it replaces spans inside strings only)
   */
  async admitJson<T> (content: { kind: OutboundKind, to?: string, value: T }, options: AbortOptions = {}): Promise<Guarded<T>> {
    const out = await this.run({ kind: content.kind, to: content.to, text: JSON.stringify(content.value), contentType: 'application/json' }, options)
    return JSON.parse(out.text) as Guarded<T>
  }
}
