import { readdir } from 'node:fs/promises'
import { join } from 'node:path'

/** Every `.ts` file below `dir` (for tests that check the source tree itself) */
export async function sources (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await sources(path))
    else if (entry.name.endsWith('.ts')) out.push(path)
  }
  return out
}
