/**
 * Regenerates the files derived from the code: `configs/default.json` and the
 * README's configuration and error-code tables. Run after adding a config key
 * or an error code: `node scripts/gen-tables.ts`. The unit tests fail until
 * the derived copies match.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { DEFAULT_CONFIG_PATH, defaultConfig, renderConfigTable } from '../src/config/index.ts'
import { ERROR_CODES } from '../src/errors/index.ts'

const readmePath = new URL('../README.md', import.meta.url)

function replaceBetween (text: string, start: string, end: string, body: string): string {
  const a = text.indexOf(start)
  const b = text.indexOf(end)
  if (a === -1 || b < a) throw new Error(`README lacks ${start} … ${end}`)
  return text.slice(0, a + start.length) + '\n' + body + text.slice(b)
}

const errorTable = ['| code | meaning |', '|---|---|',
  ...Object.entries(ERROR_CODES).map(([code, meaning]) => `| \`${code}\` | ${meaning.replaceAll('|', '\\|')} |`)].join('\n') + '\n'

let readme = await readFile(readmePath, 'utf8')
readme = replaceBetween(readme, '<!-- config-table:start -->', '<!-- config-table:end -->', renderConfigTable() + '\n')
readme = replaceBetween(readme, '<!-- error-codes:start -->', '<!-- error-codes:end -->', errorTable)
await writeFile(readmePath, readme)
await writeFile(DEFAULT_CONFIG_PATH, JSON.stringify(defaultConfig(), null, 2) + '\n')
console.log('regenerated configs/default.json and the README tables')
