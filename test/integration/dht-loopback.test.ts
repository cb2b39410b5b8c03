import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { RunningNode } from '../helpers/cli.ts'

const AGENTS = 10

describe('dial by peer ID alone: 10 agents that know only 2 bootstrap nodes', () => {
  const homes: string[] = []
  const nodes: RunningNode[] = []
  const sockets: RawSocket[] = []
  const peerIds: string[] = []

  before(async () => {
    const bootstrapAddrs: string[] = []
    for (let i = 0; i < 2; i++) {
      const home = await makeHome('an-boot-')
      homes.push(home)
      nodes.push(await startNode(home, ['--profile', 'bootstrap']))
      const id = await runJson<{ addresses: string[] }>(['id', '--home', home])
      bootstrapAddrs.push(id.addresses[0] ?? '')
    }
    for (let i = 0; i < AGENTS; i++) {
      const home = await makeHome('an-agent-')
      homes.push(home)
      const config = join(home, 'config.json')
      // loopback: no NAT to learn about, and no relay needed between local processes
      await writeFile(config, JSON.stringify({ nat: { autonat: false, webrtc: false, dcutr: false }, relay: { reserve: false } }))
      nodes.push(await startNode(home, ['--config', config, ...bootstrapAddrs.flatMap(a => ['--bootstrap', a])]))
      peerIds.push((await runJson<{ peerId: string }>(['id', '--home', home])).peerId)
      const socket = await RawSocket.connect(join(home, 'agentnet.sock'))
      sockets.push(socket)
      assert.equal((await socket.call('service.register', { service: 'echo' })).result.service, 'echo')
    }
  })

  after(async () => {
    for (const s of sockets) s.close()
    await Promise.all(nodes.map(async n => n.stop()))
    await Promise.all(homes.map(removeHome))
  })

  it('every agent sends a signed request to every other by peer ID; all 90 succeed', async () => {
    // each agent answers its echo requests
    sockets.forEach(socket => {
      void (async () => {
        while (!socket.closed) {
          const note = await socket.next(m => m.method === 'msg.received', 120_000).catch(() => undefined)
          if (note == null) return
          socket.send({ jsonrpc: '2.0', id: `r-${note.params.id}`, method: 'msg.reply', params: { id: note.params.id, body: note.params.body } })
        }
      })()
    })
    const results = await Promise.all(peerIds.flatMap((from, i) => peerIds.map(async (to, j) => {
      if (i === j) return 'self'
      const client = await RawSocket.connect(join(homes[i + 2] ?? '', 'agentnet.sock'))
      try {
        const reply = await client.call('msg.send', { to, service: 'echo', body: `${from}->${to}`, timeoutMs: 30_000 })
        return reply.result?.body === `${from}->${to}` && reply.result.from === to ? 'ok' : JSON.stringify(reply.error ?? reply.result)
      } finally {
        client.close()
      }
    })))
    const failures = results.filter(r => r !== 'ok' && r !== 'self')
    assert.deepEqual(failures, [], `${failures.length} of 90 failed`)
    assert.equal(results.filter(r => r === 'ok').length, 90)
  })
})
