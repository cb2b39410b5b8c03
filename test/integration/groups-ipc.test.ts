import assert from 'node:assert/strict'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { RunningNode } from '../helpers/cli.ts'

describe('MLS groups through the node: IPC, CLI, and the outbox (three real nodes)', () => {
  const homes: string[] = []
  const nodes: RunningNode[] = []
  const ids: string[] = []
  const listeners: RawSocket[] = []
  const got: Array<Array<Record<string, any>>> = [[], [], []]
  let groupId = ''

  before(async () => {
    for (let i = 0; i < 3; i++) {
      const home = await makeHome()
      homes.push(home)
      nodes.push(await startNode(home))
      ids.push((await runJson<{ peerId: string }>(['id', '--home', home])).peerId)
    }
    // A invites B and C: mutual trust, and B and C know A's addresses
    for (const i of [1, 2]) {
      const invite = await runJson<{ code: string }>(['invite', 'create', '--home', homes[0] as string])
      assert.equal((await runJson<{ state: string }>(['invite', 'accept', invite.code, '--home', homes[i] as string])).state, 'trusted')
    }
    // B and C have no bootstrap node to find each other through: give B C's address
    const addrC = (await runJson<{ addresses: string[] }>(['id', '--home', homes[2] as string])).addresses[0] ?? ''
    await runJson(['connect', addrC, '--home', homes[1] as string])
    for (let i = 0; i < 3; i++) {
      const socket = await RawSocket.connect(join(homes[i] as string, 'agentnet.sock'))
      listeners.push(socket)
      assert.ok((await socket.call('group.subscribe', {})).result.subscribed)
      void (async () => {
        while (!socket.closed) {
          const note = await socket.next(m => m.method === 'group.received', 600_000).catch(() => undefined)
          if (note == null) return
          got[i]?.push(note.params)
        }
      })()
    }
  })

  after(async () => {
    for (const s of listeners) s.close()
    await Promise.all(nodes.map(async n => n.stop()))
    await Promise.all(homes.map(removeHome))
  })

  const until = async (what: string, cond: () => boolean, ms = 20_000): Promise<void> => {
    const deadline = Date.now() + ms
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  it('A creates a group and adds B and C from the CLI; all three list the same members and epoch', async () => {
    groupId = (await runJson<{ groupId: string }>(['group', 'create', 'launch-team', '--home', homes[0] as string])).groupId
    assert.match(groupId, /^[0-9a-f]{32}$/)
    await runJson(['group', 'add', groupId, ids[1] as string, '--home', homes[0] as string])
    const added = await runJson<{ epoch: number }>(['group', 'add', groupId, ids[2] as string, '--home', homes[0] as string])
    assert.equal(added.epoch, 2)
    for (let i = 0; i < 3; i++) {
      const deadline = Date.now() + 20_000
      let list: Array<{ groupId: string, epoch: number, members: string[] }> = []
      while (Date.now() < deadline) {
        list = await runJson(['group', 'list', '--home', homes[i] as string])
        if (list[0]?.epoch === 2) break
        await new Promise(resolve => setTimeout(resolve, 200))
      }
      assert.equal(list[0]?.groupId, groupId)
      assert.deepEqual([...(list[0]?.members ?? [])].sort(), [...ids].sort())
    }
  })

  it('a message sent with `group send` reaches the other members, decrypted, with its sender', async () => {
    const sent = await runJson<{ epoch: number, delivered: number }>(['group', 'send', groupId, 'kick-off at 10', '--home', homes[1] as string])
    assert.equal(sent.delivered, 2)
    await until('A and C to receive', () => (got[0]?.length ?? 0) > 0 && (got[2]?.length ?? 0) > 0)
    for (const i of [0, 2]) {
      const m = got[i]?.at(-1)
      assert.equal(m?.body, 'kick-off at 10')
      assert.equal(m?.from, ids[1])
      assert.equal(m?.groupId, groupId)
    }
  })

  it('group messages pass the guard before encryption: a registered value is blocked, nothing is fanned out', async () => {
    const socket = await RawSocket.connect(join(homes[0] as string, 'agentnet.sock'))
    try {
      assert.ok((await socket.call('guard.protect', { value: 'Project Nightingale', label: 'codename', category: 'corp/secret' })).result.id)
      const before = [got[1]?.length, got[2]?.length]
      const refused = await socket.call('group.send', { groupId, body: 'the codename is project nightingale' })
      assert.equal(refused.error?.data?.code, 'LeakBlocked')
      // a policy for the group lets that category through
      await socket.call('guard.policy.set', { peer: `group:${groupId}`, allow: ['corp/*'] })
      const ok = await socket.call('group.send', { groupId, body: 'the codename is Project Nightingale' })
      assert.equal(ok.result?.delivered, 2, JSON.stringify(ok))
      await until('B and C to receive the allowed one', () => got[1]?.length === (before[0] ?? 0) + 1 && got[2]?.length === (before[1] ?? 0) + 1)
      assert.equal(got[1]?.at(-1)?.body, 'the codename is Project Nightingale')
    } finally {
      socket.close()
    }
  })

  it('revoking trust in C removes it from the group', async () => {
    await runJson(['trust', 'revoke', ids[2] as string, '--home', homes[0] as string])
    const deadline = Date.now() + 30_000
    let members: string[] = []
    while (Date.now() < deadline) {
      members = (await runJson<Array<{ members: string[] }>>(['group', 'list', '--home', homes[0] as string]))[0]?.members ?? []
      if (!members.includes(ids[2] as string)) break
      await new Promise(resolve => setTimeout(resolve, 200))
    }
    assert.deepEqual([...members].sort(), [ids[0], ids[1]].sort())
  })
})
