/** Value checks of the config schema: each throws a one-line {@link ConfigError} naming the key */

import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { AgentnetError } from '../errors/index.ts'

export class ConfigError extends AgentnetError { override readonly code = 'ConfigError' }

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export type Check = (value: unknown, path: string) => void

export function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']


export function integer (min: number, max: number): Check {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ConfigError(`config: ${path} must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    }
  }
}

/** `"auto"` or an integer from `min` to `max` */
export function autoOrInteger (min: number, max: number): Check {
  const int = integer(min, max)
  return (value, path) => {
    if (value === 'auto') return
    try {
      int(value, path)
    } catch {
      throw new ConfigError(`config: ${path} must be "auto" or an integer from ${min} to ${max}, got ${JSON.stringify(value)}`)
    }
  }
}

export const multiaddrList: Check = (value, path) => {
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

export const serviceList: Check = (value, path) => {
  if (!Array.isArray(value) || !value.every(item => typeof item === 'string' && item.length > 0 && item.length <= 128)) {
    throw new ConfigError(`config: ${path} must be an array of service names (1–128 characters)`)
  }
}

export function oneOf (...choices: string[]): Check {
  return (value, path) => {
    if (typeof value !== 'string' || !choices.includes(value)) {
      throw new ConfigError(`config: ${path} must be one of ${choices.join(', ')}, got ${JSON.stringify(value)}`)
    }
  }
}

export const bool: Check = (value, path) => {
  if (typeof value !== 'boolean') {
    throw new ConfigError(`config: ${path} must be true or false, got ${JSON.stringify(value)}`)
  }
}

export const peerMultiaddrList: Check = (value, path) => {
  multiaddrList(value, path)
  ;(value as string[]).forEach((item, i) => {
    if (!multiaddr(item).getComponents().some(c => c.name === 'p2p')) {
      throw new ConfigError(`config: ${path}[${i}] must end in /p2p/<peerId>: ${JSON.stringify(item)}`)
    }
  })
}

export const urlList: Check = (value, path) => {
  if (!Array.isArray(value) || !value.every(item => typeof item === 'string' && /^(stun|stuns|turn|turns):/.test(item))) {
    throw new ConfigError(`config: ${path} must be an array of stun:/turn: URLs`)
  }
}

export const logLevel: Check = (value, path) => {
  if (typeof value !== 'string' || !LOG_LEVELS.includes(value as LogLevel)) {
    throw new ConfigError(`config: ${path} must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`)
  }
}

export const cardName: Check = (value, path) => {
  if (typeof value !== 'string' || value.length > 64) {
    throw new ConfigError(`config: ${path} must be a string of at most 64 characters`)
  }
}

export const jsonObject: Check = (value, path) => {
  if (!isPlainObject(value) || JSON.stringify(value).length > 2048) {
    throw new ConfigError(`config: ${path} must be a JSON object of at most 2 KiB`)
  }
}

/** A policy as the config holds it; the guard checks it in depth when the node starts */
export interface GuardPolicyConfig {
  peer: string
  service?: string
  allow: string[]
  action?: 'block' | 'redact' | 'warn'
}

export const guardPolicies: Check = (value, path) => {
  if (!Array.isArray(value)) {
    throw new ConfigError(`config: ${path} must be an array of {peer, service?, allow, action?}`)
  }
  value.forEach((item, i) => {
    const ok = isPlainObject(item) &&
      typeof item.peer === 'string' && item.peer.length > 0 &&
      (item.service === undefined || typeof item.service === 'string') &&
      Array.isArray(item.allow) && item.allow.every(a => typeof a === 'string') &&
      (item.action === undefined || ['block', 'redact', 'warn'].includes(item.action as string)) &&
      Object.keys(item).every(k => ['peer', 'service', 'allow', 'action'].includes(k))
    if (!ok) {
      throw new ConfigError(`config: ${path}[${i}] must be {peer, service?, allow: [categories], action?: block|redact|warn}`)
    }
  })
}

export function fraction (min: number, max: number): Check {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      throw new ConfigError(`config: ${path} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`)
    }
  }
}

export const fileName: Check = (value, path) => {
  if (typeof value !== 'string' || !/^[\w.-]{1,128}$/.test(value) || value.startsWith('.')) {
    throw new ConfigError(`config: ${path} must be a file name inside the home folder, got ${JSON.stringify(value)}`)
  }
}

export const peerIdList: Check = (value, path) => {
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
}

/** Connection encrypters (`security`) */
export type SecurityProtocol = 'noise' | 'tls'
export const SECURITY_PROTOCOLS: readonly SecurityProtocol[] = ['noise', 'tls']

export const securityList: Check = (value, path) => {
  if (!Array.isArray(value) || value.length === 0 || new Set(value).size !== value.length ||
      !value.every(item => SECURITY_PROTOCOLS.includes(item as SecurityProtocol))) {
    throw new ConfigError(`config: ${path} must be a non-empty list of distinct encrypters from ${SECURITY_PROTOCOLS.join(', ')} (in order of preference), got ${JSON.stringify(value)}`)
  }
}

/** `""` (off) or a TCP listen address `/ip4|ip6/<address>/tcp/<port>` (the metrics endpoint) */
export const tcpListenAddress: Check = (value, path) => {
  if (value === '') return
  let ok = false
  try {
    const components = typeof value === 'string' ? multiaddr(value).getComponents() : []
    ok = components.length === 2 && (components[0]?.name === 'ip4' || components[0]?.name === 'ip6') && components[1]?.name === 'tcp'
  } catch {}
  if (!ok) {
    throw new ConfigError(`config: ${path} must be "" (off) or /ip4|ip6/<address>/tcp/<port>, got ${JSON.stringify(value)}`)
  }
}
