/**
 * The old ID's pointer card: during the grace period the successor service
 * publishes, under the old peer ID's card key, a card signed by the old key
 * that names the new ID and carries the succession record.
 */

import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { cardKey, decodeCard } from '../../../src/cards/index.ts'
import { createIdentity } from '../../../src/identity/index.ts'
import { verifySuccession } from '../../../src/identity/rotation.ts'
import { rotateHome, SuccessorService } from '../../../src/rotation/index.ts'
import type { SuccessorComponents } from '../../../src/rotation/index.ts'

describe('successor service', () => {
  it('publishes the old ID\'s card pointing to the new ID, and answers on the old ID until stopped', async () => {
    const home = await mkdtemp(join(tmpdir(), 'an-successor-'))
    try {
      await createIdentity(home)
      const s = await rotateHome(home, { graceMs: 60_000 })
      const puts: Array<[Uint8Array, Uint8Array]> = []
      const libp2p = {
        peerId: peerIdFromString(s.new),
        peerStore: { get: async () => { throw new Error('unknown') } },
        dial: async () => { throw new Error('no dial in this test') }
      } as unknown as SuccessorComponents['libp2p']
      const service = new SuccessorService({
        home,
        libp2p,
        trustedPeers: () => [],
        contentRouting: { put: async (key: Uint8Array, value: Uint8Array) => { puts.push([key, value]) } }
      }, { config: { listen: ['/ip4/127.0.0.1/tcp/0'], security: ['noise'] } })
      await service.start()
      try {
        const until = Date.now() + 5000
        while (puts.length === 0 && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 20))
        const [key, value] = puts[0] ?? assert.fail('no card published')
        assert.deepEqual(key, cardKey(s.old))
        const card = decodeCard(key, value)
        assert.equal(card.peerId, s.old)
        assert.equal(card.metadata.successor, s.new)
        assert.equal(card.metadata.until, s.ts + s.graceMs)
        const v = verifySuccession(String(card.metadata.succession))
        assert.deepEqual([v.old, v.new], [s.old, s.new])
        const status = service.status()
        assert.ok(status !== undefined && status.oldAddresses.every(a => a.endsWith(`/p2p/${s.old}`)) && status.oldAddresses.length > 0)
      } finally {
        await service.stop()
      }
      assert.deepEqual(service.status()?.oldAddresses, [], 'the old ID no longer listens once stopped')
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })
})
