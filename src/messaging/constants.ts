import { DEFAULT_OFFLOAD_UTILIZATION } from '../protocol/index.ts'
import type { MessagingInit } from './index.ts'

/** Every {@link MessagingInit} option but the replay cache, filled in */
export type MessagingSettings = Required<Omit<MessagingInit, 'replayCache'>>

/** Defaults of {@link MessagingInit} (the config schema's `messaging.*` defaults match where they overlap) */
export const MESSAGING_DEFAULTS: Readonly<MessagingSettings> = {
  maxBodyBytes: 1024 * 1024,
  replayWindowMs: 60_000,
  maxClockSkewMs: 30_000,
  requestTimeoutMs: 10_000,
  retries: 2,
  maxInboundStreams: 64,
  maxInFlightPerPeer: 1024,
  maxIdempotenceEntries: 100_000,
  maxIdempotenceBytes: 64 * 1024 * 1024,
  frameTimeoutMs: 20_000,
  untrustedInFlightBytes: 4 * 1024 * 1024,
  untrustedInFlightRequests: 32,
  untrustedIdleStreamMs: 60_000,
  cryptoWorkers: 'auto',
  cryptoOffloadUtilization: DEFAULT_OFFLOAD_UTILIZATION
}
