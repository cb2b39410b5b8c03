/**
 * Key rotation keeps to the layering: `src/identity` holds the pure parts
 * (records, key files) and imports nothing above the signing primitives;
 * `src/rotation` drives trust, messaging, cards, groups and the node, and
 * only the composition root, the daemon and the CLI import it.
 */

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { sources } from '../../helpers/sources.ts'

const SRC = join(import.meta.dirname, '..', '..', '..', 'src')

/** The src/ folders a file imports from (static and dynamic imports) */
function importedFolders (file: string, text: string): string[] {
  const folders = new Set<string>()
  for (const m of text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = relative(SRC, join(file, '..', m[1] ?? ''))
    if (!target.startsWith('..')) folders.add(target.split('/')[0] ?? '')
  }
  return [...folders]
}

describe('rotation layering', () => {
  it('src/identity imports only errors, utils and the signing primitives', async () => {
    for (const file of await sources(join(SRC, 'identity'))) {
      const folders = importedFolders(file, await readFile(file, 'utf8')).filter(f => f !== 'identity')
      assert.deepEqual(folders.filter(f => !['errors', 'utils', 'protocol'].includes(f)), [], `${relative(SRC, file)} imports a higher layer`)
    }
  })

  it('only src/agent, src/daemon and src/cli import src/rotation', async () => {
    const importers: string[] = []
    for (const file of await sources(SRC)) {
      const top = relative(SRC, file).split('/')[0] ?? ''
      if (top === 'rotation') continue
      if (importedFolders(file, await readFile(file, 'utf8')).includes('rotation')) importers.push(top)
    }
    assert.ok(importers.length > 0, 'the composition root uses it')
    assert.deepEqual([...new Set(importers)].filter(t => !['agent', 'daemon', 'cli'].includes(t)), [])
  })
})
