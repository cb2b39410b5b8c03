/**
 * MLS groups between real libp2p nodes on 127.0.0.1: messaging among three
 * members, removal, rejected commits and Welcomes, and restarts.
 */

import assert from 'node:assert/strict'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createCommit, decodeMlsMessage, emptyPskIndex, encodeMlsMessage, processPrivateMessage, createApplicationMessage } from 'ts-mls'
import { createSigner, MLS_SIGNATURE_SCHEME } from '../../src/protocol/index.ts'
import { decodeReply, sealFrame, sendRawFrame } from '../../src/groups/index.ts'
import { decoder, encoder, epochOf, mesh, removeHome, startGroupNode, waitFor, guarded } from './groups-helpers.ts'
import type { GroupNode } from './groups-helpers.ts'
import type { FrameType, GroupFrame } from '../../src/groups/index.ts'
import type { ClientState, MlsPrivateMessage } from 'ts-mls'

/** Send a frame as `from` (signed with its key) to `to`; the error code of the reply, or 'ok'. */
async function forge (from: GroupNode, to: GroupNode, type: FrameType, frame: Partial<GroupFrame> & { groupId: Uint8Array }, bytes?: Uint8Array): Promise<{ code: string, bytes: Uint8Array }> {
  const sealed = bytes ?? sealFrame(createSigner(from.key, MLS_SIGNATURE_SCHEME), to.libp2p.peerId, type, frame).bytes
  const raw = await sendRawFrame(from.libp2p, to.libp2p.peerId, sealed, AbortSignal.timeout(5000))
  const reply = decodeReply(raw).frame
  const error = reply.meta.error as { code: string } | undefined
  return { code: error?.code ?? 'ok', bytes: sealed }
}

const groupIdBytes = (id: string): Uint8Array => new Uint8Array(Buffer.from(id, 'hex'))

