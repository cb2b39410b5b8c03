/**
 * Pieces every command module shares: common options, output, errors, and
 * a short-lived SDK client. Imports nothing heavy: thin commands load only
 * this, the SDK and what they print.
 */

import { AgentnetError } from '../errors/index.ts'
import type { ErrorCode } from '../errors/index.ts'
import { resolve } from 'node:path'
import { connectClient, defaultHome, NodeNotRunningError } from '../client/index.ts'
import type { AgentnetClient } from '../client/index.ts'
import type { Command } from 'commander'

export interface GlobalOptions {
  home?: string
  json?: boolean
}

/** A failure the CLI reports as one line; `exitCode` 2 means bad usage */
export class CliError extends AgentnetError {
  readonly exitCode: number
  override readonly code: ErrorCode
  constructor (message: string, code: ErrorCode, exitCode = 1) {
    super(message)
    this.code = code
    this.exitCode = exitCode
  }
}

/** Ends a command with an exit code after it printed its own result */
export class SilentExit extends Error {
  readonly exitCode: number
  constructor (exitCode: number) {
    super('')
    this.name = 'SilentExit'
    this.exitCode = exitCode
  }
}

/** `--home` if given, else `$AGENTNET_HOME`, else `~/.agentnet` */
export function homeOf (opts: GlobalOptions): string {
  return opts.home != null && opts.home !== '' ? resolve(opts.home) : defaultHome()
}

export function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

export function print (json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json === true ? JSON.stringify(value) + '\n' : human() + '\n')
}

export async function withClient<T> (opts: GlobalOptions, fn: (client: AgentnetClient) => Promise<T>): Promise<T> {
  const home = homeOf(opts)
  const client = await connectClient({ home }).catch((err: unknown) => {
    if (!(err instanceof NodeNotRunningError)) throw err
    throw new CliError(`no node is running on ${home}; start one with "agentnet start --detach${opts.home != null ? ` --home ${opts.home}` : ''}"`, 'NodeNotRunning')
  })
  try {
    return await fn(client)
  } finally {
    client.close()
  }
}

export function withCommon (command: Command, printsOutput = true): Command {
  command.option('--home <dir>', 'node home folder (default: $AGENTNET_HOME or ~/.agentnet)')
  if (printsOutput) {
    command.option('--json', 'print machine-readable JSON')
  }
  return command
}

export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Whether a process with this PID exists (and we may signal it) */
export function pidAlive (pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Serve until Ctrl-C or SIGTERM (then close the client); fails if the node closes the connection first */
export async function untilInterrupted (client: AgentnetClient): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    client.once('close', () => { reject(new CliError('the node closed the connection (it stopped?)', 'ConnectionClosed')) })
    process.once('SIGINT', () => { resolve() })
    process.once('SIGTERM', () => { resolve() })
  })
  client.close()
}
