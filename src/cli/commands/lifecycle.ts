/**
 * A node's life: `init`, `start` (foreground or `--detach`), `wait`, `stop`,
 * and `id` (which must not print empty addresses while a node starts).
 * Only `start` and `init` load libp2p, through dynamic imports.
 */

import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { connectClient, NodeNotRunningError, RemoteError } from '../../client/index.ts'
import { CliError, homeOf, pidAlive, print, sleep } from '../common.ts'
import type { NodeReadiness } from '../../client/index.ts'
import type { GlobalOptions } from '../common.ts'

/** Log file of a node started with `--detach` */
export const LOG_FILE = 'agentnet.log'
/** Written by `start` before it loads anything heavy; holds its PID until the node is ready */
export const STARTING_FILE = 'node.starting'
const LOCK_FILE = 'node.lock'

interface StartOptions extends GlobalOptions {
  detach?: boolean
  newIdentity?: boolean
  timeout?: number
  config?: string
  listen?: string[]
  bootstrap?: string[]
  logLevel?: string
  logFormat?: 'pretty' | 'json'
  profile: string
}

export async function init (opts: GlobalOptions): Promise<void> {
  const home = homeOf(opts)
  const { createIdentity } = await import('../../identity/index.ts')
  const { peerId } = await createIdentity(home)
  print(opts.json, { peerId: peerId.toString(), home }, () => `created identity ${peerId.toString()} in ${home}`)
}

export async function start (opts: StartOptions): Promise<void> {
  const home = homeOf(opts)
  if (opts.detach === true) {
    await startDetached(home, opts)
    return
  }
  await mkdir(home, { recursive: true, mode: 0o700 })
  const startingFile = join(home, STARTING_FILE)
  // tells `id`/`wait`/`stop` that a node is on its way, before libp2p loads (~0.5 s)
  writeFileSync(startingFile, `${process.pid}\n`, { mode: 0o600 })
  const clearStarting = (): void => {
    try {
      if (readFileSync(startingFile, 'utf8').trim() === String(process.pid)) unlinkSync(startingFile)
    } catch {}
  }
  process.once('exit', clearStarting)
  // the young generation stays small while the modules load, and later unless the node is busy (src/cli/heap.ts)
  const youngGeneration = (await import('../heap.ts')).holdYoungGeneration()
  try {
    const [{ loadConfig, profilePath }, { startDaemon }, { createLogger }] = await Promise.all([
      import('../../config/index.ts'),
      import('../../daemon/index.ts'),
      import('../log.ts')
    ])
    const config = await loadConfig({
      defaultsFile: profilePath(opts.profile as 'default'),
      file: opts.config,
      overrides: { listen: opts.listen, bootstrap: opts.bootstrap, logLevel: opts.logLevel as 'info' | undefined }
    })
    const logger = createLogger(config.logLevel, opts.logFormat ?? (process.stderr.isTTY ? 'pretty' : 'json'))
    let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined
    let stopReason: string | undefined
    let stoppedResolve: () => void = () => {}
    const stopped = new Promise<void>(resolve => { stoppedResolve = resolve })
    const shutdown = (reason: string): void => {
      if (stopReason != null) return
      stopReason = reason
      logger.info({ reason }, 'shutting down')
      // still starting: stop as soon as the node is up
      if (daemon != null) void daemon.stop().catch((err: unknown) => { logger.error({ err }, 'shutdown failed') }).finally(stoppedResolve)
    }
    process.once('SIGINT', () => { shutdown('SIGINT') })
    process.once('SIGTERM', () => { shutdown('SIGTERM') })
    daemon = await startDaemon({ home, config, logger, newIdentity: opts.newIdentity === true, onStopRequest: () => { shutdown('agentnet stop') } })
    if (stopReason != null) {
      await daemon.stop().catch((err: unknown) => { logger.error({ err }, 'shutdown failed') })
      return
    }
    clearStarting()
    // what the node loads soon after start (secretlint) is start-up too
    void daemon.node.warmedUp.then(youngGeneration.release)
    logger.info({ peerId: daemon.node.peerId.toString(), addresses: daemon.node.addresses(), socket: daemon.socketPath }, 'agentnet node running')
    const milestones = daemon.node.milestones
    if (milestones != null && config.bootstrap.length > 0) {
      milestones.whenReady(AbortSignal.timeout(120_000)).then(() => { logger.info({ milestone: 'ready' }, 'ready: bootstrap connected and DHT joined') }, () => {})
    }
    await stopped
  } finally {
    clearStarting()
    youngGeneration.stop()
  }
}

