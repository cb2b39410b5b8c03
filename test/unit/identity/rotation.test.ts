import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { applySuccession, decodeSuccession, encodeSuccession, inGracePeriod, verifySuccession } from '../../../src/identity/rotation.ts'
import type { MovablePeer } from '../../../src/identity/rotation.ts'

const NOW = Date.parse('2026-11-30T12:00:00Z')
const DAY = 86_400_000

async function keys (): Promise<{ oldKey: Awaited<ReturnType<typeof generateKeyPair>>, newKey: Awaited<ReturnType<typeof generateKeyPair>>, oldId: string, newId: string }> {
  const oldKey = await generateKeyPair('Ed25519')
  const newKey = await generateKeyPair('Ed25519')
  return { oldKey, newKey, oldId: peerIdFromPrivateKey(oldKey).toString(), newId: peerIdFromPrivateKey(newKey).toString() }
}

describe('succession records', () => {
  it('a record signed by both keys verifies', async () => {
    const { oldKey, newKey, oldId, newId } = await keys()
    const record = encodeSuccession(oldKey, newKey, { ts: NOW, graceMs: DAY })
    const v = verifySuccession(record, { now: NOW + 1000 })
    assert.deepEqual(v, { old: oldId, new: newId, ts: NOW, graceMs: DAY, signedBy: 'both' })
    assert.equal(inGracePeriod(v, NOW + DAY - 1), true)
    assert.equal(inGracePeriod(v, NOW + DAY), false)
  })

  it('an old-key-only record is refused unless the policy accepts it', async () => {
    const { oldKey, newId } = await keys()
    const record = encodeSuccession(oldKey, undefined, { ts: NOW, newPeerId: newId })
    assert.throws(() => verifySuccession(record, { now: NOW }), { code: 'NewKeySignatureMissing' })
    assert.equal(verifySuccession(record, { now: NOW, acceptOldKeyOnly: true }).signedBy, 'old-only')
  })

  it('refuses forged, swapped, altered, stale and future records', async () => {
    const { oldKey, newKey } = await keys()
    const other = await generateKeyPair('Ed25519')
    const record = encodeSuccession(oldKey, newKey, { ts: NOW })
    const outer = JSON.parse(Buffer.from(record, 'base64url').toString()) as Record<string, string>
    const reencode = (o: Record<string, string>): string => Buffer.from(JSON.stringify(o)).toString('base64url')
    // the new key's signature replaced by another key's
    const byOther = JSON.parse(Buffer.from(encodeSuccession(other, newKey, { ts: NOW }), 'base64url').toString()) as Record<string, string>
    assert.throws(() => verifySuccession(reencode({ ...outer, old: byOther.old ?? '' }), { now: NOW }), { code: 'BadSignature' })
    // signatures swapped
    assert.throws(() => verifySuccession(reencode({ ...outer, old: outer.new ?? '', new: outer.old ?? '' }), { now: NOW }), { code: 'BadSignature' })
    // payload altered (grace lengthened), re-encoded canonically
    const fields = JSON.parse(Buffer.from(outer.payload ?? '', 'base64url').toString()) as Record<string, unknown>
    const altered = Buffer.from(JSON.stringify({ graceMs: 2 * DAY, new: fields.new, old: fields.old, ts: fields.ts, v: 1 })).toString('base64url')
    assert.throws(() => verifySuccession(reencode({ ...outer, payload: altered }), { now: NOW }), { code: 'BadSignature' })
    // non-canonical payload (whitespace)
    const spaced = Buffer.from(JSON.stringify(fields, null, 1)).toString('base64url')
    assert.throws(() => decodeSuccession(reencode({ ...outer, payload: spaced })), { code: 'MalformedSuccession' })
    assert.throws(() => verifySuccession(record, { now: NOW + 31 * DAY }), { code: 'StaleSuccession' })
    assert.throws(() => verifySuccession(record, { now: NOW - 10 * 60_000 }), { code: 'FutureSuccession' })
    assert.throws(() => verifySuccession('!!', { now: NOW }), { code: 'MalformedSuccession' })
    assert.throws(() => encodeSuccession(oldKey, oldKey, { ts: NOW }), { code: 'SameKey' })
  })

  it('moves trust and petnames from the old ID to the new one, and never over a refusal', async () => {
    const { oldKey, newKey, oldId, newId } = await keys()
    const s = verifySuccession(encodeSuccession(oldKey, newKey, { ts: NOW }), { now: NOW })
    const peers: Record<string, MovablePeer> = { [oldId]: { state: 'trusted', since: NOW - DAY, updatedAt: NOW - DAY, reason: 'weather agent', direction: 'mutual', via: 'invite' } }
    const move = applySuccession(peers, { weather: oldId, other: 'x' }, s, NOW)
    assert.equal(move.moved, true)
    assert.equal(move.peers[newId]?.state, 'trusted')
    assert.equal(move.peers[newId]?.reason, 'weather agent')
    assert.equal(move.peers[oldId]?.state, 'revoked')
    assert.match(move.peers[oldId]?.note ?? '', new RegExp(newId))
    assert.deepEqual(move.aliases, { weather: newId, other: 'x' })
    assert.deepEqual(move.audit, { type: 'trust.succession', data: { old: oldId, new: newId, ts: NOW, signedBy: 'both', moved: true } })

    const refused = applySuccession({ ...peers, [newId]: { state: 'revoked', since: 0, updatedAt: 0, reason: '', direction: 'none', via: 'request' } }, {}, s, NOW)
    assert.equal(refused.moved, false)
    assert.equal(refused.peers[newId]?.state, 'revoked')
    assert.equal(refused.peers[oldId]?.state, 'trusted')
    const untrusted = applySuccession({}, { w: oldId }, s, NOW)
    assert.equal(untrusted.moved, false)
    assert.deepEqual(untrusted.aliases, { w: oldId })
  })
})
