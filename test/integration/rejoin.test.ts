import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { loadConfig, profilePath } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/node/index.ts'
import type { AgentNode } from '../../src/node/index.ts'

const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }

describe('a node that lost every connection finds its way back to the bootstrap nodes', () => {
  const nodes: AgentNode[] = []
  const homes: string[] = []

  after(async () => {
    await Promise.all(nodes.map(async n => n.stop().catch(() => {})))
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  })

  it('re-dials its bootstrap node once it has no connection left', async () => {
    const home = async (): Promise<string> => {
      const dir = await mkdtemp(join(tmpdir(), 'an-rejoin-'))
      homes.push(dir)
      return dir
    }
    const bootConfig = await loadConfig({ defaultsFile: profilePath('bootstrap'), overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], nat: quiet } })
    const boot = await createAgentNode({ config: bootConfig, privateKey: await generateKeyPair('Ed25519'), home: await home() })
    nodes.push(boot)
    await boot.start()
    const bootAddr = boot.libp2p.getMultiaddrs()[0]?.toString() ?? ''
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootAddr], nat: quiet, relay: { reserve: false } } })
    const agent = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home: await home(), rejoinIntervalMs: 300 })
    nodes.push(agent)
    await agent.start()

    const connected = async (): Promise<boolean> => agent.libp2p.getConnections(boot.peerId).length > 0
    const waitFor = async (what: () => Promise<boolean>, ms: number): Promise<boolean> => {
      const deadline = Date.now() + ms
      while (Date.now() < deadline) {
        if (await what()) return true
        await new Promise(resolve => setTimeout(resolve, 50))
      }
      return false
    }
    assert.ok(await waitFor(connected, 10_000), 'joined through the bootstrap node')
    // the bootstrap node drops the agent: nothing else would dial it again
    await boot.libp2p.hangUp(agent.peerId)
    assert.ok(await waitFor(async () => agent.libp2p.getConnections().length === 0, 5_000), 'the agent lost its only connection')
    assert.ok(await waitFor(connected, 5_000), 'and dialled its bootstrap node again')
  })
})
