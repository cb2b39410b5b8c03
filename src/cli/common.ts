/**
 * Pieces every command module shares: common options, output, errors, and
 * a short-lived SDK client.
 */

import { AgentnetError } from '../errors/index.ts'
import type { ErrorCode } from '../errors/index.ts'
import { connectClient } from '../client/index.ts'
import { resolveHome } from '../identity/index.ts'
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
    this.name = 'CliError'
    this.code = code
    this.exitCode = exitCode
  }
}

export function collect (value: string, previous: string[] = []): string[] {
  return [...previous, value]
}

export function print (json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json === true ? JSON.stringify(value) + '\n' : human() + '\n')
}

export async function withClient<T> (opts: GlobalOptions, fn: (client: AgentnetClient) => Promise<T>): Promise<T> {
  const client = await connectClient({ home: resolveHome(opts.home) })
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

