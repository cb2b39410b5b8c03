/**
 * Security state on a full disk, for real: the node's home is on a small
 * tmpfs (needs root for `mount`), filled up with a ballast file.
 * - `trust.revoke` (and an invite) that cannot be written fail with
 *   `StateWriteFailed`; nothing changes in memory or on disk; once there is
 *   room again the revoke works and survives a restart.
 * - audit records the disk refused are counted and an `audit.records-lost`
 *   record says so in the log once it takes writes again.
 * - a session-token revocation (`tokens.json`) that cannot be written fails
 *   with `StateWriteFailed` and is not applied (the peer's token still opens
 *   the protected service, the file is untouched); with room again it is
 *   applied and survives a restart.
 * - temporary files of interrupted atomic writes are removed at start.
 * - a key rotation that cannot write its new key and record fails with
 *   `StateWriteFailed` and leaves the identity as it was; with room again it
 *   completes.
 */

import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { loadConfig } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import { errorCodeOf } from '../../src/errors/index.ts'
import { startDaemon } from '../../src/daemon/index.ts'
import { readRotation } from '../../src/identity/succession.ts'
import { rotateHome } from '../../src/rotation/index.ts'
import { privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { AgentNode } from '../../src/agent/index.ts'
import type { PrivateKey } from '@libp2p/interface'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Fill the filesystem holding `dir` until a write fails with ENOSPC */
async function fill (dir: string): Promise<string> {
  const ballast = join(dir, 'ballast')
  const chunk = Buffer.alloc(64 * 1024, 1)
  const { open } = await import('node:fs/promises')
  const handle = await open(ballast, 'w')
  try {
    for (;;) {
      try {
        await handle.write(chunk)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break
        throw err
      }
    }
    // the last bytes too, one at a time
    for (;;) {
      try {
        await handle.write(Buffer.alloc(512, 1))
      } catch {
        break
      }
    }
  } finally {
    await handle.close().catch(() => {})
  }
  return ballast
}

async function nodeOn (home: string, key: PrivateKey): Promise<AgentNode> {
  const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'], tokens: { protectedServices: ['vault'] } } })
  const node = await createAgentNode({ config, privateKey: key, home })
  await node.start()
  return node
}

describe('security state on a full disk (home on a small tmpfs)', () => {
  let mountPoint: string
  let home: string
  let key: PrivateKey
  let a: AgentNode
  let b: AgentNode
  let bHome: string

  before(async () => {
    mountPoint = await mkdtemp(join(tmpdir(), 'agentnet-enospc-'))
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', mountPoint])
    } catch (err) {
      throw new Error(`this test needs to mount a small tmpfs (root): ${(err as Error).message}`)
    }
    home = join(mountPoint, 'home')
    await mkdir(home, { mode: 0o700 })
    key = await generateKeyPair('Ed25519')
    bHome = await mkdtemp(join(tmpdir(), 'agentnet-enospc-b-'))
    a = await nodeOn(home, key)
    b = await nodeOn(bHome, await generateKeyPair('Ed25519'))
    await b.libp2p.dial(a.libp2p.getMultiaddrs()[0]!)
    await b.requestTrust(a.peerId, 'pair')
    await a.trust.approve(b.peerId.toString())
    assert.equal(a.trust.isTrusted(b.peerId.toString()), true)
  })

  after(async () => {
    await a?.stop().catch(() => {})
    await b?.stop().catch(() => {})
    await rm(bHome, { recursive: true, force: true })
    try { execFileSync('umount', ['-l', mountPoint]) } catch {}
    await rm(mountPoint, { recursive: true, force: true })
  })

  it('revoke and invite creation fail with StateWriteFailed and change nothing; with room again the revoke holds across a restart', async () => {
    const trustFile = join(home, 'trust.json')
    const before = await readFile(trustFile, 'utf8')
    const ballast = await fill(mountPoint)

    await assert.rejects(a.revokeTrust(b.peerId, undefined), (err: unknown) => errorCodeOf(err) === 'StateWriteFailed' && /ENOSPC/.test((err as Error).message))
    assert.equal(a.trust.isTrusted(b.peerId.toString()), true, 'not applied in memory: the file still says trusted')
    assert.equal(await readFile(trustFile, 'utf8'), before, 'trust.json untouched')
    const invites = a.trust.invites().length
    await assert.rejects(a.trust.createInvite(), (err: unknown) => errorCodeOf(err) === 'StateWriteFailed')
    assert.equal(a.trust.invites().length, invites, 'no invite handed out that is not on disk')
    assert.equal(await readFile(trustFile, 'utf8'), before)
    assert.deepEqual((await readdir(home)).filter(f => f.endsWith('.tmp')), [], 'no temporary file left behind')

    // audit records the disk refuses are counted, not silently gone
    for (let i = 0; i < 5; i++) a.audit.record('test.while-full', { i })
    await sleep(100)

    await unlink(ballast)
    const revoked = await a.revokeTrust(b.peerId, undefined)
    assert.equal(revoked.state, 'revoked')
    // the audit log says how many records it is missing
    const deadline = Date.now() + 5000
    let log = ''
    while (!log.includes('audit.records-lost') && Date.now() < deadline) {
      a.audit.record('test.after', {})
      await sleep(50)
      log = await readFile(join(home, 'audit.log'), 'utf8')
    }
    const lost = log.split('\n').filter(l => l.includes('"audit.records-lost"')).map(l => JSON.parse(l) as { data: { total: number, counts: Record<string, number> } })
    assert.ok(lost.length >= 1, 'an audit.records-lost record')
    assert.ok((lost[0]?.data.counts['test.while-full'] ?? 0) >= 1, `the lost records are counted by type: ${JSON.stringify(lost[0]?.data)}`)

    await a.stop()
    a = await nodeOn(home, key)
    assert.equal(a.trust.isTrusted(b.peerId.toString()), false, 'the revocation survived the restart')
  })

  it('temporary files of interrupted atomic writes are removed at start (and nothing else)', async () => {
    await a.stop()
    const tmpHome = await mkdtemp(join(tmpdir(), 'agentnet-tmpclean-'))
    try {
      const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
      const first = await startDaemon({ home: tmpHome, config })
      await first.stop()
      await mkdir(join(tmpHome, 'groups'), { recursive: true })
      const leftovers = [join(tmpHome, '.trust.json.0123456789ab.tmp'), join(tmpHome, 'groups', '.g1.json.abcdef012345.tmp')]
      for (const f of leftovers) await writeFile(f, 'partial')
      await writeFile(join(tmpHome, 'notes.tmp'), 'the operator\'s own file')
      const second = await startDaemon({ home: tmpHome, config })
      try {
        assert.deepEqual((await readdir(tmpHome)).filter(f => f.endsWith('.tmp')), ['notes.tmp'])
        assert.deepEqual((await readdir(join(tmpHome, 'groups'))).filter(f => f.endsWith('.tmp')), [])
      } finally {
        await second.stop()
      }
    } finally {
      await rm(tmpHome, { recursive: true, force: true })
    }
    a = await nodeOn(home, key)
  })

  it('a token revocation that cannot be written fails with StateWriteFailed and is not applied; with room again it holds across a restart', async () => {
    const tokensFile = join(home, 'tokens.json')
    // written once already: the trust revocation above revoked b's tokens too
    const before = await readFile(tokensFile, 'utf8')
    const { token } = a.tokens.issue(b.peerId, ['vault'], 60_000)
    const opens = (): void => { a.tokens.gate({ service: 'vault', token } as never, b.peerId) }
    opens()
    const ballast = await fill(mountPoint)

    await assert.rejects(a.tokens.revoke(b.peerId), (err: unknown) => errorCodeOf(err) === 'StateWriteFailed' && /ENOSPC/.test((err as Error).message))
    assert.doesNotThrow(opens, 'not applied in memory: the file does not say revoked')
    assert.equal(await readFile(tokensFile, 'utf8'), before, 'tokens.json untouched')
    assert.deepEqual((await readdir(home)).filter(f => f.endsWith('.tmp')), [], 'no temporary file left behind')

    await unlink(ballast)
    await a.tokens.revoke(b.peerId)
    assert.throws(opens, (err: unknown) => errorCodeOf(err) === 'TokenRevoked')
    assert.notEqual(await readFile(tokensFile, 'utf8'), before)
    await a.stop()
    a = await nodeOn(home, key)
    assert.throws(opens, (err: unknown) => errorCodeOf(err) === 'TokenRevoked', 'the revocation survived the restart')
  })

  it('a key rotation that cannot be written fails with StateWriteFailed and leaves the identity as it was; with room again it completes', async () => {
    const rotHome = join(mountPoint, 'rotating')
    await mkdir(rotHome, { mode: 0o700 })
    const oldKey = await generateKeyPair('Ed25519')
    const keyFile = join(rotHome, 'identity.key')
    await writeFile(keyFile, privateKeyToProtobuf(oldKey), { mode: 0o600 })
    const before = await readFile(keyFile)
    const ballast = await fill(mountPoint)

    await assert.rejects(rotateHome(rotHome), (err: unknown) => errorCodeOf(err) === 'StateWriteFailed' && /ENOSPC/.test((err as Error).message))
    assert.deepEqual(await readFile(keyFile), before, 'the key in use is untouched')
    assert.equal(await readRotation(rotHome), undefined, 'no rotation in progress')
    assert.deepEqual((await readdir(rotHome)).sort(), ['identity.key'], 'no next key, record or temporary file left behind')

    await unlink(ballast)
    const state = await rotateHome(rotHome)
    assert.equal(state.old, peerIdFromPrivateKey(oldKey).toString())
    assert.notEqual(state.new, state.old)
    assert.equal((await readRotation(rotHome))?.state, 'grace')
  })
})
