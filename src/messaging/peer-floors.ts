/**
 * After-restart floors that peers told us in signed `RestartedAt` answers:
 * until our clock passes a peer's floor, our envelopes to it are stamped just
 * past it (every timestamp at or below it is refused there).
 */
import { MAX_WINDOW_MS } from '../protocol/index.ts'

/** Floors remembered at most (the oldest is forgotten) */
const MAX_PEER_FLOORS = 4096

export class PeerFloors {
  private readonly floors = new Map<string, number>()
  private readonly now: () => number

  constructor (now: () => number) {
    this.now = now
  }

  /** Our clock, or just past the peer's floor while our clock has not passed it */
  stampFor (peer: string): number {
    const now = this.now()
    const floor = this.floors.get(peer)
    if (floor === undefined) return now
    if (floor < now) {
      this.floors.delete(peer)
      return now
    }
    return floor + 1
  }

  /**
   * Keep a peer's floor. An honest floor is at most the peer's start plus its
   * allowed skew (300 s at most): one further ahead is refused (`false`), else
   * a hostile peer could make us stamp far-future timestamps.
   */
  learn (peer: string, floor: number): boolean {
    if (floor - this.now() > MAX_WINDOW_MS) {
      return false
    }
    this.floors.delete(peer)
    this.floors.set(peer, floor)
    if (this.floors.size > MAX_PEER_FLOORS) {
      const oldest = this.floors.keys().next().value
      if (oldest !== undefined) this.floors.delete(oldest)
    }
    return true
  }
}
