import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { loadConfig, profilePath } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import type { AgentNode } from '../../src/agent/index.ts'

const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }

describe('a node that lost every connection finds its way back to the bootstrap nodes', () => {
  const nodes: AgentNode[] = []
  const homes: string[] = []

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  })

  it('keeps dialling its bootstrap node when the first attempt failed', async () => {
    const home = async (): Promise<string> => {
      const dir = await mkdtemp(join(tmpdir(), 'an-rejoin-'))
      homes.push(dir)
      return dir
    }
    const waitFor = async (what: () => boolean, ms: number): Promise<boolean> => {
      const deadline = Date.now() + ms
      while (Date.now() < deadline) {
        if (what()) return true
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      return false
    }
    // the bootstrap node's identity and port are known, but it is not up yet
    const port = await freePort()
    const bootKey = await generateKeyPair('Ed25519')
    const bootConfig = await loadConfig({ defaultsFile: profilePath('bootstrap'), overrides: { listen: [`/ip4/127.0.0.1/tcp/${port}`], nat: quiet } })
    const boot = await createAgentNode({ config: bootConfig, privateKey: bootKey, home: await home() })
    const bootAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${boot.peerId.toString()}`
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootAddr], nat: quiet, relay: { reserve: false } } })
    const agent = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home: await home(), rejoinIntervalMs: 300 })
    nodes.push(agent)
    await agent.start()
    // @libp2p/bootstrap's one dial (after ~1 s) fails: nothing is listening
    await new Promise(resolve => setTimeout(resolve, 2000))
    assert.equal(agent.libp2p.getConnections().length, 0)
    nodes.push(boot)
    await boot.start()
    assert.ok(await waitFor(() => agent.libp2p.getConnections(boot.peerId).length > 0, 5_000), 'the agent found the bootstrap node once it came up')
  })
})

async function freePort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => { typeof address === 'object' && address != null ? resolve(address.port) : reject(new Error('no port')) })
    })
  })
}