describe('groups: three members on real nodes', () => {
  let a: GroupNode, b: GroupNode, c: GroupNode, d: GroupNode
  let groupId: string

  before(async () => {
    a = await startGroupNode()
    b = await startGroupNode()
    c = await startGroupNode()
    d = await startGroupNode()
    await mesh([a, b, c, d])
  })

  after(async () => {
    for (const n of [a, b, c, d]) {
      await n?.stop().catch(() => {})
      if (n !== undefined) await removeHome(n.home)
    }
  })

  it('three members exchange messages', async () => {
    groupId = (await a.svc.create({ name: 'secret-team-name' })).groupId
    await a.svc.add({ groupId, peer: b.id })
    await a.svc.add({ groupId, peer: c.id })
    await waitFor('B and C joined at epoch 2', () => epochOf(b, groupId) === 2 && epochOf(c, groupId) === 2)
    const info = a.svc.list()[0]
    assert.equal(info?.committer, a.id)
    assert.deepEqual(info?.members, [a.id, b.id, c.id])
    assert.deepEqual(b.svc.list()[0]?.members, [a.id, b.id, c.id])
    assert.equal(b.svc.list()[0]?.name, 'secret-team-name')

    await a.svc.send({ groupId, body: await guarded('hello from A'), contentType: 'text/plain' })
    await b.svc.send({ groupId, body: await guarded('hello from B'), contentType: 'text/plain' })
    await c.svc.send({ groupId, body: await guarded('hello from C'), contentType: 'text/plain' })
    await waitFor('every message everywhere', () => a.received.length === 2 && b.received.length === 2 && c.received.length === 2)
    assert.deepEqual(b.received.map(m => `${m.from === a.id ? 'A' : 'C'}:${m.text}`).sort(), ['A:hello from A', 'C:hello from C'])
    assert.deepEqual(a.received.map(m => m.text).sort(), ['hello from B', 'hello from C'])
    assert.equal(a.received[0]?.epoch, 2)
  })

  it('a member asks the committer to add a peer', async () => {
    await b.svc.add({ groupId, peer: d.id })
    await waitFor('D joined', () => epochOf(d, groupId) === 3 && epochOf(c, groupId) === 3)
    assert.deepEqual(d.svc.list()[0]?.members, [a.id, b.id, c.id, d.id])
    // the joiner learns the group from its Welcome only: no frame of the group reached it before (it would refuse it as UnknownGroup)
    assert.deepEqual(d.audit.filter(e => e.type === 'groups.rejected').map(e => e.code), [])
    await d.svc.send({ groupId, body: await guarded('D here'), contentType: 'text/plain' })
    await waitFor('D heard', () => c.received.some(m => m.text === 'D here'))
  })

  it('a forged commit from a non-committer, a replayed commit, a commit for the wrong epoch are rejected and audited', async () => {
    const gid = groupIdBytes(groupId)
    const epoch = epochOf(c, groupId) ?? 0
    // B (a member, not the committer) makes a real MLS commit from its own state and sends it to C
    const bState = (b.svc as unknown as { groups: Map<string, { state: ClientState }> }).groups.get(groupId)?.state
    assert.ok(bState)
    const forged = await createCommit({ state: bState, cipherSuite: b.svc.cs }, { extraProposals: [] })
    const forgedReply = await forge(b, c, 'mls.commit', { groupId: gid, epoch, term: 1, mls: encodeMlsMessage(forged.commit) })
    assert.equal(forgedReply.code, 'NotCommitter')
    assert.ok(c.audit.some(e => e.type === 'groups.rejected' && e.code === 'NotCommitter' && e.peer === b.id))

    // an old commit of A's (the one that added C, epoch 1) re-sent by A
    const aRec = (a.svc as unknown as { groups: Map<string, { log: Array<{ epoch: number, commit: Uint8Array }> }> }).groups.get(groupId)
    const old = aRec?.log.find(e => e.epoch === 1)
    assert.ok(old)
    const replayed = await forge(a, c, 'mls.commit', { groupId: gid, epoch: 1, term: 1, mls: old.commit })
    assert.equal(replayed.code, 'WrongEpoch')
    // and the very same frame bytes a second time: the verification core's replay cache
    const again = await forge(a, c, 'mls.commit', { groupId: gid }, replayed.bytes)
    assert.equal(again.code, 'Replay')
    assert.ok(c.audit.some(e => e.code === 'Replay' && e.peer === a.id))

    // a commit for an epoch ahead of the member's
    const ahead = await forge(a, c, 'mls.commit', { groupId: gid, epoch: epoch + 5, term: 1, mls: old.commit })
    assert.equal(ahead.code, 'WrongEpoch')
    assert.ok(c.audit.filter(e => e.code === 'WrongEpoch').length >= 2)
    assert.equal(epochOf(c, groupId), epoch, 'nothing was applied')
  })

  it('a Welcome sent before its commit is settled is rejected and audited', async () => {
    const e = await startGroupNode()
    try {
      await mesh([a, b, c, d, e])
      const rec = (a.svc as unknown as { groups: Map<string, { state: ClientState }> }).groups.get(groupId)
      assert.ok(rec)
      const kp = await a.svc.fetchKeyPackage(rec as never, e.id, AbortSignal.timeout(5000))
      // A makes the commit but never sends it: the Welcome goes out first
      const out = await createCommit({ state: rec.state, cipherSuite: a.svc.cs }, { extraProposals: [{ proposalType: 'add', add: { keyPackage: kp } }], ratchetTreeExtension: true })
      assert.ok(out.welcome)
      const epoch = Number(out.newState.groupContext.epoch)
      const reply = await forge(a, e, 'mls.welcome', { groupId: groupIdBytes(groupId), epoch, term: 1, mls: encodeMlsMessage({ version: 'mls10', wireformat: 'mls_welcome', welcome: out.welcome }), meta: { name: 'x', hash: '' } })
      assert.equal(reply.code, 'WelcomeBeforeCommit')
      assert.ok(e.audit.some(x => x.code === 'WelcomeBeforeCommit' && x.peer === a.id))
      assert.equal(e.svc.list().length, 0)
    } finally {
      await e.stop()
      await removeHome(e.home)
    }
  })

  it('key package requests are rate-limited per peer, refusals audited once per streak', async () => {
    // 16 at once against a burst of 8 (2/s): a token or two may refill meanwhile on a loaded machine
    const codes = await Promise.all(Array.from({ length: 16 }, async () => (await forge(b, d, 'mls.keypackage', { groupId: new Uint8Array([1]) })).code))
    const ok = codes.filter(c => c === 'ok').length
    assert.ok(ok >= 6 && ok <= 11, codes.join()) // B already asked D once (when it added D)
    assert.equal(codes.filter(c => c !== 'ok' && c !== 'RateLimited').length, 0, codes.join())
    const audited = d.audit.filter(e => e.code === 'RateLimited' && e.peer === b.id).length
    assert.ok(audited >= 1 && audited <= 16 - ok && audited <= 4, `${audited} audit records`)
  })

  it('a removed member cannot read later messages and is sent none', async () => {
    const cRec = (c.svc as unknown as { groups: Map<string, { state: ClientState }> }).groups.get(groupId)
    assert.ok(cRec)
    const cOldState = cRec.state
    await a.svc.remove({ groupId, peer: c.id })
    await waitFor('C forgot the group', () => c.svc.list().length === 0)
    assert.ok(!a.svc.list()[0]?.members.includes(c.id))
    await waitFor('B and D at the new epoch', () => epochOf(b, groupId) === epochOf(a, groupId) && epochOf(d, groupId) === epochOf(a, groupId))
    const appsBefore = c.svc.framesIn['mls.app'] ?? 0
    const heardBefore = c.received.length
    await a.svc.send({ groupId, body: await guarded('after removal'), contentType: 'text/plain' })
    await waitFor('B heard', () => b.received.some(m => m.text === 'after removal'))
    assert.equal(c.svc.framesIn['mls.app'] ?? 0, appsBefore, 'no application frame was sent to C')
    assert.equal(c.received.length, heardBefore)
    // the ciphertext C would have got, had it been sent: C's last state cannot open it
    const aRec = (a.svc as unknown as { groups: Map<string, { state: ClientState }> }).groups.get(groupId)
    assert.ok(aRec)
    const msg = await createApplicationMessage(aRec.state, encoder.encode('secret'), a.svc.cs)
    const wire = decodeMlsMessage(encodeMlsMessage({ version: 'mls10', wireformat: 'mls_private_message', privateMessage: msg.privateMessage }), 0)?.[0] as MlsPrivateMessage
    await assert.rejects(processPrivateMessage(cOldState, wire.privateMessage, emptyPskIndex, a.svc.cs))
  })

  it('every member restarts and the group survives; state files are encrypted', async () => {
    const nodes = [a, b, d]
    const before = nodes.map(n => n.svc.list()[0])
    for (const n of nodes) {
      const dir = join(n.home, 'groups')
      for (const f of await readdir(dir)) {
        const bytes = await readFile(join(dir, f))
        const text = bytes.toString('latin1')
        assert.ok(!text.includes('secret-team-name'), 'group name in clear')
        for (const p of [a.id, b.id, d.id]) assert.ok(!text.includes(p), 'peer ID in clear')
        assert.ok(!bytes.includes(Buffer.from('secret-team-name', 'utf16le')))
      }
    }
    const restarted: GroupNode[] = []
    for (const n of nodes) {
      await n.stop()
      restarted.push(await startGroupNode({ key: n.key, home: n.home }))
    }
    ;[a, b, d] = restarted as [GroupNode, GroupNode, GroupNode]
    await mesh(restarted)
    assert.deepEqual(restarted.map(n => n.svc.list()[0]), before)
    await b.svc.send({ groupId, body: await guarded('after restart'), contentType: 'text/plain' })
    await waitFor('A and D heard after restart', () => a.received.some(m => m.text === 'after restart') && d.received.some(m => m.text === 'after restart'))
    await a.svc.remove({ groupId, peer: d.id })
    await waitFor('D removed after restart', () => d.svc.list().length === 0 && epochOf(b, groupId) === epochOf(a, groupId))
    void decoder
  })
})
