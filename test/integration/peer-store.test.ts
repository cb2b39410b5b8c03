import assert from 'node:assert/strict'
import { createSocket } from 'node:dgram'
import { readdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { keychain } from '@libp2p/keychain'
import { LevelDatastore } from 'datastore-level'
import { loadIdentity } from '../../src/identity/index.ts'
import { KEYCHAIN_DEK_MARKER, keychainInit, keychainPassFor, legacyKeychainInit, PEER_STORE_DIR, quietLogger, WEBRTC_CERTIFICATE_KEY_NAME } from '../../src/node/index.ts'

async function freeTcpPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise(resolve => server.close(resolve))
  return port
}

async function freeUdpPort (): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
  const port = socket.address().port
  await new Promise<void>(resolve => socket.close(() => { resolve() }))
  return port
}

const certhashOf = (addresses: string[]): string | undefined => addresses.map(a => /\/certhash\/([^/]+)/.exec(a)?.[1]).find(h => h != null)

describe('peer data on disk: peer store, DHT records, WebRTC-direct certificate', () => {
  const homes: string[] = []
  after(async () => { await Promise.all(homes.map(removeHome)) })

  it('two nodes that know each other, both restarted with no bootstrap node, reach each other by peer ID alone; the certhash is unchanged', async () => {
    const [homeA, homeB] = [await makeHome(), await makeHome()]
    homes.push(homeA, homeB)
    const listenA = [`/ip4/127.0.0.1/tcp/${await freeTcpPort()}`, `/ip4/127.0.0.1/udp/${await freeUdpPort()}/webrtc-direct`]
    const listenB = [`/ip4/127.0.0.1/tcp/${await freeTcpPort()}`, `/ip4/127.0.0.1/udp/${await freeUdpPort()}/webrtc-direct`]
    let a = await startNode(homeA, [], { listen: listenA })
    let b = await startNode(homeB, [], { listen: listenB })
    const idB = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeB])
    const certhash = certhashOf(idB.addresses)
    assert.ok(certhash != null, `B announces a WebRTC-direct address: ${idB.addresses.join(' ')}`)
    const tcpB = idB.addresses.find(x => x.includes('/tcp/')) ?? ''
    await runJson(['connect', tcpB, '--home', homeA])
    await a.stop()
    await b.stop()

    a = await startNode(homeA, [], { listen: listenA })
    b = await startNode(homeB, [], { listen: listenB })
    try {
      const again = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeB])
      assert.equal(again.peerId, idB.peerId)
      assert.equal(certhashOf(again.addresses), certhash, 'the WebRTC-direct certhash survives the restart')
      // A has no bootstrap node and no connection: only its stored peer data knows where B is
      assert.deepEqual(await runJson(['peers', '--home', homeA]), [])
      const pong = await runJson<{ peerId: string, rttMs: number }>(['ping', idB.peerId, '--home', homeA])
      assert.equal(pong.peerId, idB.peerId)
    } finally {
      await a.stop()
      await b.stop()
    }
  })

  it('a home whose keychain is under the old 10,000-round DEK keeps its WebRTC-direct key (and certhash) after the upgrade', async () => {
    const home = await makeHome()
    homes.push(home)
    assert.equal((await runCli(['init', '--home', home])).code, 0)
    const pass = keychainPassFor((await loadIdentity(home)).privateKey)
    // the keychain as a node from before the change left it
    const key = await generateKeyPair('ECDSA', 'P-256')
    let ds = new LevelDatastore(join(home, PEER_STORE_DIR))
    await ds.open()
    await keychain(legacyKeychainInit(pass))({ datastore: ds, logger: quietLogger }).importKey(WEBRTC_CERTIFICATE_KEY_NAME, key)
    await ds.close()

    const listen = [`/ip4/127.0.0.1/tcp/${await freeTcpPort()}`, `/ip4/127.0.0.1/udp/${await freeUdpPort()}/webrtc-direct`]
    let node = await startNode(home, [], { listen })
    const certhash = certhashOf((await runJson<{ addresses: string[] }>(['id', '--home', home])).addresses)
    assert.equal(await node.stop(), 0)
    assert.ok(certhash != null)

    ds = new LevelDatastore(join(home, PEER_STORE_DIR))
    await ds.open()
    try {
      assert.ok(await ds.has(KEYCHAIN_DEK_MARKER), 'the keychain is marked current')
      const kept = await keychain(keychainInit(pass))({ datastore: ds, logger: quietLogger }).exportKey(WEBRTC_CERTIFICATE_KEY_NAME)
      assert.ok(kept.equals(key), 'the certificate key is the one stored before, now under the current DEK')
    } finally {
      await ds.close()
    }

    node = await startNode(home, [], { listen })
    try {
      assert.equal(certhashOf((await runJson<{ addresses: string[] }>(['id', '--home', home])).addresses), certhash, 'the certhash is unchanged')
    } finally {
      assert.equal(await node.stop(), 0)
    }
  })

  it('a damaged peer store is rebuilt with a warning; the node starts', async () => {
    const home = await makeHome()
    homes.push(home)
    let node = await startNode(home)
    assert.equal(await node.stop(), 0)
    const dir = join(home, PEER_STORE_DIR)
    for (const file of await readdir(dir)) {
      if (file === 'CURRENT' || file.startsWith('MANIFEST')) await writeFile(join(dir, file), 'garbage, not a level database\n')
    }
    node = await startNode(home, ['--log-level', 'warn'])
    try {
      const info = await runCli(['id', '--home', home, '--json'])
      assert.equal(info.code, 0)
      assert.match(node.stderr(), /peer store cannot be opened; rebuilding it empty/)
    } finally {
      assert.equal(await node.stop(), 0)
    }
  })
})
