#!/usr/bin/env node
// Entry point of the `agentnet` command. The sources are TypeScript run
// directly by Node >= 22.18 (type stripping), so there is no build step.
import { main } from '../src/cli/index.ts'

process.umask(0o077)
const code = await main(process.argv.slice(2))
process.exitCode = code
// exit once the work is done: a CLI client must not linger on open handles,
// and a stopped node need not wait for libp2p's internal debounce timers
// (after stdout is flushed: to a pipe it is written asynchronously, and a
// large --json answer would be cut off)
await new Promise(resolve => process.stdout.write('', resolve))
process.exit(code)
