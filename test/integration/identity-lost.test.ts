/**
 * A home whose `identity.key` is gone but that holds trust or audit state of
 * the node that ran there: `agentnet start` refuses with `IdentityLost` (it
 * used to come up silently as a different peer) and changes nothing; with
 * `--new-identity` it creates a new key and starts. Real CLI processes.
 */

import assert from 'node:assert/strict'
import { readFile, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'

describe('missing identity.key in a home with state', () => {
  const homes: string[] = []
  after(async () => { await Promise.allSettled(homes.map(removeHome)) })

  it('start refuses with IdentityLost and touches nothing; --new-identity creates a new peer', async () => {
    const home = await makeHome('an-idlost-')
    homes.push(home)
    const first = await startNode(home)
    const { peerId: oldPeer } = await runJson<{ peerId: string }>(['id', '--home', home])
    assert.equal(await first.stop(), 0)
    // a node ran here: it left an audit log (and the trust store once trust changes)
    await stat(join(home, 'audit.log'))
    const auditBefore = await readFile(join(home, 'audit.log'))
    await unlink(join(home, 'identity.key'))

    const refused = await runCli(['start', '--home', home, '--listen', '/ip4/127.0.0.1/tcp/0', '--json'], { timeoutMs: 60_000 })
    assert.notEqual(refused.code, 0, 'the start is refused')
    const error = (JSON.parse(refused.stdout.trim().split('\n').at(-1) ?? '{}') as { error?: { code: string, message: string } }).error
    assert.equal(error?.code, 'IdentityLost')
    assert.match(error?.message ?? '', /identity\.key is missing/)
    assert.match(error?.message ?? '', /audit\.log/)
    assert.match(error?.message ?? '', /--new-identity/)
    await assert.rejects(stat(join(home, 'identity.key')), /ENOENT/, 'no key was created')
    assert.deepEqual(await readFile(join(home, 'audit.log')), auditBefore, 'the audit log is untouched')

    const second = await startNode(home, ['--new-identity'])
    const { peerId: newPeer } = await runJson<{ peerId: string }>(['id', '--home', home])
    assert.notEqual(newPeer, oldPeer, 'a new peer, by the operator\'s explicit choice')
    assert.equal(await second.stop(), 0)
    // and from now on the new key is simply loaded
    const third = await startNode(home)
    assert.equal((await runJson<{ peerId: string }>(['id', '--home', home])).peerId, newPeer)
    assert.equal(await third.stop(), 0)
  })

  it('a fresh home still gets its identity created on the first start', async () => {
    const home = await makeHome('an-idfresh-')
    homes.push(home)
    const node = await startNode(home)
    await stat(join(home, 'identity.key'))
    assert.equal(await node.stop(), 0)
  })
})