/** Re-run this command in the background with its output to the log file; return once it is ready */
async function startDetached (home: string, opts: StartOptions): Promise<void> {
  await mkdir(home, { recursive: true, mode: 0o700 })
  const running = await readiness(home, 1)
  if (running != null || (await nodePid(home)) != null) {
    throw new CliError(`a node is already running on this home${running != null ? ` (PID ${running.pid})` : ''}`, 'NodeAlreadyRunning')
  }
  const logPath = join(home, LOG_FILE)
  const args = process.argv.slice(2).filter(a => a !== '--detach')
  // the --timeout given to us is for waiting here, not for the node
  const timeoutIndex = args.findIndex(a => a === '--timeout')
  if (timeoutIndex !== -1) args.splice(timeoutIndex, 2)
  const withFormat = args.some(a => a === '--log-format' || a.startsWith('--log-format=')) ? args : [...args, '--log-format', 'json']
  const logStart = await stat(logPath).then(s => s.size, () => 0)
  const fd = openSync(logPath, 'a', 0o600)
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1] ?? '', ...withFormat], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: process.env
  })
  closeSync(fd)
  let exited: number | null | undefined
  child.once('exit', (code, signal) => { exited = code ?? (signal != null ? 1 : 0) })
  child.unref()
  const deadline = Date.now() + (opts.timeout ?? 60_000)
  while (true) {
    if (exited !== undefined) {
      throw new CliError(`the node exited (${String(exited)}) before it was ready: ${await lastError(logPath, logStart)} (log: ${logPath})`, 'StartFailed')
    }
    const remaining = deadline - Date.now()
    if (remaining <= 0) {
      throw new CliError(`the node (PID ${child.pid ?? '?'}) was not ready within ${(opts.timeout ?? 60_000) / 1000} s; it keeps trying in the background — see ${logPath}, "agentnet wait" or "agentnet stop"`, 'Timeout')
    }
    const state = await readiness(home, Math.min(remaining, 1000))
    if (state != null && (state.pid === child.pid || state.pid == null)) {
      print(opts.json, { peerId: state.peerId, addresses: state.addresses, pid: child.pid, log: logPath }, () => [state.peerId, ...state.addresses].join('\n'))
      return
    }
    await sleep(50)
  }
}

/** The node's readiness if its socket answers and it became ready within `ms`; undefined otherwise */
async function readiness (home: string, ms: number): Promise<NodeReadiness | undefined> {
  let client
  try {
    client = await connectClient({ home })
  } catch {
    return undefined
  }
  try {
    return await client.waitReady(ms)
  } catch (err) {
    if (err instanceof RemoteError && err.code === 'MethodNotFound') {
      // an older node without node.wait: its socket answering is all we know
      const info = await client.nodeInfo()
      return { pid: 0, peerId: info.peerId, addresses: info.addresses, ready: true, listening: true, bootstrap: { configured: 0, connected: 0 }, dht: 'disabled', reachability: 'unknown', relayReservations: [] }
    }
    return undefined
  } finally {
    client.close()
  }
}

/** The last error line a detached node logged since `from` */
async function lastError (logPath: string, from: number): Promise<string> {
  const text = await readFile(logPath, 'utf8').then(t => t.slice(from), () => '')
  const lines = text.split('\n').filter(l => l.trim() !== '')
  for (const line of lines.reverse()) {
    if (line.startsWith('agentnet: ')) return line.slice('agentnet: '.length)
    try {
      const record = JSON.parse(line) as { level?: number, msg?: string, err?: { message?: string } }
      if ((record.level ?? 0) >= 50) return record.err?.message ?? record.msg ?? line
    } catch {}
  }
  return lines[0] ?? 'no output'
}

/** PID of a node that is starting or running on this home (from node.starting, then node.lock) */
async function nodePid (home: string): Promise<number | undefined> {
  for (const file of [STARTING_FILE, LOCK_FILE]) {
    const pid = Number((await readFile(join(home, file), 'utf8').catch(() => '')).trim())
    if (pidAlive(pid)) return pid
  }
  return undefined
}

