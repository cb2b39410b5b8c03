/**
 * Issue 8's rule for the source tree: no file in `src/` over 450 lines unless
 * its header says why ("Longer than 450 lines on purpose: …"). A file that
 * grows past the limit fails here until it is split or its header explains
 * what keeps it whole.
 */

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { sources } from '../helpers/sources.ts'

const SRC = join(import.meta.dirname, '..', '..', 'src')
const MAX_LINES = 450
const REASON = /^ \* Longer than 450 lines on purpose: \S/m

/** The file's leading doc comment */
function header (text: string): string {
  const end = text.indexOf('*/')
  return text.trimStart().startsWith('/**') && end !== -1 ? text.slice(0, end) : ''
}

describe('source file size', () => {
  it(`every src/ file over ${MAX_LINES} lines says why in its header`, async () => {
    const files = await sources(SRC)
    assert.ok(files.length > 50, 'found the sources')
    const unexplained: string[] = []
    let explained = 0
    for (const file of files) {
      const text = await readFile(file, 'utf8')
      const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
      if (lines <= MAX_LINES) continue
      if (REASON.test(header(text))) explained++
      else unexplained.push(`${relative(SRC, file)} (${lines} lines)`)
    }
    assert.deepEqual(unexplained, [])
    // the check sees the long files there are
    assert.ok(explained >= 1)
  })
})
