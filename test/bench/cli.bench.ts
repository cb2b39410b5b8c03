/**
 * CLI latency benchmark: how long a thin `agentnet` command takes, start to
 * exit, with a node running — next to what any Node process and any client
 * of the socket cost on this machine in the same run.
 *
 * Measured, round-robin (one process at a time, so drift hits all alike):
 *
 * - `node -e ''`: the floor for any Node program
 * - `socket client`: a Node process that connects to the node's socket, asks
 *   `node.info` and exits (the floor for a thin command written in Node)
 * - `agentnet --version`, `agentnet id --json`, `agentnet status --json`
 *   (and `id --json` once more with `NODE_DISABLE_COMPILE_CACHE=1`, to show
 *   what the compile cache the bin enables is worth)
 * - `agentnet send <A> echo 0123456789`: a 10-byte request from node B to an
 *   echo service on node A (trusted through an invite), reply printed
 *
 * plus, in this process, a bare Unix-socket connect to the node's socket.
 *
 * The command runs as the package does (`bin/agentnet.js` over the compiled
 * `dist/`, `AGENTNET_DIST=1`; the bench builds it first unless `--no-build`),
 * with Node's compile cache as the bin enables it. `--source` measures the
 * checkout mode instead (TypeScript sources, type stripping); `--bin PATH`
 * an installed package's `node_modules/.bin/agentnet`.
 *
 * Run: `./node_modules/.bin/node test/bench/cli.bench.ts [--runs N] [--json]`
 */

import { execFileSync, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '40' },
    json: { type: 'boolean', default: false },
    'no-build': { type: 'boolean', default: false },
    source: { type: 'boolean', default: false },
    bin: { type: 'string' }
  }
})
const RUNS = Number(flags.runs)
const BIN = flags.bin ?? join(ROOT, 'bin', 'agentnet.js')
const ENV: NodeJS.ProcessEnv = { ...process.env, AGENTNET_DIST: flags.source ? '0' : '1' }
delete ENV.AGENTNET_HOME

function log (text: string): void {
  process.stderr.write(text + '\n')
}

/** Wall time of one process, spawn to exit; throws on a non-zero exit */
async function timed (command: string, args: string[], env: NodeJS.ProcessEnv = ENV): Promise<number> {
  const started = performance.now()
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  const ms = performance.now() - started
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}: ${stderr}`)
  return ms
}

function agentnet (args: string[]): string {
  return execFileSync(process.execPath, [BIN, ...args], { env: ENV, encoding: 'utf8' }).trim()
}

async function socketConnectMs (path: string): Promise<number> {
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    const socket = createConnection(path)
    socket.once('connect', () => { socket.destroy(); resolve() })
    socket.once('error', reject)
  })
  return performance.now() - started
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))
  return sorted[index] ?? NaN
}

const dir = await mkdtemp(join(tmpdir(), 'an-clibench-'))
const homeA = join(dir, 'a')
const homeB = join(dir, 'b')
let listener: ReturnType<typeof spawn> | undefined
try {
  if (!flags.source && flags.bin == null && !flags['no-build']) {
    log('building dist/ (npm run build)')
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' })
  }
  log('starting nodes A and B')
  const peerA = agentnet(['start', '--detach', '--home', homeA, '--listen', '/ip4/127.0.0.1/tcp/0']).split('\n')[0]!
  agentnet(['start', '--detach', '--home', homeB, '--listen', '/ip4/127.0.0.1/tcp/0'])
  agentnet(['invite', 'accept', agentnet(['invite', 'create', '--home', homeA]), '--home', homeB])
  listener = spawn(process.execPath, [BIN, 'listen', 'echo', '--echo', '--home', homeA], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] })
  await new Promise<void>(resolve => listener!.stderr!.on('data', (d: Buffer) => { if (d.toString().includes('listening on service')) resolve() }))

  const socketA = join(homeA, 'agentnet.sock')
  const clientScript = `const s=require('net').createConnection(${JSON.stringify(socketA)});s.on('connect',()=>s.write('{"jsonrpc":"2.0","id":1,"method":"node.info"}\\n'));s.on('data',()=>{s.destroy()})`
  const kinds: Array<{ id: string, label: string, run: () => Promise<number> }> = [
    { id: 'node', label: "node -e ''", run: async () => timed(process.execPath, ['-e', '']) },
    { id: 'socket-client', label: 'node: socket connect + node.info', run: async () => timed(process.execPath, ['-e', clientScript]) },
    { id: 'version', label: 'agentnet --version', run: async () => timed(process.execPath, [BIN, '--version']) },
    { id: 'id', label: 'agentnet id --json', run: async () => timed(process.execPath, [BIN, 'id', '--json', '--home', homeA]) },
    { id: 'id-nocache', label: 'agentnet id --json, compile cache off', run: async () => timed(process.execPath, [BIN, 'id', '--json', '--home', homeA], { ...ENV, NODE_DISABLE_COMPILE_CACHE: '1' }) },
    { id: 'status', label: 'agentnet status --json', run: async () => timed(process.execPath, [BIN, 'status', '--json', '--home', homeA]) },
    { id: 'send', label: 'agentnet send (10 B, echo on A)', run: async () => timed(process.execPath, [BIN, 'send', peerA, 'echo', '0123456789', '--home', homeB]) }
  ]
  const samples = new Map<string, number[]>(kinds.map(k => [k.id, []]))
  const connects: number[] = []
  log(`warm-up, then ${RUNS} rounds`)
  for (const kind of kinds) await kind.run()
  for (let round = 0; round < RUNS; round++) {
    for (const kind of kinds) samples.get(kind.id)!.push(await kind.run())
    connects.push(await socketConnectMs(socketA))
  }
  const rows = kinds.map(k => ({ id: k.id, label: k.label, p50: percentile(samples.get(k.id)!, 50), p99: percentile(samples.get(k.id)!, 99) }))
  rows.push({ id: 'connect', label: 'bare Unix-socket connect (in process)', p50: percentile(connects, 50), p99: percentile(connects, 99) })
  const node = rows.find(r => r.id === 'node')!.p50
  if (flags.json) {
    process.stdout.write(JSON.stringify({ runs: RUNS, mode: flags.bin != null ? 'installed' : flags.source ? 'source' : 'dist', rows }, null, 2) + '\n')
  } else {
    process.stdout.write(`mode: ${flags.bin != null ? `installed (${BIN})` : flags.source ? 'checkout sources (type stripping)' : 'package (bin + dist/)'}, ${RUNS} runs each\n\n`)
    process.stdout.write('| command | p50 | p99 | p50 − node -e \'\' |\n|---|---:|---:|---:|\n')
    for (const row of rows) {
      const over = row.id === 'node' || row.id === 'connect' ? '' : `${(row.p50 - node).toFixed(1)} ms`
      process.stdout.write(`| ${row.label} | ${row.p50.toFixed(row.id === 'connect' ? 3 : 1)} ms | ${row.p99.toFixed(row.id === 'connect' ? 3 : 1)} ms | ${over} |\n`)
    }
  }
} finally {
  listener?.kill()
  for (const home of [homeA, homeB]) {
    try { agentnet(['stop', '--home', home]) } catch {}
  }
  await rm(dir, { recursive: true, force: true })
}
