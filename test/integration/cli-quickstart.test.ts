/**
 * The README's Quick start, run as written (its shell blocks, in order), with
 * HOME in a temporary folder so every `~/.agentnet-…` home is a fresh one.
 * If the README and the product drift apart, this fails.
 */

import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, describe, it } from 'node:test'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The ```sh blocks of the README section `## <title>`, joined */
export async function readmeShell (title: string): Promise<string> {
  const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
  const start = readme.indexOf(`\n## ${title}\n`)
  assert.ok(start !== -1, `README has a "## ${title}" section`)
  const end = readme.indexOf('\n## ', start + 1)
  const section = readme.slice(start, end === -1 ? undefined : end)
  const blocks = [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map(m => m[1] ?? '')
  assert.ok(blocks.length > 0, `the "${title}" section has a sh block`)
  return blocks.join('\n')
}

describe('README Quick start', { timeout: 300_000 }, () => {
  let home: string | undefined

  after(async () => {
    if (home == null) return
    // whatever happened, leave no node running
    for (const h of ['.agentnet', '.agentnet-a', '.agentnet-b']) {
      if (existsSync(join(home, h, 'agentnet.sock'))) {
        await new Promise(resolve => spawn(process.execPath, [join(ROOT, 'bin', 'agentnet.js'), 'stop', '--home', join(home!, h)]).on('close', resolve))
      }
    }
    await rm(home, { recursive: true, force: true })
  })

  it('runs literally and does what its comments say', async () => {
    home = await mkdtemp(join(tmpdir(), 'an-qs-'))
    const script = await readmeShell('Quick start')
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false' }
    delete env.AGENTNET_HOME
    // bash -e: any failing command fails the test; the listener's `&` job ends with its node
    const child = spawn('bash', ['-euo', 'pipefail', '-c', script + '\nwait\n'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000)
    const code = await new Promise(resolve => child.on('close', resolve))
    clearTimeout(timer)
    assert.equal(code, 0, `the Quick start failed:\n${stderr}\n--- stdout ---\n${stdout}`)

    const lines = stdout.split('\n')
    const peerLines = lines.filter(l => /^12D3KooW\w+$/.test(l))
    assert.ok(peerLines.length >= 2, 'start --detach printed the peer IDs')
    assert.ok(lines.some(l => /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/.test(l)), 'and the addresses')
    assert.ok(lines.some(l => /^12D3KooW\w+: [\d.]+ ms$/.test(l)), `ping printed a round trip:\n${stdout}`)
    assert.ok(lines.includes('hello'), `send printed the echo:\n${stdout}`)
    const json = lines.filter(l => l.startsWith('{"from"')).map(l => JSON.parse(l) as { body: unknown })
    assert.deepEqual(json.map(j => j.body), [{ n: 1 }])
    assert.ok(lines.some(l => /^stopped \(PID \d+\)$/.test(l)), 'stop waited for the exit')
    // both nodes stopped cleanly: no socket or lock left
    for (const h of ['.agentnet-a', '.agentnet-b']) {
      assert.equal(existsSync(join(home, h, 'agentnet.sock')), false, `${h} has no socket left`)
      assert.equal(existsSync(join(home, h, 'node.lock')), false, `${h} has no lock left`)
    }
  })
})
