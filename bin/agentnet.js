#!/usr/bin/env node
// Entry point of the `agentnet` command. Kept tiny and in syntax every Node
// understands, so that an old Node gets one clear line instead of a stack trace.
// In an installed package it runs the compiled `dist/`; in a checkout (where
// `src/` exists) the TypeScript sources, so that tests never see a stale build
// (`AGENTNET_DIST=1` forces `dist/`).
import { existsSync, readFileSync } from 'node:fs'

var major = Number(process.versions.node.split('.')[0])

if (major < 22) {
  process.stderr.write('agentnet: needs Node.js 22 or newer, this is ' + process.version +
    '; install Node 22+ (e.g. "nvm install 22"), or in a checkout run "npx agentnet", which uses the project\'s own Node 22\n')
  process.exit(1)
}

var args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // the most common probe: answer without loading the CLI
  process.stdout.write(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version + '\n')
} else {
  run()
}

async function run () {
  const { enableCompileCache } = await import('node:module')
  // cache compiled code between runs (Node 22.1+): about halves a thin command's start-up
  enableCompileCache?.()
  const source = new URL('../src/cli/main.ts', import.meta.url)
  const fromSource = process.env.AGENTNET_DIST !== '1' && Boolean(process.features.typescript) && existsSync(source)
  const { main } = await import(fromSource ? source.href : '../dist/cli/main.js')
  process.umask(0o077)
  const code = await main(args)
  process.exitCode = code
  // exit once the work is done: a CLI client must not linger on open handles,
  // and a stopped node need not wait for libp2p's internal debounce timers
  // (after stdout is flushed: to a pipe it is written asynchronously, and a
  // large --json answer would be cut off)
  await new Promise(resolve => process.stdout.write('', resolve))
  process.exit(code)
}
