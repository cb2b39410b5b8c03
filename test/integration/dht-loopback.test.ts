import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { cardKey, encodeCard } from '../../src/cards/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { createAgentLibp2p } from '../../src/node/index.ts'
import { makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { RunningNode } from '../helpers/cli.ts'

const AGENTS = 10

describe('dial by peer ID alone: 10 agents that know only 2 bootstrap nodes', () => {
  const homes: string[] = []
  const nodes: RunningNode[] = []
  const sockets: RawSocket[] = []
  const peerIds: string[] = []
  const bootstrapAddrs: string[] = []

  before(async () => {
    for (let i = 0; i < 2; i++) {
      const home = await makeHome('an-boot-')
      homes.push(home)
      // two bootstrap nodes on one machine cannot both answer STUN on UDP 3478
      const config = join(home, 'config.json')
      await writeFile(config, JSON.stringify({ nat: { stunServerPort: 0 } }))
      nodes.push(await startNode(home, ['--profile', 'bootstrap', '--config', config]))
      const id = await runJson<{ addresses: string[] }>(['id', '--home', home])
      bootstrapAddrs.push(id.addresses[0] ?? '')
    }
    for (let i = 0; i < AGENTS; i++) {
      const home = await makeHome('an-agent-')
      homes.push(home)
      const config = join(home, 'config.json')
      // loopback: no NAT to learn about, and no relay needed between local processes
      await writeFile(config, JSON.stringify({ nat: { autonat: false, webrtc: false, dcutr: false }, relay: { reserve: false }, trust: { publicServices: ['echo'] } }))
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

  it('agent cards: published at start, found and verified by peer ID; forged and replayed-older cards do not stick', async () => {
    const home = (i: number): string => homes[i + 2] ?? ''
    const victim = peerIds[3] ?? ''
    const updated = await runJson<{ seq: number, name: string }>(['lookup', victim, '--home', home(0)]).catch(() => undefined)
    // the start-up publication happens in the background; it must be there by now
    assert.ok(updated != null, 'card published at start')
    const socket = await RawSocket.connect(join(home(3), 'agentnet.sock'))
    const published = await socket.call('card.publish', { name: 'agent-3', services: ['echo'], metadata: { model: 'test' } })
    socket.close()
    assert.equal(published.result.name, 'agent-3')
    const seen = await runJson<{ peerId: string, seq: number, name: string, services: string[], metadata: unknown }>(['lookup', victim, '--home', home(7)])
    assert.deepEqual(seen, { peerId: victim, seq: published.result.seq, name: 'agent-3', services: ['echo'], metadata: { model: 'test' } })

    // an attacker node on the same DHT that accepts anything locally tries to overwrite the card
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: bootstrapAddrs, nat: { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [] }, relay: { reserve: false } } })
    const attackerKey = await generateKeyPair('Ed25519')
    const attacker = await createAgentLibp2p({ config, privateKey: attackerKey, userAgent: 'attacker', dhtValidators: { 'agentnet-card': async () => {} } })
    await attacker.start()
    try {
      for (const addr of bootstrapAddrs) await attacker.dial(multiaddr(addr))
      const forged = encodeCard({ name: 'evil', services: [], metadata: {} }, attackerKey, Date.now() + 1_000_000)
      const older = encodeCard({ name: 'older', services: [], metadata: {} }, attackerKey, 1)
      for (const value of [forged, older]) {
        await attacker.contentRouting.put(cardKey(peerIdFromString(victim)), value, { signal: AbortSignal.timeout(10_000) }).catch(() => {})
      }
    } finally {
      await attacker.stop()
    }
    const after = await runJson<{ name: string, seq: number }>(['lookup', victim, '--home', home(5)])
    assert.equal(after.name, 'agent-3')
    assert.equal(after.seq, published.result.seq)
  })

  it('petnames stand in for peer IDs', async () => {
    const home = homes[2] ?? ''
    const target = peerIds[4] ?? ''
    assert.deepEqual(await runJson(['alias', 'add', 'bob', target, '--home', home]), { name: 'bob', peerId: target })
    assert.deepEqual(await runJson(['alias', 'list', '--home', home]), [{ name: 'bob', peerId: target }])
    const reply = await runJson<{ from: string, body: string }>(['send', 'bob', 'echo', 'hi bob', '--home', home])
    assert.equal(reply.from, target)
    assert.equal(reply.body, 'hi bob')
    const pong = await runJson<{ peerId: string }>(['ping', 'bob', '--home', home])
    assert.equal(pong.peerId, target)
    const bad = await runCli(['alias', 'add', '12D3KooWnot', target, '--home', home])
    assert.equal(bad.code, 1)
    assert.deepEqual(await runJson(['alias', 'rm', 'bob', '--home', home]), { name: 'bob', removed: true })
    const gone = await runCli(['send', 'bob', 'echo', 'x', '--home', home])
    assert.equal(gone.code, 1)
  })
})
