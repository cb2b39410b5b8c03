import { randomBytes } from 'node:crypto'
import { open, readFile, rename, unlink } from 'node:fs/promises'
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
