/**
 * @packageDocumentation
 *
 * Node configuration: the embedded defaults (`configs/default.json`), an
 * optional user file, then command-line overrides, merged in that order and
 * validated once at start. Validation is strict on purpose: a misspelt key in
 * a security setting must not be silently ignored, so any unknown key or bad
 * value is a {@link ConfigError} naming the offending path.
 *
 * @example
 *
 * ```ts
 * import { loadConfig } from './config/index.ts'
 *
 * const config = await loadConfig({ file: './my.json', overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
 * ```
 */

import { AgentnetError } from '../errors/index.ts'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface ConnectionsConfig {
  /** Upper bound on open libp2p connections */
  maxConnections: number
  /** How long a single dial may take, in ms */
  dialTimeoutMs: number
  /** Inbound connections per second accepted from one remote IP */
  inboundConnectionThreshold: number
}

export interface IpcConfig {
  /** Longest accepted JSON-RPC line on the local socket, in bytes */
  maxLineBytes: number
  /** Concurrent local client connections */
  maxConnections: number
}

export interface MessagingConfig {
  /** Largest accepted message body, in bytes */
  maxBodyBytes: number
  /** How far in the past a message timestamp may lie, in ms (30 000 to 300 000) */
  replayWindowMs: number
  /** How far in the future a message timestamp may lie, in ms */
  maxClockSkewMs: number
  /** Default time a request waits for its response, in ms */
  requestTimeoutMs: number
  /** Re-sends of a timed-out request (same request ID, new nonce) */
  retries: number
}

export interface TokensConfig {
  /** Services that refuse requests without a valid session token */
  protectedServices: string[]
  /** Lifetime of the session tokens this node issues, ms */
  lifetimeMs: number
  /** Longest lifetime a peer may ask for, ms */
  maxLifetimeMs: number
}

export interface DhtConfig {
  enabled: boolean
  /** `server` answers DHT queries; `client` only asks; `auto` becomes a server once a public address is confirmed */
  mode: 'auto' | 'server' | 'client'
  /** Which peer addresses the DHT keeps and hands out: `all` (loopback, LAN and internet), `public` (internet only), `private` (LAN only) */
  addressFilter: 'all' | 'public' | 'private'
}

export interface RelayConfig {
  /** Reserve a slot on a circuit relay (v2) so peers can reach us behind NAT */
  reserve: boolean
  /** Serve as a circuit relay for others */
  server: boolean
  /** Reservations a relay server holds at once */
  maxReservations: number
  reservationTtlMs: number
  /** How long one relayed connection may stay open, ms */
  limitDurationMs: number
  /** How many bytes one relayed connection may carry */
  limitDataBytes: number
}

export interface NatConfig {
  /** AutoNAT v2: learn (and help others learn) reachability */
  autonat: boolean
  /** DCUtR hole punching (cannot punch TCP on Node; kept for peers that can) */
  dcutr: boolean
  /** Map a port on the LAN router with UPnP (multicasts on the LAN) */
  upnp: boolean
  /** WebRTC private-to-private connections, signalled over a relay */
  webrtc: boolean
  /** STUN/TURN servers for WebRTC, e.g. `stun:stun.example.org:3478`; none are contacted unless listed */
  stunServers: string[]
  /** Also use the STUN responder of each configured bootstrap node (`stun:<its address>:3478`) */
  stunFromBootstrap: boolean
  /** Answer STUN binding requests on this UDP port (0: off; the bootstrap profile uses 3478) */
  stunServerPort: number
}

export interface Config {
  /** Multiaddrs to listen on */
  listen: string[]
  /** Multiaddrs to announce instead of the listen addresses (empty: announce what we listen on) */
  announce: string[]
  /** Bootstrap peers (multiaddrs ending in /p2p/<peerId>) to join the network through */
  bootstrap: string[]
  logLevel: LogLevel
  connections: ConnectionsConfig
  dht: DhtConfig
  relay: RelayConfig
  nat: NatConfig
  ipc: IpcConfig
  messaging: MessagingConfig
  tokens: TokensConfig
  /** The agent card this node publishes in the DHT */
  card: CardConfig
  trust: TrustConfig
  /** Connection encrypters in order of preference: `noise` (Noise XX), `tls` (TLS 1.3, mutual); both authenticate the peer ID */
  security: SecurityProtocol[]
}

export type SecurityProtocol = 'noise' | 'tls'
export const SECURITY_PROTOCOLS: readonly SecurityProtocol[] = ['noise', 'tls']

export interface TrustConfig {
  /** Peer IDs trusted without a handshake (a fleet provisioned together) */
  peers: string[]
  /** Services that answer untrusted peers too; everything else is private */
  publicServices: string[]
  /** Refuse connections from peers that are neither trusted nor bootstrap/relay peers */
  strict: boolean
  /** Follow a peer's key rotation whose succession record only the old key signed (a stolen old key can make one) */
  acceptOldKeyOnlySuccession: boolean
}

