import { readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { CorruptSnapshotError } from './errors.ts'
import { ReplayCache } from './replay-cache.ts'
import { writeFileAtomic } from '../utils/fs.ts'
import type { Logger } from 'pino'

/** Replay-cache snapshot written at a clean stop, consumed at the next start */
export const REPLAY_FILE = 'replay-cache.bin'

export interface LoadReplayOptions {
  windowMs: number
  maxSkewMs: number
  /** the previous node crashed: no trustworthy snapshot can exist */
  afterCrash: boolean
  /**
   * A node ran on this home before (it has state of a previous run, e.g. an
   * audit log). Then a missing snapshot means the last stop was not clean,
   * whatever `node.lock` says (an operator may have removed it, or restored
   * a backup): the same floor as after a crash applies. Only a home that
   * never ran a node starts without one.
   */
  ranBefore?: boolean
  /** The node's clock (ms since the epoch), for the floor. @default Date.now() */
  now?: number
  logger?: Logger
}

/**
 * Restore the seen-nonce cache so a captured envelope cannot be replayed
 * after a restart. A clean stop writes a snapshot; a start consumes it
 * (deletes it), so a later crash can never resurrect an outdated one. When
 * there is no usable snapshot after a crash, every timestamp up to
 * `now + maxSkew` is refused: any envelope captured before the crash carries
 * such a timestamp, so none can be replayed, at the price of refusing new
 * messages for up to `maxSkew` after a crash.
 */
export async function loadReplayCache (home: string, options: LoadReplayOptions): Promise<ReplayCache> {
  const file = join(home, REPLAY_FILE)
  const now = options.now ?? Date.now()
  let snapshot: Uint8Array | undefined
  let unreadable = false
  try {
    snapshot = await readFile(file)
  } catch (err) {
    // a snapshot that exists but cannot be read is no better than a corrupt one
    unreadable = (err as NodeJS.ErrnoException).code !== 'ENOENT'
  }
  if (snapshot != null) {
    await unlink(file).catch(() => {})
    try {
      return ReplayCache.restore(snapshot, { windowMs: options.windowMs, now })
    } catch (err) {
      if (!(err instanceof CorruptSnapshotError)) {
        throw err
      }
      options.logger?.warn({ file }, 'replay cache snapshot is corrupt; refusing messages timestamped before start + skew')
      return new ReplayCache({ windowMs: options.windowMs, notBefore: now + options.maxSkewMs })
    }
  }
  if (options.afterCrash || unreadable || options.ranBefore === true) {
    options.logger?.warn('no clean-stop snapshot of the replay cache: refusing messages timestamped before start + skew')
    return new ReplayCache({ windowMs: options.windowMs, notBefore: now + options.maxSkewMs })
  }
  return new ReplayCache({ windowMs: options.windowMs })
}

export async function saveReplayCache (home: string, cache: ReplayCache): Promise<void> {
  await writeFileAtomic(join(home, REPLAY_FILE), cache.snapshot())
}
