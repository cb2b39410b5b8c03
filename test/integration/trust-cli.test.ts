import assert from 'node:assert/strict'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { RunningNode } from '../helpers/cli.ts'

interface Id { peerId: string, addresses: string[] }

/** Three real nodes driven through the CLI and plain IPC sockets */
describe('trust through the CLI: private by default, handshake, invites, revocation, audit', () => {
  const homes: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' }
  const nodes: Partial<Record<'a' | 'b' | 'c', RunningNode>> = {}
  const ids: Partial<Record<'a' | 'b' | 'c', Id>> = {}
  const id = (n: 'a' | 'b' | 'c'): Id => ids[n] as Id

  before(async () => {
    for (const n of ['a', 'b', 'c'] as const) {
      homes[n] = await makeHome(`an-trust-${n}-`)
      nodes[n] = await startNode(homes[n])
      ids[n] = await runJson<Id>(['id', '--home', homes[n]])
    }
    // B knows where A and C are; C knows A
    await runJson(['connect', id('a').addresses[0] ?? '', '--home', homes.b])
    await runJson(['connect', id('c').addresses[0] ?? '', '--home', homes.b])
    await runJson(['connect', id('a').addresses[0] ?? '', '--home', homes.c])
  })

  after(async () => {
    await Promise.all(Object.values(nodes).map(async n => n?.stop()))
    await Promise.all(Object.values(homes).map(removeHome))
  })

  async function serveEcho (home: string): Promise<RawSocket> {
    const socket = await RawSocket.connect(join(home, 'agentnet.sock'))
    assert.equal((await socket.call('service.register', { service: 'echo' })).result.service, 'echo')
    void (async () => {
      while (!socket.closed) {
        const note = await socket.next(m => m.method === 'msg.received', 600_000).catch(() => undefined)
        if (note == null) return
        socket.send({ jsonrpc: '2.0', id: `r-${note.params.id}`, method: 'msg.reply', params: { id: note.params.id, body: note.params.body } })
      }
    })()
    return socket
  }

  it('an untrusted peer is refused with UntrustedPeer; request → pending (notified) → approve → messages flow', async () => {
    const echoA = await serveEcho(homes.a)
    const refused = await runCli(['send', id('a').peerId, 'echo', 'hello?', '--home', homes.b, '--json'])
    assert.equal(refused.code, 1)
    assert.equal(JSON.parse(refused.stdout).error.code, 'UntrustedPeer')

    const watcher = await RawSocket.connect(join(homes.a, 'agentnet.sock'))
    assert.deepEqual((await watcher.call('trust.subscribe', {})).result.pending, [])
    const sent = await runJson<{ state: string }>(['trust', 'request', id('a').peerId, '--reason', 'B is the billing agent', '--home', homes.b])
    assert.equal(sent.state, 'pending-outbound')
    const note = await watcher.next(m => m.method === 'trust.pending')
    assert.equal(note.params.peerId, id('b').peerId)
    assert.equal(note.params.reason, 'B is the billing agent')
    watcher.close()
    const pending = await runJson<Array<{ peerId: string, reason: string }>>(['trust', 'pending', '--home', homes.a])
    assert.deepEqual(pending.map(p => [p.peerId, p.reason]), [[id('b').peerId, 'B is the billing agent']])

    // still refused while pending
    assert.equal((await runCli(['send', id('a').peerId, 'echo', 'x', '--home', homes.b])).code, 1)
    assert.equal((await runJson<{ state: string }>(['trust', 'approve', id('b').peerId, '--home', homes.a])).state, 'trusted')
    const reply = await runJson<{ body: string }>(['send', id('a').peerId, 'echo', 'now trusted', '--home', homes.b])
    assert.equal(reply.body, 'now trusted')
    const listB = await runJson<Array<{ peerId: string, state: string }>>(['trust', 'list', '--home', homes.b])
    assert.equal(listB.find(e => e.peerId === id('a').peerId)?.state, 'trusted')
    echoA.close()
  })

  it('reject leaves the peer untrusted', async () => {
    await runJson(['trust', 'request', id('b').peerId, '--reason', 'C wants in', '--home', homes.c])
    const rejected = await runJson<{ state: string }>(['trust', 'reject', id('c').peerId, '--reason', 'no', '--home', homes.b])
    assert.equal(rejected.state, 'rejected')
    const listC = await runJson<Array<{ peerId: string, state: string }>>(['trust', 'list', '--home', homes.c])
    assert.equal(listC.find(e => e.peerId === id('b').peerId)?.state, 'rejected-by-peer')
  })

  it('an invite works once; a second use and an altered code are refused (forged codes: trust-invite.test.ts)', async () => {
    const { code } = await runJson<{ code: string }>(['invite', 'create', '--ttl', '10m', '--uses', '1', '--home', homes.a])
    const accepted = await runJson<{ peerId: string, state: string }>(['invite', 'accept', code, '--home', homes.c])
    assert.deepEqual([accepted.peerId, accepted.state], [id('a').peerId, 'trusted'])
    // a fourth node, unknown to everyone, tries the used-up code
    const homeD = await makeHome('an-trust-d-')
    const nodeD = await startNode(homeD)
    try {
      const again = await runCli(['invite', 'accept', code, '--home', homeD, '--json'])
      assert.equal(again.code, 1)
      assert.equal(JSON.parse(again.stdout).error.code, 'InviteUsedUp')
    } finally {
      await nodeD.stop()
      await removeHome(homeD)
    }
    const { code: second } = await runJson<{ code: string }>(['invite', 'create', '--home', homes.a])
    const i = Math.floor(second.length / 2)
    const altered = second.slice(0, i) + (second[i] === 'A' ? 'B' : 'A') + second.slice(i + 1)
    const alteredResult = await runCli(['invite', 'accept', altered, '--home', homes.b, '--json'])
    assert.equal(JSON.parse(alteredResult.stdout).error.code, 'InviteInvalid')
    const usage = await runCli(['invite', 'create', '--ttl', 'soon', '--home', homes.a])
    assert.equal(usage.code, 2)
  })

  it('revoke during a stream of messages closes the connection; the next message is refused on both sides', async () => {
    const echoA = await serveEcho(homes.a)
    const sender = await RawSocket.connect(join(homes.b, 'agentnet.sock'))
    let ok = 0
    let stop = false
    const stream = (async () => {
      const codes: string[] = []
      while (!stop) {
        const reply = await sender.call('msg.send', { to: id('a').peerId, service: 'echo', body: `m${ok}`, timeoutMs: 3000 })
        if (reply.result != null) ok++
        else codes.push(reply.error.data.code)
        if (codes.length > 0) return codes
      }
      return codes
    })()
    while (ok < 5) await new Promise(resolve => setTimeout(resolve, 20))
    const revoked = await runJson<{ state: string, closedConnections: number }>(['trust', 'revoke', id('b').peerId, '--reason', 'compromised', '--home', homes.a])
    assert.equal(revoked.state, 'revoked')
    const codes = await stream
    stop = true
    assert.ok(codes.length > 0 && ['RevokedByPeer', 'UntrustedPeer'].includes(codes[0] ?? ''), `B was refused: ${codes.join(',')}`)
    // B's node recorded the revocation: its agents now get RevokedByPeer at once
    const next = await sender.call('msg.send', { to: id('a').peerId, service: 'echo', body: 'again?' })
    assert.equal(next.error.data.code, 'RevokedByPeer')
    const listB = await runJson<Array<{ peerId: string, state: string }>>(['trust', 'list', '--home', homes.b])
    assert.equal(listB.find(e => e.peerId === id('a').peerId)?.state, 'revoked-by-peer')
    // A closed B's connections at once (B may dial again, but A's gate refuses its messages)
    assert.ok(revoked.closedConnections >= 1, 'connections closed')
    sender.close()
    echoA.close()
  })

  it('trust, pending requests and revocations survive restarts of both nodes', async () => {
    await runJson(['trust', 'request', id('c').peerId, '--reason', 'A asks C', '--home', homes.a]).catch(() => {})
    const before = { a: await runJson<unknown[]>(['trust', 'list', '--home', homes.a]), c: await runJson<unknown[]>(['trust', 'list', '--home', homes.c]) }
    for (const n of ['a', 'c'] as const) {
      await nodes[n]?.stop()
      nodes[n] = await startNode(homes[n])
    }
    assert.deepEqual(await runJson(['trust', 'list', '--home', homes.a]), before.a)
    assert.deepEqual(await runJson(['trust', 'list', '--home', homes.c]), before.c)
  })

  it('every decision is in the audit log, which verifies; tampering is detected', async () => {
    const records = await runJson<Array<{ type: string }>>(['audit', 'tail', '-n', '200', '--home', homes.a])
    const types = new Set(records.map(r => r.type))
    for (const t of ['trust.request-received', 'trust.approved', 'trust.invite-created', 'trust.invite-used', 'trust.revoked']) {
      assert.ok(types.has(t), `audit has ${t}: ${[...types].join(', ')}`)
    }
    assert.equal((await runJson<{ ok: boolean }>(['audit', 'verify', '--home', homes.a])).ok, true)
    await nodes.a?.stop()
    nodes.a = undefined
    const file = join(homes.a, 'audit.log')
    const original = await readFile(file, 'utf8')
    const lines = original.trimEnd().split('\n')
    assert.ok(lines.length >= 4)
    const variants: Array<[string, string]> = [
      ['one byte changed', original.replace('trust.approved', 'trust.approveD')],
      ['a record deleted', [...lines.slice(0, 1), ...lines.slice(2)].join('\n') + '\n'],
      ['two records swapped', [lines[1], lines[0], ...lines.slice(2)].join('\n') + '\n']
    ]
    for (const [what, text] of variants) {
      await writeFile(file, text)
      const result = await runCli(['audit', 'verify', '--home', homes.a, '--json'])
      assert.equal(result.code, 1, what)
      const parsed = JSON.parse(result.stdout)
      assert.equal(parsed.ok, false, what)
      assert.ok(parsed.firstBad.line >= 1, what)
    }
    await writeFile(file, original)
    assert.equal((await runJson<{ ok: boolean }>(['audit', 'verify', '--home', homes.a])).ok, true)
  })
})
