import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { RunningNode } from '../helpers/cli.ts'

const CHANGES = 1000

/**
 * SIGKILL a node at random moments while an agent drives 1,000 trust
 * changes through its socket: every restart must load a trust store and an
 * audit log that hold every acknowledged change (a prefix of the attempted
 * ones) and verify.
 */
describe('crash safety of the trust store and the audit log', () => {
  let home: string
  let node: RunningNode | undefined
  // random peers to send trust requests to: each request is a trust change (pending-outbound)
  const strangers: string[] = []

  before(async () => {
    home = await makeHome('an-crash-')
    for (let i = 0; i < 20; i++) {
      strangers.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
    }
  })

  after(async () => {
    await node?.stop('SIGKILL')
    await removeHome(home)
  })

  it(`survives SIGKILL at random moments during ${CHANGES} trust changes`, async () => {
    const acknowledgedInvites = new Set<string>()
    const requested = new Set<string>()
    let acknowledged = 0
    let kills = 0
    while (acknowledged < CHANGES) {
      node = await startNode(home, ['--log-level', 'warn'])
      // every start loads what the previous (killed) one left, and it verifies
      const audit = await runJson<{ ok: boolean, records: number }>(['audit', 'verify', '--home', home])
      assert.equal(audit.ok, true, `audit log verifies after kill ${kills}`)
      const store = JSON.parse(await readFile(join(home, 'trust.json'), 'utf8').catch(() => '{"invites":{},"peers":{}}'))
      const storedInvites = new Set(Object.keys(store.invites ?? {}))
      for (const id of acknowledgedInvites) {
        assert.ok(storedInvites.has(id), `acknowledged invite ${id} survived kill ${kills}`)
      }
      const list = await runJson<Array<{ peerId: string, state: string }>>(['trust', 'list', '--home', home])
      for (const peer of requested) {
        assert.ok(list.some(e => e.peerId === peer), `acknowledged request to ${peer} survived kill ${kills}`)
      }

      const socket = await RawSocket.connect(join(home, 'agentnet.sock'))
      // the kill comes after a random number of changes, a random few ms later, while the agent keeps
      // writing: it lands at a random point of some write. (A random time from the connect made the
      // run's length grow with the machine's load: fewer changes per cycle, and every cycle starts a node.)
      const killAt = acknowledged + 1 + Math.floor(Math.random() * 60)
      let killer: ReturnType<typeof setTimeout> | undefined
      try {
        while (acknowledged < CHANGES) {
          if (acknowledged >= killAt && killer === undefined) {
            killer = setTimeout(() => { void node?.stop('SIGKILL') }, Math.floor(Math.random() * 5))
          }
          if (acknowledged % 50 === 49) {
            const peer = strangers[(acknowledged / 50) % strangers.length | 0] as string
            // the request is recorded (pending-outbound) before the dial, which cannot succeed
            // for a made-up peer: count it once the store lists it
            socket.send({ jsonrpc: '2.0', id: `req-${acknowledged}`, method: 'trust.request', params: { peer, reason: `change ${acknowledged}` } })
            let listed = false
            for (let i = 0; i < 40 && !listed; i++) {
              const list = await socket.call('trust.list', {}).catch(() => undefined)
              if (list == null) break
              listed = list.result.some((e: { peerId: string }) => e.peerId === peer)
              if (!listed) await new Promise(resolve => setTimeout(resolve, 25))
            }
            if (!listed) break
            requested.add(peer)
          } else {
            const reply = await socket.call('invite.create', { ttlMs: 3_600_000, uses: 1 }).catch(() => undefined)
            if (reply?.result == null) break
            acknowledgedInvites.add(reply.result.id)
          }
          acknowledged++
        }
      } finally {
        clearTimeout(killer)
        socket.close()
      }
      if (acknowledged < CHANGES) kills++
      await node.stop('SIGKILL')
    }
    assert.ok(kills >= 3, `the node was killed mid-run (${kills} times)`)
    node = await startNode(home, ['--log-level', 'warn'])
    const audit = await runJson<{ ok: boolean, records: number }>(['audit', 'verify', '--home', home])
    assert.equal(audit.ok, true)
    const records = await runJson<Array<{ type: string }>>(['audit', 'tail', '-n', '10000', '--home', home])
    assert.ok(records.filter(r => r.type === 'trust.invite-created').length >= acknowledgedInvites.size - 0)
  })
})
