import { AgentnetError } from '../errors/index.ts'
import { open, readFile, unlink } from 'node:fs/promises'
import { connect } from 'node:net'

export class NodeAlreadyRunningError extends AgentnetError { override readonly code = 'NodeAlreadyRunning' }

/**
 * Take the home folder's lock file so only one node runs per home. A lock
 * left by a crashed node (its PID is gone, or its socket refuses
 * connections) is detected and replaced.
 */
export interface HeldLock {
  release: () => Promise<void>
  /** true when the previous node on this home did not shut down cleanly */
  recoveredStale: boolean
}

export async function acquireLock (lockPath: string, socketPath: string): Promise<HeldLock> {
  let recoveredStale = false
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockPath, 'wx', 0o600)
      await handle.writeFile(`${process.pid}\n`)
      await handle.close()
      // we hold the lock, so any socket file left behind is stale
      await unlink(socketPath).catch(() => {})
      return { release: async () => { await unlink(lockPath).catch(() => {}) }, recoveredStale }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw err
      }
    }
    const pid = Number.parseInt((await readFile(lockPath, 'utf8').catch(() => '')).trim(), 10)
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) && (await socketAnswers(socketPath) || await looksLikeAgentnet(pid))) {
      throw new NodeAlreadyRunningError(`a node is already running on this home (pid ${pid})`)
    }
    await unlink(lockPath).catch(() => {})
    recoveredStale = true
  }
  throw new NodeAlreadyRunningError('another node is starting on this home at the same time')
}

/**
 * A live PID in the lock file may be a node still starting (socket not yet
 * listening) or an unrelated process that reused a crashed node's PID.
 */
async function looksLikeAgentnet (pid: number): Promise<boolean> {
  try {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8')
    return cmdline.includes('agentnet')
  } catch {
    // no /proc: assume the worst and refuse to start a second node
    return true
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A live node accepts connections on its socket; a crashed one's file refuses */
async function socketAnswers (socketPath: string): Promise<boolean> {
  return new Promise(resolve => {
    const socket = connect(socketPath)
    const done = (result: boolean): void => {
      socket.destroy()
      resolve(result)
    }
    socket.once('connect', () => { done(true) })
    socket.once('error', () => { done(false) })
    setTimeout(() => { done(false) }, 2000).unref()
  })
}
