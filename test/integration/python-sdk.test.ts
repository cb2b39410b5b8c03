/**
 * The Python SDK (sdk/python) against real nodes: three `agentnet start`
 * processes on 127.0.0.1 (A connected to B and to C, no trust yet), then the
 * SDK's unittest suites run in python3:
 *
 * - tests.test_offline: no node (body encoding, error mapping, the
 *   generated asyncio wrappers are up to date)
 * - tests.test_blocking: the blocking client, agents on A and B (guard
 *   blocks as LeakBlockedError, a group round trip, posture, node.stop of D)
 * - tests.test_asyncio: the asyncio client, agents on A and C (also a guard
 *   block and a group round trip)
 *
 * python3 (≥ 3.9) is required: without it the test fails and says so.
 */

import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import type { RunningNode } from '../helpers/cli.ts'

const SDK = fileURLToPath(new URL('../../sdk/python/', import.meta.url))
const PYTHON = process.env.AGENTNET_PYTHON ?? 'python3'

/** Fail (not skip) with a clear message when python3 is missing or too old */
function checkPython (): void {
  const probe = spawnSync(PYTHON, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' })
  if (probe.error != null || probe.status !== 0) {
    assert.fail(`${PYTHON} is not installed or does not run (${probe.error?.message ?? probe.stderr.trim()}): the Python SDK tests need Python ≥ 3.9 (Debian: apt-get install -y python3; .ci/run installs it)`)
  }
  const [major = 0, minor = 0] = probe.stdout.trim().split('.').map(Number)
  assert.ok(major > 3 || (major === 3 && minor >= 9), `the Python SDK needs Python ≥ 3.9, ${PYTHON} is ${probe.stdout.trim()}`)
}

/** Run python3 -m unittest on modules with the node homes in the environment */
async function runUnittest (modules: string[], env: Record<string, string>): Promise<{ code: number | null, output: string }> {
  const child = spawn(PYTHON, ['-m', 'unittest', '-v', ...modules], {
    cwd: SDK,
    env: { ...process.env, ...env, PYTHONPATH: SDK, PYTHONDONTWRITEBYTECODE: '1', PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr.on('data', (d: Buffer) => { output += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), 240_000)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(timer)
  return { code, output }
}

describe('Python SDK against real nodes', () => {
  const homes: string[] = []
  const nodes: RunningNode[] = []
  let env: Record<string, string> = {}

  before(async () => {
    checkPython()
    // D only answers node.stop from Python
    for (let i = 0; i < 4; i++) homes.push(await makeHome('an-py-'))
    nodes.push(...await Promise.all(homes.map(async home => startNode(home))))
    const [homeA = '', homeB = '', homeC = '', homeD = ''] = homes
    for (const home of [homeB, homeC]) {
      const { addresses } = await runJson<{ addresses: string[] }>(['id', '--home', home])
      await runJson(['connect', addresses[0] ?? '', '--home', homeA])
    }
    env = { AGENTNET_TEST_HOME_A: homeA, AGENTNET_TEST_HOME_B: homeB, AGENTNET_TEST_HOME_C: homeC, AGENTNET_TEST_HOME_D: homeD }
  })

  after(async () => {
    await Promise.all(nodes.map(async node => node.stop()))
    await Promise.all(homes.map(removeHome))
  })

  it('python3 ≥ 3.9 is installed', () => {
    checkPython()
  })

  for (const [name, module] of [
    ['offline: bodies, errors, generated asyncio wrappers', 'tests.test_offline'],
    ['blocking client: agents on A and B exchange requests, one-way messages and errors; trust request/approve; guard block (LeakBlockedError), group round trip, node.state/wait/posture/stop', 'tests.test_blocking'],
    ['asyncio client: agents on A and C exchange requests, one-way messages and errors; trust request/approve; guard block, group round trip', 'tests.test_asyncio']
  ] as const) {
    it(name, async (t) => {
      const { code, output } = await runUnittest([module], env)
      assert.equal(code, 0, `python3 -m unittest ${module} failed:\n${output}\n--- node logs ---\n${nodes.map(n => n.stderr().slice(-2000)).join('\n')}`)
      assert.doesNotMatch(output, /skipped/i, `a Python test was skipped:\n${output}`)
      const ran = /^Ran (\d+) tests? in/m.exec(output)
      assert.ok(ran !== null && Number(ran[1]) > 0, `no Python test ran:\n${output}`)
      t.diagnostic(`${module}: ${ran[0]}`)
      for (const line of output.split('\n').filter(l => / \.\.\. ok$/.test(l))) t.diagnostic(line)
    })
  }
})