export async function wait (opts: GlobalOptions & { timeout?: number }): Promise<void> {
  const home = homeOf(opts)
  const timeoutMs = opts.timeout ?? 30_000
  const deadline = Date.now() + timeoutMs
  let last: string = 'no node is starting or running'
  while (Date.now() < deadline) {
    let client
    try {
      client = await connectClient({ home })
    } catch {
      last = (await nodePid(home)) != null ? 'the node is still starting' : 'no node is starting or running on this home'
      await sleep(50)
      continue
    }
    try {
      const state = await client.waitReady(Math.max(deadline - Date.now(), 1))
      print(opts.json, state, () => `ready: ${state.peerId}${state.addresses.length > 0 ? `\n${state.addresses.join('\n')}` : ''}`)
      return
    } catch (err) {
      if (err instanceof RemoteError && err.code === 'MethodNotFound') {
        print(opts.json, { ready: true }, () => 'ready')
        return
      }
      last = err instanceof RemoteError ? err.message : (err as Error).message
      if (err instanceof RemoteError && err.code === 'Timeout') break
      await sleep(50)
    } finally {
      client.close()
    }
  }
  throw new CliError(`not ready after ${timeoutMs / 1000} s (${last}); see ${join(home, LOG_FILE)} for a node started with --detach`, 'Timeout')
}

export async function stop (opts: GlobalOptions & { timeout?: number }): Promise<void> {
  const home = homeOf(opts)
  const timeoutMs = opts.timeout ?? 30_000
  let pid: number | undefined
  try {
    const client = await connectClient({ home })
    try {
      pid = (await client.stopNode()).pid
    } finally {
      client.close()
    }
  } catch (err) {
    if (!(err instanceof NodeNotRunningError)) throw err
    pid = await nodePid(home)
    if (pid == null) {
      print(opts.json, { stopped: false, running: false }, () => `no node is running on ${home}`)
      return
    }
    // starting: its socket is not up yet; SIGTERM stops it as cleanly as it can
    process.kill(pid, 'SIGTERM')
  }
  const deadline = Date.now() + timeoutMs
  while (pidAlive(pid)) {
    if (Date.now() > deadline) {
      throw new CliError(`the node (PID ${pid}) is still stopping after ${timeoutMs / 1000} s; wait longer with --timeout, or end it with "kill ${pid}"`, 'Timeout')
    }
    await sleep(25)
  }
  print(opts.json, { stopped: true, pid }, () => `stopped (PID ${pid})`)
}

/** The peer ID as a did:key (issue 15) */
async function didOf (peerId: string): Promise<string> {
  return (await import('../../did/did-key.ts')).didKeyFromPeerId(peerId)
}

export async function id (opts: GlobalOptions): Promise<void> {
  const home = homeOf(opts)
  const deadline = Date.now() + 10_000
  while (true) {
    let client
    try {
      client = await connectClient({ home })
    } catch (err) {
      if (!(err instanceof NodeNotRunningError)) throw err
      if ((await nodePid(home)) != null) {
        if (Date.now() > deadline) {
          throw new CliError(`the node on ${home} is still starting; run "agentnet wait${opts.home != null ? ` --home ${home}` : ''}" and try again`, 'Starting')
        }
        await sleep(50)
        continue
      }
      // not running: the identity alone (no addresses)
      const { loadIdentity } = await import('../../identity/index.ts')
      const { peerId } = await loadIdentity(home)
      const did = await didOf(peerId.toString())
      if (opts.json !== true) process.stderr.write('(the node is not running: no addresses)\n')
      print(opts.json, { peerId: peerId.toString(), did, addresses: [] }, () => [peerId.toString(), did].join('\n'))
      return
    }
    try {
      const info = await client.nodeInfo()
      // the node computes it (older nodes do not: then here)
      const did = typeof info.did === 'string' ? info.did : await didOf(info.peerId)
      print(opts.json, { peerId: info.peerId, did, addresses: info.addresses }, () => [info.peerId, did, ...info.addresses].join('\n'))
      return
    } finally {
      client.close()
    }
  }
}

