import { startStunServer } from '../stun/index.ts'
import type { Config } from '../config/index.ts'
import type { StunServer } from '../stun/index.ts'
import type { Startable } from '@libp2p/interface'
import type { Logger } from 'pino'

/** The STUN responder of a bootstrap node (`nat.stunServerPort`), as a lifecycle step; a no-op when the port is 0 */
export function stunService (config: Config, logger?: Logger): Startable {
  let server: StunServer | undefined
  return {
    async start () {
      const port = config.nat.stunServerPort
      if (port === 0) return
      try {
        server = await startStunServer({ host: '0.0.0.0', port })
      } catch (err) {
        throw new Error(`cannot answer STUN on UDP port ${port}: ${(err as Error).message} (set nat.stunServerPort to another port, or 0 to turn it off)`)
      }
      logger?.info({ port: server.port }, 'answering STUN binding requests')
    },
    async stop () {
      await server?.close().catch(() => {})
      server = undefined
    }
  }
}
