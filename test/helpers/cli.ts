/**
 * Helpers for tests that drive real `agentnet` CLI processes.
 */

import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createConnection } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'

export const BIN = fileURLToPath(new URL('../../bin/agentnet.js', import.meta.url))

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Run one CLI command to completion */
export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Run a command with --json and parse its stdout; throws with stderr on failure */
export async function runJson<T = any> (args: string[]): Promise<T> {
  const result = await runCli([...args, '--json'])
  if (result.code !== 0) {
    throw new Error(`agentnet ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`)
  }
  return JSON.parse(result.stdout) as T
}

export async function makeHome (prefix = 'an-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix))
}

export async function removeHome (home: string): Promise<void> {
  await rm(home, { recursive: true, force: true })
}

export interface RunningNode {
  home: string
  child: ChildProcess
  stderr: () => string
  /** SIGTERM and wait for exit; resolves to the exit code */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** Start `agentnet start` on loopback and wait until it reports that it runs */
export async function startNode (home: string, extraArgs: string[] = [], options: { listen?: string[] } = {}): Promise<RunningNode> {
  const listen = options.listen ?? ['/ip4/127.0.0.1/tcp/0']
  const args = ['start', '--home', home, ...listen.flatMap(ma => ['--listen', ma]), ...extraArgs]
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  const exited = new Promise<number | null>(resolve => child.on('close', resolve))
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  let exitCode: number | null | undefined
  void exited.then(code => { exitCode = code })
  // ready once its socket answers (whatever the log level)
  const deadline = Date.now() + 30_000
  while (!(await socketAnswers(join(home, 'agentnet.sock')))) {
    if (exitCode !== undefined) {
      throw new Error(`node exited with ${exitCode} before starting: ${stderr}`)
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`node did not start in time: ${stderr}`)
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  child.stdout.resume()
  return {
    home,
    child,
    stderr: () => stderr,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode == null && child.signalCode == null) {
        child.kill(signal)
      }
      return exited
    }
  }
}

async function socketAnswers (path: string): Promise<boolean> {
  return new Promise(resolve => {
    const socket = createConnection(path)
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => { resolve(false) })
  })
}
