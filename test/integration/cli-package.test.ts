/**
 * The package as a user gets it: `npm pack`, the tarball installed into an
 * empty project, its `agentnet` command and its SDK used from there (no
 * checkout, no TypeScript sources, no npx).
 */

import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, before, describe, it } from 'node:test'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const NODE_DIR = dirname(process.execPath)
const run = promisify(execFile)

/** PATH with the project's Node 22 first (npm itself may run on an older Node) */
const ENV = { ...process.env, PATH: `${NODE_DIR}:${process.env.PATH ?? ''}`, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' }

async function sh (command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = ENV): Promise<{ stdout: string, stderr: string }> {
  return run(command, args, { cwd, env, maxBuffer: 64 * 1024 * 1024, timeout: 240_000 })
}

describe('the npm package, installed into an empty project', { timeout: 600_000 }, () => {
  let dir: string
  let project: string
  let tarball: string
  let files: string[]
  let bin: string
  let home: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'an-pkg-'))
    project = join(dir, 'project')
    home = join(dir, 'h')
    // packs with prepack (tsc to dist/)
    const packed = await sh('npm', ['pack', '--json', '--pack-destination', dir], ROOT)
    const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as Array<{ filename: string, files: Array<{ path: string }> }>
    tarball = join(dir, info[0]!.filename)
    files = info[0]!.files.map(f => f.path)
    await mkdir(project)
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }, null, 2))
    // dependencies from the npm cache when it has them (the registry otherwise)
    await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball, '@types/node@22'], project)
    bin = join(project, 'node_modules', '.bin', 'agentnet')
  })

  after(async () => {
    await sh(process.execPath, [bin, 'stop', '--home', home], project).catch(() => {})
    await rm(dir, { recursive: true, force: true })
  })

  it('ships compiled JavaScript with types, and nothing from the checkout', () => {
    for (const needed of ['bin/agentnet.js', 'dist/cli/main.js', 'dist/client/index.js', 'dist/client/index.d.ts', 'dist/client/index.js.map', 'dist/index.d.ts', 'configs/default.json', 'configs/bootstrap.json', 'package.json', 'README.md']) {
      assert.ok(files.includes(needed), `tarball has ${needed}`)
    }
    const unwanted = files.filter(f => /^(test|\.ci|src|node_modules)\//.test(f) || /\.test\./.test(f) || f.endsWith('.ts') && !f.endsWith('.d.ts'))
    assert.deepEqual(unwanted, [])
  })

  it('runs its agentnet command on Node 22: --version, start --detach, id, stop', async () => {
    const version = await sh(bin, ['--version'], project)
    assert.equal(version.stdout.trim(), '0.1.0')
    const started = await sh(bin, ['start', '--detach', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], project)
    const ready = JSON.parse(started.stdout) as { peerId: string, addresses: string[], pid: number }
    assert.match(ready.peerId, /^12D3KooW/)
    assert.ok(ready.addresses.length > 0)
    const id = JSON.parse((await sh(bin, ['id', '--home', home, '--json'], project)).stdout) as { peerId: string, addresses: string[] }
    assert.equal(id.peerId, ready.peerId)
    assert.deepEqual(id.addresses, ready.addresses)

    // the SDK from plain JavaScript
    await writeFile(join(project, 'info.js'), [
      "import { connectClient } from 'agentnet/client'",
      `const client = await connectClient({ home: ${JSON.stringify(home)} })`,
      'const info = await client.nodeInfo()',
      'console.log(JSON.stringify({ peerId: info.peerId }))',
      'client.close()'
    ].join('\n'))
    const js = await sh(process.execPath, ['info.js'], project)
    assert.equal(JSON.parse(js.stdout).peerId, ready.peerId)

    const stopped = await sh(bin, ['stop', '--home', home, '--json'], project)
    assert.equal(JSON.parse(stopped.stdout).stopped, true)
    assert.throws(() => process.kill(ready.pid, 0), 'the node process is gone')
    assert.equal(existsSync(join(home, 'agentnet.sock')), false)
  })

  it('its SDK typechecks under a stock strict tsconfig', async () => {
    await writeFile(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'es2022', module: 'nodenext', strict: true, noEmit: true, types: ['node'] },
      include: ['app.ts']
    }, null, 2))
    await writeFile(join(project, 'app.ts'), `
import { connectClient, RemoteError, NodeNotRunningError } from 'agentnet/client'
import type { NodeInfo, ReceivedMessage, SendResult } from 'agentnet/client'

const client = await connectClient({ home: '/tmp/agentnet-example' })
const info: NodeInfo = await client.nodeInfo()
client.on('message', (message: ReceivedMessage) => {
  void client.reply({ id: message.id, body: message.body })
})
try {
  const reply: SendResult = await client.send({ to: info.peerId, service: 'echo', body: 'hi' })
  const text: unknown = reply.body
  console.log(text, info.addresses.length)
} catch (err) {
  if (err instanceof RemoteError) console.log(err.code)
  if (err instanceof NodeNotRunningError) console.log(err.message)
}
client.close()
`)
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    await sh(process.execPath, [tsc, '-p', project], project).catch((err: { stdout?: string }) => {
      assert.fail(`tsc reported errors in the consumer project:\n${err.stdout ?? String(err)}`)
    })
    // and a type error is reported (the check really ran)
    await writeFile(join(project, 'app.ts'), "import { connectClient } from 'agentnet/client'\nconst n: number = await connectClient({})\n")
    await assert.rejects(sh(process.execPath, [tsc, '-p', project], project))
  })

  it('on an older Node, the command says in one line that Node 22 is needed', async (t) => {
    const old = ['/usr/bin/node', '/usr/local/bin/node'].find(p => existsSync(p))
    if (old == null) {
      t.skip('no system Node here')
      return
    }
    const major = Number((await sh(old, ['-p', 'process.versions.node'], project)).stdout.split('.')[0])
    if (major >= 22) {
      t.skip(`the system Node is ${major}`)
      return
    }
    const child = spawn(old, [join(project, 'node_modules', 'agentnet', 'bin', 'agentnet.js'), 'id'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const code = await new Promise(resolve => child.on('close', resolve))
    assert.equal(code, 1)
    const lines = stderr.trim().split('\n')
    assert.equal(lines.length, 1, stderr)
    assert.match(lines[0]!, /needs Node\.js 22 or newer/)
  })
})
