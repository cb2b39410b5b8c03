/**
 * Key rotation of a running node (issue 15): `agentnet identity rotate` on a
 * node started with `agentnet start` rotates it live (IPC `identity.rotate`:
 * the node restarts in process on the new key). Its trusted peers follow
 * without operator action, messages reach the new ID and are answered by the
 * agent that stayed connected to the socket through the restart, and a group
 * the node committed for hands the committer role to the next member, which
 * re-adds the node under its new ID.
 */

import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { createAgentNode } from '../../src/agent/index.ts'
import { connectClient } from '../../src/client/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { loadOrCreateIdentity } from '../../src/identity/index.ts'
import { prepareRotation, readRotation } from '../../src/identity/succession.ts'
import { makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'
import type { AgentNode } from '../../src/agent/index.ts'
import type { AgentnetClient } from '../../src/client/index.ts'
import type { RunningNode } from '../helpers/cli.ts'

const quiet = { autonat: false, webrtc: false, dcutr: false, upnp: false, stunServers: [], stunFromBootstrap: false, stunServerPort: 0 }
const encoder = new TextEncoder()
const decoder = new TextDecoder()

async function waitFor (what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const until = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('agentnet identity rotate on a running node (real processes)', () => {
  const homes: string[] = []
  const running = new Set<AgentNode>()
  let nodeA: RunningNode | undefined
  let agent: AgentnetClient | undefined

  after(async () => {
    agent?.close()
    await nodeA?.stop()
    for (const n of running) await n.stop().catch(() => {})
    await Promise.all(homes.map(removeHome))
  })

  async function peer (strict: boolean): Promise<AgentNode> {
    const home = await mkdtemp(join(tmpdir(), 'an-rotl-'))
    homes.push(home)
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], nat: quiet, relay: { reserve: false }, dht: { enabled: false }, trust: { strict } } })
    const node = await createAgentNode({ config, privateKey: (await loadOrCreateIdentity(home)).privateKey, home })
    await node.start()
    running.add(node)
    return node
  }

  async function echo (from: AgentNode, to: string, text: string): Promise<{ from: string, text: string }> {
    const reply = await from.send(peerIdFromString(to), 'echo', encoder.encode(text), 'text/plain; charset=utf-8', { timeoutMs: 8000 })
    return { from: reply.from, text: decoder.decode(reply.body) }
  }

  it('rotates live: B (strict) and C follow, the connected agent keeps serving, the group committer role moves', async () => {
    const homeA = await makeHome('an-rotl-a-')
    homes.push(homeA)
    const { peerId: oldA } = await runJson(['init', '--home', homeA])
    const config = join(homeA, 'test-config.json')
    await writeFile(config, JSON.stringify({ nat: quiet, relay: { reserve: false }, dht: { enabled: false } }))
    nodeA = await startNode(homeA, ['--log-level', 'silent', '--config', config])
    const b = await peer(true)
    const c = await peer(false)
    for (const p of [b, c]) {
      const { code } = await runJson(['invite', 'create', '--home', homeA])
      await p.trust.acceptInvite(code)
      assert.ok(p.trust.isTrusted(oldA))
    }
    // an agent on A's socket serves `echo`; it stays connected through the rotation
    agent = await connectClient({ home: homeA })
    const served = agent
    await served.registerService('echo')
    // a reply still in flight when the test stops A fails with ConnectionClosed: the echoes asserted below show serving
    served.on('message', m => { served.reply({ id: m.id, body: `echo:${String(m.body)}` }).catch(() => {}) })
    assert.deepEqual(await echo(b, oldA, 'before'), { from: oldA, text: 'echo:before' })

    // A commits a group with B in it
    const { groupId } = await served.request<{ groupId: string }>('group.create', { name: 'crew' })
    await served.request('group.add', { groupId, peer: b.peerId.toString() })
    await waitFor('B to join A\'s group', () => b.groups.list().some(g => g.groupId === groupId))

    const result = await runCli(['identity', 'rotate', '--home', homeA, '--grace', '10m', '--json'], { timeoutMs: 60_000 })
    assert.equal(nodeA.child.exitCode, null, 'the node process kept running')
    assert.equal(result.code, 0, result.stderr + result.stdout)
    const rotated = JSON.parse(result.stdout) as { old: string, new: string, live: boolean, handedOver: string[] }
    assert.equal(rotated.old, oldA)
    assert.equal(rotated.live, true)
    assert.deepEqual(rotated.handedOver, [groupId], 'the committer role was handed over before the swap')
    assert.equal((await readRotation(homeA))?.state, 'grace', 'persisted')
    assert.equal((await runJson(['id', '--home', homeA])).peerId, rotated.new, 'the running node answers as the new ID')

    // the peers follow on their own
    await waitFor('B and C to follow', () => b.trust.isTrusted(rotated.new) && c.trust.isTrusted(rotated.new))
    // once a peer took note, A's new ID dials it (that is how B and C learn where it listens)
    await waitFor('A to connect to B and C on its new ID', () => [b, c].every(p => p.libp2p.getConnections(peerIdFromString(rotated.new)).length > 0))
    assert.equal(b.trust.stateOf(oldA), 'revoked')
    for (const p of [b, c]) {
      assert.deepEqual(await echo(p, rotated.new, 'after'), { from: rotated.new, text: 'echo:after' }, 'answered by the agent that stayed connected')
    }
    // an agent still addressing the old ID reaches the new one
    assert.deepEqual(await echo(c, oldA, 'old name'), { from: rotated.new, text: 'echo:old name' })

    // the group: B took over as committer (term + 1) and swapped A's old ID for the new one
    const groupOf = (): { committer: string, term: number, members: string[] } | undefined => b.groups.list().find(g => g.groupId === groupId)
    await waitFor('B to re-add A under its new ID', () => (groupOf()?.members.includes(rotated.new) ?? false) && !(groupOf()?.members.includes(oldA) ?? true), 60_000)
    assert.equal(groupOf()?.committer, b.peerId.toString())
    await waitFor('A to join on its new ID', async () => (await served.request<Array<{ groupId: string }>>('group.list')).some(g => g.groupId === groupId), 60_000)
    const status = await served.request<{ rotating: boolean, pending: string[] }>('identity.status')
    assert.deepEqual([status.rotating, status.pending], [true, []])

    // a second live rotation during the grace period is refused, and the node keeps running
    const again = await runCli(['identity', 'rotate', '--home', homeA, '--json'])
    assert.equal(again.code, 1)
    assert.equal(JSON.parse(again.stdout).error.code, 'RotationInProgress')
    assert.deepEqual(await echo(b, rotated.new, 'still'), { from: rotated.new, text: 'echo:still' })
    agent.close()
    agent = undefined
    await nodeA.stop()
    nodeA = undefined
  })

  it('a node killed in the middle of a live rotation (new key persisted, not switched) completes it at its next start', async () => {
    const homeD = await makeHome('an-rotl-d-')
    homes.push(homeD)
    const { peerId: oldD } = await runJson(['init', '--home', homeD])
    const config = join(homeD, 'test-config.json')
    // after the crash the node's replay floor is its start + maxClockSkewMs: B's next message is refused with RestartedAt and re-sealed past it
    await writeFile(config, JSON.stringify({ nat: quiet, relay: { reserve: false }, dht: { enabled: false } }))
    let d = await startNode(homeD, ['--log-level', 'silent', '--config', config])
    const b = await peer(false)
    await b.trust.acceptInvite((await runJson(['invite', 'create', '--home', homeD])).code)
    // identity.rotate's first step, persisted while the node runs; then the process dies (SIGKILL: no clean stop)
    const prepared = await prepareRotation(homeD, { graceMs: 600_000 })
    await d.stop('SIGKILL')
    assert.equal((await readRotation(homeD))?.state, 'prepared')
    d = await startNode(homeD, ['--log-level', 'silent', '--config', config])
    try {
      assert.equal((await runJson(['id', '--home', homeD])).peerId, prepared.new, 'the restart completed the rotation')
      assert.deepEqual([(await readRotation(homeD))?.state, (await readRotation(homeD))?.migrated], ['grace', true])
      await waitFor('B to follow', () => b.trust.isTrusted(prepared.new) && b.libp2p.getConnections(peerIdFromString(prepared.new)).length > 0)
      assert.equal(b.trust.stateOf(oldD), 'revoked')
      const client = await connectClient({ home: homeD })
      try {
        await client.registerService('echo')
        client.on('message', m => { void client.reply({ id: m.id, body: `d:${String(m.body)}` }) })
        assert.deepEqual(await echo(b, oldD, 'resumed'), { from: prepared.new, text: 'd:resumed' })
      } finally {
        client.close()
      }
    } finally {
      await d.stop()
    }
  })
})
