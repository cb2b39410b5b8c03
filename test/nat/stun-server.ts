/**
 * The lab's STUN fixture: the product's STUN responder (src/stun), runnable
 * on its own in a namespace.
 *
 * Run: `node test/nat/stun-server.ts [--host 0.0.0.0] [--port 3478]`; prints
 * one line `{"stun":"listening","address":…,"port":…}` on stdout when ready.
 */

import { fileURLToPath } from 'node:url'
import { startStunServer } from '../../src/stun/index.ts'

export { bindingResponse, startStunServer, MAGIC_COOKIE } from '../../src/stun/index.ts'
export type { StunServer } from '../../src/stun/index.ts'

if (process.argv[1] != null && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(name)
    return i === -1 ? undefined : process.argv[i + 1]
  }
  const server = await startStunServer({ host: arg('--host'), port: Number(arg('--port') ?? 3478) })
  process.stdout.write(JSON.stringify({ stun: 'listening', address: server.address, port: server.port }) + '\n')
  const stop = (): void => { void server.close().then(() => process.exit(0)) }
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}
