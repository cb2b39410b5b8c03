/**
 * The groups service behind the composition root is loaded when first
 * needed (src/agent/lazy-groups.ts): real libp2p nodes on 127.0.0.1, real
 * group state on disk. A node with no group does not load it at start but
 * answers the MLS protocol; an invitation from a peer (its first inbound MLS
 * stream) loads it and is served; a restart on a home with group state loads
 * it at start; with groups off every call is refused as before.
 */

import assert from 'node:assert/strict'
import { rm } from 'node:fs/promises'
import { after, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { agentnetMuxer } from '../../src/node/index.ts'
import { LazyGroups } from '../../src/agent/lazy-groups.ts'
import { MLS_PROTOCOL } from '../../src/groups/index.ts'
import { errorCodeOf } from '../../src/errors/index.ts'
import { guarded, makeHome } from './groups-helpers.ts'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

interface Node { libp2p: Libp2p, groups: LazyGroups, home: string, key: PrivateKey, stop: () => Promise<void> }

async function startNode (home: string, key?: PrivateKey, start = true): Promise<Node> {
  const privateKey = key ?? await generateKeyPair('Ed25519')
  const libp2p = await createLibp2p({
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [agentnetMuxer()],
    services: { identify: identify(), ping: ping() }
  })
  const groups = new LazyGroups({ libp2p, privateKey, acceptInvite: () => true }, { home })
  if (start) await groups.start()
  return {
    libp2p,
    groups,
    home,
    key: privateKey,
    stop: async () => {
      await groups.stop()
      await libp2p.stop()
    }
  }
}

async function until (what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('groups loaded on first need (LazyGroups)', () => {
  const homes: string[] = []
  const running: Node[] = []
  after(async () => {
    await Promise.all(running.map(async n => n.stop().catch(() => {})))
    await Promise.all(homes.map(async h => rm(h, { recursive: true, force: true })))
  })

  it('a node without group state does not load groups at start, yet a peer can add it and it receives group messages', async () => {
    const [homeA, homeB] = [await makeHome(), await makeHome()]
    homes.push(homeA, homeB)
    const a = await startNode(homeA)
    const b = await startNode(homeB)
    running.push(a, b)
    assert.equal(a.groups.isLoaded(), false)
    assert.equal(b.groups.isLoaded(), false)
    assert.equal(b.groups.isStarted(), true)
    assert.deepEqual(b.groups.list(), [])
    // peers see the protocol before it is loaded
    assert.ok(b.libp2p.getProtocols().includes(MLS_PROTOCOL))

    const received: string[] = []
    b.groups.on('received', m => { received.push(new TextDecoder().decode(m.body)) })
    await a.libp2p.dial(b.libp2p.getMultiaddrs()[0]!)
    // a local call loads A; B is loaded by A's first MLS stream (the key package request)
    const { groupId } = await a.groups.create({ name: 'team' })
    assert.equal(a.groups.isLoaded(), true)
    await a.groups.add({ groupId, peer: b.libp2p.peerId.toString() })
    assert.equal(b.groups.isLoaded(), true)
    await until('B to join', () => b.groups.list().some(g => g.groupId === groupId))
    await a.groups.send({ groupId, body: await guarded('hello'), contentType: 'text/plain' })
    await until('B to receive the message', () => received.includes('hello'))
  })

  it('a restart on a home that holds group state loads groups at start and keeps the group', async () => {
    const b = running[1]!
    const groupId = b.groups.list()[0]!.groupId
    await b.stop()
    running.splice(1, 1)
    const again = await startNode(b.home, b.key)
    running.push(again)
    assert.equal(again.groups.isLoaded(), true)
    assert.deepEqual(again.groups.list().map(g => g.groupId), [groupId])
  })

  it('not started (groups off in the config): calls are refused as by the service itself', async () => {
    const home = await makeHome()
    homes.push(home)
    const off = await startNode(home, undefined, false)
    running.push(off)
    await assert.rejects(off.groups.create({ name: 'x' }), (err: unknown) => errorCodeOf(err) === 'NotStarted')
    assert.equal(off.libp2p.getProtocols().includes(MLS_PROTOCOL), false)
  })
})
