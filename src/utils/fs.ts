import { randomBytes } from 'node:crypto'
import { open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises'
import { dirname, join, basename } from 'node:path'

/**
 * Replace `file` with `data` so that a crash at any moment leaves either the
 * old or the new content, never a torn file: write a temporary file in the
 * same directory, fsync it, rename it over the target, then fsync the
 * directory so the rename itself is durable.
 */
export async function writeFileAtomic (file: string, data: Uint8Array | string, mode = 0o600): Promise<void> {
  const dir = dirname(file)
  const tmp = join(dir, `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', mode)
  try {
    await handle.writeFile(data)
    await handle.sync()
  } catch (err) {
    await handle.close()
    await unlink(tmp).catch(() => {})
    throw err
  }
  await handle.close()
  try {
    await rename(tmp, file)
  } catch (err) {
    await unlink(tmp).catch(() => {})
    throw err
  }
  await fsyncDir(dir)
}

/** fsync a directory so a rename or a new file in it is durable */
export async function fsyncDir (dir: string): Promise<void> {
  let handle
  try {
    handle = await open(dir, 'r')
    await handle.sync()
  } catch {
    // some filesystems refuse fsync on directories; the rename is still atomic
  } finally {
    await handle?.close()
  }
}

/** A state file's text, or undefined when it does not exist yet (any other error is thrown) */
export async function readStateFile (file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return undefined
    }
    throw err
  }
}

/** Names {@link writeFileAtomic} gives its temporary files */
const TEMP_FILE = /^\..+\.[0-9a-f]{12}\.tmp$/

/**
 * Remove the temporary files of atomic writes a crash (or a full disk)
 * interrupted, in `dir` and its direct subfolders (e.g. `groups/`). Call it
 * only while holding the home's lock: a running writer's file looks the same.
 *
 * @returns the paths removed
 */
export async function removeStaleTempFiles (dir: string): Promise<string[]> {
  const removed: string[] = []
  const visit = async (folder: string, depth: number): Promise<void> => {
    let entries
    try {
      entries = await readdir(folder, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries) {
      const path = join(folder, entry.name)
      if (entry.isFile() && TEMP_FILE.test(entry.name)) {
        await unlink(path).then(() => { removed.push(path) }, () => {})
      } else if (entry.isDirectory() && depth === 0 && entry.name !== 'peerstore') {
        await visit(path, 1)
      }
    }
  }
  await visit(dir, 0)
  return removed
}

/**
 * Whether `path` exists (following links). Only "no such file" is `false`:
 * any other failure (a permission, an I/O error) is thrown, so a caller never
 * takes an unreadable file for a missing one.
 */
export async function pathExists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return false
    throw err
  }
}
