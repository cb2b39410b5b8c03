import { describe, it } from 'node:test'
import { sources } from '../../helpers/sources.ts'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { AgentnetError, BusyError, ERROR_CODES, errorCodeOf, foreignCode, isErrorCode, PeerUnreachableError } from '../../../src/errors/index.ts'
import { ReplayError } from '../../../src/protocol/index.ts'
import { UntrustedPeerError } from '../../../src/trust/index.ts'
import { RemoteMessageError } from '../../../src/messaging/index.ts'

const root = new URL('../../../', import.meta.url).pathname


/** The rows of the README's "Error codes" table: `| `Code` | meaning |` */
function readmeCodes (readme: string): Map<string, string> {
  const start = readme.indexOf('<!-- error-codes:start -->')
  const end = readme.indexOf('<!-- error-codes:end -->')
  assert.ok(start !== -1 && end > start, 'README has the error-codes markers')
  const rows = new Map<string, string>()
  for (const line of readme.slice(start, end).split('\n')) {
    const m = /^\| `(\w+)` \| (.*) \|$/.exec(line)
    if (m != null) rows.set(m[1] as string, m[2] as string)
  }
  return rows
}

describe('one error model', () => {
  it('the README table lists exactly the codes of ERROR_CODES, with the same meanings', async () => {
    const rows = readmeCodes(await readFile(join(root, 'README.md'), 'utf8'))
    assert.deepEqual([...rows.keys()].sort(), Object.keys(ERROR_CODES).sort())
    for (const [code, meaning] of Object.entries(ERROR_CODES)) {
      assert.equal(rows.get(code), meaning.replaceAll('|', '\\|'), `meaning of ${code}`)
    }
  })

  it('every error class name exists once in src/', async () => {
    const seen = new Map<string, string>()
    for (const file of await sources(join(root, 'src'))) {
      for (const m of (await readFile(file, 'utf8')).matchAll(/^export (?:abstract )?class (\w+Error) /gm)) {
        const name = m[1] as string
        assert.ok(!seen.has(name), `${name} is defined in ${seen.get(name)} and ${file}`)
        seen.set(name, file)
      }
    }
    assert.ok(seen.size > 40)
  })

  it('no code is read by duck typing: errors are told apart with instanceof / errorCodeOf', async () => {
    for (const file of await sources(join(root, 'src'))) {
      const text = await readFile(file, 'utf8')
      assert.doesNotMatch(text, /\(err as \{ code\??: /, file)
    }
  })

  it('every error is an AgentnetError whose code is in the table', () => {
    for (const err of [new ReplayError('x'), new UntrustedPeerError('x'), new BusyError('x'), new PeerUnreachableError('x')]) {
      assert.ok(err instanceof AgentnetError)
      assert.ok(isErrorCode(err.code), err.code)
      assert.equal(errorCodeOf(err), err.code)
    }
    assert.equal(errorCodeOf(new Error('plain')), undefined)
    assert.equal(new ReplayError('x').name, 'ReplayError')
  })

  it('a relayed code stays what the other party said', () => {
    const err = new RemoteMessageError(foreignCode('OutOfStock'), 'sold out', '12D3KooWexample')
    assert.equal(err.code, 'OutOfStock')
    assert.equal(isErrorCode(err.code), false)
    assert.equal(err.remote, '12D3KooWexample')
  })
})