export interface CardConfig {
  /** Display name (at most 64 characters) */
  name: string
  /** Services the agent offers */
  services: string[]
  /** Free-form JSON metadata */
  metadata: Record<string, unknown>
}

export type ConfigOverrides = { [K in keyof Config]?: Config[K] extends object ? (Config[K] extends unknown[] ? Config[K] : Partial<Config[K]>) : Config[K] }

export class ConfigError extends AgentnetError {
  override readonly code = 'ConfigError'
}

/** Path of the embedded default configuration */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../configs/default.json', import.meta.url))

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

type Check = (value: unknown, path: string) => void

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function integer (min: number, max: number): Check {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(`config: ${path} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    }
  }
}

const multiaddrList: Check = (value, path) => {
  if (!Array.isArray(value)) {
    throw new ConfigError(`config: ${path} must be an array of multiaddr strings`)
  }
  value.forEach((item, i) => {
    if (typeof item !== 'string') {
      throw new ConfigError(`config: ${path}[${i}] must be a multiaddr string, got ${JSON.stringify(item)}`)
    }
    try {
      multiaddr(item)
    } catch {
      throw new ConfigError(`config: ${path}[${i}] is not a valid multiaddr: ${JSON.stringify(item)}`)
    }
  })
}

const serviceList: Check = (value, path) => {
  if (!Array.isArray(value) || !value.every(item => typeof item === 'string' && item.length > 0 && item.length <= 128)) {
    throw new ConfigError(`config: ${path} must be an array of service names (1–128 characters)`)
  }
}

function oneOf (...choices: string[]): Check {
  return (value, path) => {
    if (typeof value !== 'string' || !choices.includes(value)) {
      throw new ConfigError(`config: ${path} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`)
    }
  }
}

const bool: Check = (value, path) => {
  if (typeof value !== 'boolean') {
    throw new ConfigError(`config: ${path} must be true or false, got ${JSON.stringify(value)}`)
  }
}

const peerMultiaddrList: Check = (value, path) => {
  multiaddrList(value, path)
  ;(value as string[]).forEach((item, i) => {
    if (!multiaddr(item).getComponents().some(c => c.name === 'p2p')) {
      throw new ConfigError(`config: ${path}[${i}] must end in /p2p/<peerId>: ${JSON.stringify(item)}`)
    }
  })
}

const urlList: Check = (value, path) => {
  if (!Array.isArray(value) || !value.every(item => typeof item === 'string' && /^(stun|stuns|turn|turns):/.test(item))) {
    throw new ConfigError(`config: ${path} must be an array of stun:/turn: URLs`)
  }
}

const logLevel: Check = (value, path) => {
  if (typeof value !== 'string' || !LOG_LEVELS.includes(value as LogLevel)) {
    throw new ConfigError(`config: ${path} must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`)
  }
}

const securityList: Check = (value, path) => {
  if (!Array.isArray(value) || value.length === 0 || new Set(value).size !== value.length ||
      !value.every(item => SECURITY_PROTOCOLS.includes(item as SecurityProtocol))) {
    throw new ConfigError(`config: ${path} must be a non-empty list of distinct encrypters from ${SECURITY_PROTOCOLS.join(', ')} (in order of preference), got ${JSON.stringify(value)}`)
  }
}

/** The schema: every key the config may hold, and how its value is checked */
const SCHEMA: Record<string, Check | Record<string, Check>> = {
  listen: multiaddrList,
  announce: multiaddrList,
  bootstrap: peerMultiaddrList,
  logLevel,
  dht: {
    enabled: bool,
    mode: oneOf('auto', 'server', 'client'),
    addressFilter: oneOf('all', 'public', 'private')
  },
  relay: {
    reserve: bool,
    server: bool,
    maxReservations: integer(1, 100_000),
    reservationTtlMs: integer(60_000, 86_400_000),
    limitDurationMs: integer(1_000, 86_400_000),
    limitDataBytes: integer(1024, 2 ** 40)
  },
  nat: {
    autonat: bool,
    dcutr: bool,
    upnp: bool,
    webrtc: bool,
    stunServers: urlList,
    stunFromBootstrap: bool,
    stunServerPort: integer(0, 65_535)
  },
  connections: {
    maxConnections: integer(1, 100_000),
    dialTimeoutMs: integer(100, 600_000),
    inboundConnectionThreshold: integer(1, 100_000)
  },
  ipc: {
    maxLineBytes: integer(1024, 64 * 1024 * 1024),
    maxConnections: integer(1, 10_000)
  },
  messaging: {
    maxBodyBytes: integer(1, 64 * 1024 * 1024),
    replayWindowMs: integer(30_000, 300_000),
    maxClockSkewMs: integer(0, 300_000),
    requestTimeoutMs: integer(100, 3_600_000),
    retries: integer(0, 10)
  },
  card: {
    name: (value, path) => {
      if (typeof value !== 'string' || value.length > 64) {
        throw new ConfigError(`config: ${path} must be a string of at most 64 characters`)
      }
    },
    services: serviceList,
    metadata: (value, path) => {
      if (!isPlainObject(value) || JSON.stringify(value).length > 2048) {
        throw new ConfigError(`config: ${path} must be a JSON object of at most 2 KiB`)
      }
    }
  },
  trust: {
    peers: (value, path) => {
      if (!Array.isArray(value)) {
        throw new ConfigError(`config: ${path} must be an array of peer IDs`)
      }
      value.forEach((item, i) => {
        try {
          peerIdFromString(String(item))
        } catch {
          throw new ConfigError(`config: ${path}[${i}] is not a peer ID: ${JSON.stringify(item)}`)
        }
      })
    },
    publicServices: serviceList,
    strict: bool,
    acceptOldKeyOnlySuccession: bool
  },
  tokens: {
    protectedServices: serviceList,
    lifetimeMs: integer(1_000, 86_400_000),
    maxLifetimeMs: integer(1_000, 86_400_000)
  },
  security: securityList
}

/**
 * Check that `value` is a complete, valid configuration. Unknown keys are
 * errors, so typos surface at start instead of silently using a default.
 */
export function validateConfig (value: unknown, source = 'config'): Config {
  if (!isPlainObject(value)) {
    throw new ConfigError(`${source}: must be a JSON object`)
  }
  checkObject(value, SCHEMA, '', source)
  return value as unknown as Config
}

function checkObject (value: Record<string, unknown>, schema: Record<string, Check | Record<string, Check>>, prefix: string, source: string): void {
  for (const key of Object.keys(value)) {
    if (!(key in schema)) {
      throw new ConfigError(`${source}: unknown key "${prefix}${key}"`)
    }
  }
  for (const [key, check] of Object.entries(schema)) {
    const path = `${prefix}${key}`
    if (!(key in value)) {
      throw new ConfigError(`${source}: missing key "${path}"`)
    }
    const item = value[key]
    if (typeof check === 'function') {
      try {
        check(item, path)
      } catch (err) {
        if (err instanceof ConfigError) {
          throw new ConfigError(err.message.replace(/^config:/, `${source}:`))
        }
        throw err
      }
    } else {
      if (!isPlainObject(item)) {
        throw new ConfigError(`${source}: "${path}" must be an object`)
      }
      checkObject(item, check, `${path}.`, source)
    }
  }
}

/** Merge `override` into `base`: objects merge key by key, arrays and scalars replace */
export function mergeConfig (base: Record<string, unknown>, override: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) {
      continue
    }
    const current = out[key]
    out[key] = isPlainObject(current) && isPlainObject(value) ? mergeConfig(current, value) : value
  }
  return out
}

async function readJson (file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`)
  }
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`)
  }
}

/** Named sets of defaults: `configs/<name>.json` */
export const PROFILES = ['default', 'bootstrap'] as const
export type Profile = typeof PROFILES[number]

export function profilePath (profile: Profile): string {
  return fileURLToPath(new URL(`../../configs/${profile}.json`, import.meta.url))
}

export interface LoadConfigOptions {
  /** A JSON file merged over the defaults; it may hold any subset of keys */
  file?: string
  /** Values from command-line flags, merged last */
  overrides?: ConfigOverrides
  /** Defaults to use instead of `configs/default.json` (e.g. a profile) */
  defaultsFile?: string
}

/** Load the defaults, merge the user's file and overrides, validate the result */
export async function loadConfig (options: LoadConfigOptions = {}): Promise<Config> {
  const defaults = await readJson(options.defaultsFile ?? DEFAULT_CONFIG_PATH)
  if (!isPlainObject(defaults)) {
    throw new ConfigError('embedded default config is not an object')
  }
  let merged: Record<string, unknown> = defaults
  if (options.file != null) {
    const user = await readJson(options.file)
    if (!isPlainObject(user)) {
      throw new ConfigError(`config file ${options.file}: must be a JSON object`)
    }
    // validate the user's keys against the schema before merging so an unknown
    // key is reported with the file it came from
    checkKnownKeys(user, SCHEMA, '', options.file)
    merged = mergeConfig(merged, user)
  }
  if (options.overrides != null) {
    merged = mergeConfig(merged, options.overrides as Record<string, unknown>)
  }
  return validateConfig(merged, options.file != null ? `config (${options.file})` : 'config')
}

function checkKnownKeys (value: Record<string, unknown>, schema: Record<string, Check | Record<string, Check>>, prefix: string, source: string): void {
  for (const [key, item] of Object.entries(value)) {
    const check = schema[key]
    if (check == null) {
      throw new ConfigError(`config file ${source}: unknown key "${prefix}${key}"`)
    }
    if (typeof check !== 'function' && isPlainObject(item)) {
      checkKnownKeys(item, check, `${prefix}${key}.`, source)
    }
  }
}
