import { AgentnetError, PeerUnreachableError } from '../errors/index.ts'
import { cardKey, decodeCard, encodeCard } from './codec.ts'
import type { AgentCard, CardContent } from './codec.ts'
import type { Guarded } from '../outbox/index.ts'
import type { AbortOptions, ContentRouting, PeerId, PrivateKey, Startable } from '@libp2p/interface'
import type { Logger } from 'pino'

export class CardNotFoundError extends AgentnetError { override readonly code = 'CardNotFound' }

/** How often the node re-publishes its card (DHT records expire) */
export const CARD_REPUBLISH_MS = 30 * 60_000
/** The first publication, once the node has had a moment to find peers */
export const CARD_FIRST_PUBLISH_MS = 1000
/** One DHT put or get, at most */
export const CARD_DHT_TIMEOUT_MS = 30_000

export interface CardServiceComponents {
  peerId: PeerId
  privateKey: PrivateKey
  /** undefined when the DHT is disabled */
  contentRouting: ContentRouting | undefined
  logger?: Logger
  /** Told after each successful publication (for the `card published` milestone) */
  onPublished?: (seq: number) => void
}

export interface CardServiceInit {
  /** The card as configured; agent-authored content, so it passed the outbox */
  card: Guarded<CardContent>
}

/**
 * Publishes this node's signed card in the DHT (soon after start, then every
 * 30 minutes, and when an agent changes it) and looks up other peers' cards.
 */
export class CardService implements Startable {
  private readonly components: CardServiceComponents
  private card: CardContent
  private lastSeq = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor (components: CardServiceComponents, init: CardServiceInit) {
    this.components = components
    this.card = { ...init.card }
  }

  start (): void {
    if (this.components.contentRouting != null) {
      this.schedule(CARD_FIRST_PUBLISH_MS)
    }
  }

  stop (): void {
    clearTimeout(this.timer)
  }

  /** The card content as the outbox admitted it (a new object after each publish) */
  content (): Readonly<CardContent> {
    return this.card
  }

  /**
   * Sign and publish our card (replacing the fields given). Resolves once at
   * least one DHT peer stored it.
   */
  async publish (content?: Guarded<Partial<CardContent>>, options: AbortOptions = {}): Promise<AgentCard> {
    return this.put({ ...this.card, ...content }, options)
  }

  /** Sign and store `next`: every field came through the outbox (at construction or in `publish`) */
  private async put (next: CardContent, options: AbortOptions = {}): Promise<AgentCard> {
    const routing = this.requireDht()
    const seq = Math.max(Date.now(), this.lastSeq + 1)
    const value = encodeCard(next, this.components.privateKey, seq)
    this.card = next
    this.lastSeq = seq
    await routing.put(cardKey(this.components.peerId), value, { signal: options.signal ?? AbortSignal.timeout(CARD_DHT_TIMEOUT_MS) })
    this.components.onPublished?.(seq)
    return { peerId: this.components.peerId.toString(), seq, ...next }
  }

  /** Fetch a peer's card from the DHT and verify it (every DHT hop validated it too) */
  async lookup (peer: PeerId, options: AbortOptions = {}): Promise<AgentCard> {
    const routing = this.requireDht()
    const key = cardKey(peer)
    let value: Uint8Array
    try {
      value = await routing.get(key, { signal: options.signal ?? AbortSignal.timeout(CARD_DHT_TIMEOUT_MS) })
    } catch (err) {
      throw new CardNotFoundError(`no card found for ${peer.toString()}: ${(err as Error).message}`)
    }
    return decodeCard(key, value)
  }

  private requireDht (): ContentRouting {
    if (this.components.contentRouting == null) {
      throw new PeerUnreachableError('the DHT is disabled in this node\'s config')
    }
    return this.components.contentRouting
  }

  private schedule (delayMs: number): void {
    this.timer = setTimeout(() => {
      this.put(this.card).then(() => {
        this.schedule(CARD_REPUBLISH_MS)
      }, (err: Error) => {
        this.components.logger?.debug({ err: err.message }, 'card publish failed; retrying')
        this.schedule(Math.min(delayMs * 2, 60_000))
      })
    }, delayMs)
    this.timer.unref()
  }
}
