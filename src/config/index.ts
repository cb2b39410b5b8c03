/**
 * @packageDocumentation
 *
 * Node configuration: the defaults (one typed table, `schema.ts`, which
 * `configs/default.json` mirrors), an optional profile and user file, then command-line overrides, merged in that order and
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

import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { ConfigError, isPlainObject } from './checks.ts'
import { SCHEMA } from './schema.ts'
import type { Config, Field, SchemaNode } from './schema.ts'

export { ConfigError, LOG_LEVELS, SECURITY_PROTOCOLS } from './checks.ts'
export type { LogLevel, SecurityProtocol } from './checks.ts'
export { SCHEMA } from './schema.ts'
export type { Config, Field } from './schema.ts'

export type ConnectionsConfig = Config['connections']
export type IpcConfig = Config['ipc']
export type MessagingConfig = Config['messaging']
export type TokensConfig = Config['tokens']
export type DhtConfig = Config['dht']
export type RelayConfig = Config['relay']
export type NatConfig = Config['nat']
export type TrustConfig = Config['trust']
export type CardConfig = Config['card']

export type ConfigOverrides = { [K in keyof Config]?: Config[K] extends object ? (Config[K] extends unknown[] ? Config[K] : Partial<Config[K]>) : Config[K] }

/** Path of the default configuration file: the schema's defaults, for users to read and copy */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../../configs/default.json', import.meta.url))

function isField (node: SchemaNode): node is Field<unknown> {
  return typeof (node as Field<unknown>).check === 'function'
}

/** The defaults of a schema node: a fresh copy every call */
function defaultsOf (node: SchemaNode): unknown {
  if (isField(node)) {
    return structuredClone(node.default)
  }
  return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, defaultsOf(child)]))
}

/** Every default, as a complete configuration */
export function defaultConfig (): Config {
  return defaultsOf(SCHEMA) as Config
}

/** Every setting as `[dotted key, field]`, in schema order */
export function configFields (node: SchemaNode = SCHEMA, prefix = ''): Array<[string, Field<unknown>]> {
  if (isField(node)) {
    return [[prefix, node]]
  }
  return Object.entries(node).flatMap(([key, child]) => configFields(child, prefix === '' ? key : `${prefix}.${key}`))
}

/** The README's configuration table, rendered from the schema */
export function renderConfigTable (): string {
  const rows = configFields().map(([key, f]) => `| \`${key}\` | \`${JSON.stringify(f.default).replaceAll(',', ', ')}\` | ${f.doc} |`)
  return ['| key | default | meaning |', '|---|---|---|', ...rows].join('\n')
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

function checkObject (value: Record<string, unknown>, schema: { readonly [key: string]: SchemaNode }, prefix: string, source: string): void {
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
    if (isField(check)) {
      try {
        check.check(item, path)
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
  /** A profile merged over the schema's defaults before the user's file (e.g. `configs/bootstrap.json`) */
  defaultsFile?: string
}

/** Load the defaults, merge the user's file and overrides, validate the result */
export async function loadConfig (options: LoadConfigOptions = {}): Promise<Config> {
  // a profile is read over the schema's defaults (it may hold any subset of keys)
  let merged = defaultConfig() as unknown as Record<string, unknown>
  if (options.defaultsFile != null && options.defaultsFile !== DEFAULT_CONFIG_PATH) {
    const profile = await readJson(options.defaultsFile)
    if (!isPlainObject(profile)) {
      throw new ConfigError(`profile ${options.defaultsFile}: must be a JSON object`)
    }
    checkKnownKeys(profile, SCHEMA, '', options.defaultsFile)
    merged = mergeConfig(merged, profile)
  }
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

function checkKnownKeys (value: Record<string, unknown>, schema: { readonly [key: string]: SchemaNode }, prefix: string, source: string): void {
  for (const [key, item] of Object.entries(value)) {
    const check = schema[key]
    if (check == null) {
      throw new ConfigError(`config file ${source}: unknown key "${prefix}${key}"`)
    }
    if (!isField(check) && isPlainObject(item)) {
      checkKnownKeys(item, check, `${prefix}${key}.`, source)
    }
  }
}
