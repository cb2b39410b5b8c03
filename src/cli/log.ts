/**
 * The node's logger: pino JSON lines on stderr, or, for a person at a
 * terminal, readable lines (`12:03:04 INFO  listening  addresses=[…]`).
 */

import { pino } from 'pino'
import type { Logger } from 'pino'

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' }
const COLOURS: Record<number, string> = { 10: '90', 20: '90', 30: '36', 40: '33', 50: '31', 60: '35' }

function value (v: unknown): string {
  if (typeof v === 'string') return /\s/.test(v) || v === '' ? JSON.stringify(v) : v
  if (Array.isArray(v)) return v.length === 0 ? '[]' : v.map(value).join(',')
  return JSON.stringify(v)
}

/** One pino JSON line as a readable line */
export function prettyLine (line: string, colour: boolean): string {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line)
  } catch {
    return line
  }
  const { level, time, msg, err, ...rest } = record as { level?: number, time?: number, msg?: string, err?: { message?: string }, [k: string]: unknown }
  const when = new Date(typeof time === 'number' ? time : Date.now()).toTimeString().slice(0, 8)
  const name = LEVELS[level ?? 30] ?? String(level)
  const tag = colour ? `\x1b[${COLOURS[level ?? 30] ?? '0'}m${name}\x1b[0m` : name
  delete rest.milestone
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${value(v)}`)
  if (err != null) fields.push(`error=${value(err.message ?? err)}`)
  return `${when} ${tag} ${msg ?? ''}${fields.length > 0 ? '  ' + fields.join(' ') : ''}\n`
}

export function createLogger (level: string, format: 'pretty' | 'json'): Logger {
  if (format === 'json') {
    return pino({ level, base: undefined }, pino.destination({ dest: 2, sync: true }))
  }
  const colour = process.stderr.isTTY && process.env.NO_COLOR == null
  return pino({ level, base: undefined }, {
    write (line: string): void {
      process.stderr.write(prettyLine(line, colour))
    }
  })
}
