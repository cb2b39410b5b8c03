/**
 * Two hosts behind two separate NAT routers and one bootstrap/relay node on a
 * "public" segment, in real network namespaces (see ./lab.ts for the
 * topology). The hosts know only the bootstrap node's address and each
 * other's peer ID. Needs root, `ip` and `nft`; skips (and says why) without.
 */

import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { runJson } from '../helpers/cli.ts'
import {
  BOOTSTRAP_IP, SIDES, cleanupStaleLabs, createLab, labUnavailableReason, serveEcho, status, waitDiscoverable,
  waitForReservation
} from './lab.ts'
import type { EchoService, LabNode, NatLab } from './lab.ts'

const unavailable = labUnavailableReason()
if (unavailable != null) {
  console.log(`# NAT lab test skipped: ${unavailable}`)
}

/** Connections a node has to one peer, as `node.status` reports them */
async function connectionsTo (node: LabNode, peerId: string): Promise<Array<{ direct: boolean, transport: string, address: string }>> {
  return (await status(node)).connections.filter(c => c.peerId === peerId)
}

async function send (from: LabNode, to: LabNode, body: unknown, timeoutMs?: number): Promise<any> {
  const reply = await from.call('msg.send', { to: to.peerId, service: 'echo', body, ...(timeoutMs != null ? { timeoutMs } : {}) }, 60_000)
  assert.equal(reply.error, undefined, `${from.name} → ${to.name}: ${JSON.stringify(reply.error)}\n--- ${from.name}:\n${from.output().slice(-3000)}`)
  assert.equal(reply.result.from, to.peerId)
  assert.deepEqual(reply.result.body, body)
  return reply.result
}

describe('NAT lab: two hosts behind separate NATs, one bootstrap/relay node', { skip: unavailable ?? false }, () => {
  let lab: NatLab | undefined
  const echoes: EchoService[] = []

  before(async () => {
    const stale = await cleanupStaleLabs()
    if (stale.length > 0) console.log(`# removed ${stale.length} namespaces left by earlier runs`)
    lab = await createLab()
  })

  after(async () => {
    for (const e of echoes) e.stop()
    await lab?.teardown()
  })

  it('the lab has no way out to the machine\'s network', async () => {
    assert.ok(lab != null)
    const labNets = /^(198\.18\.0\.0\/24|10\.77\.1\.0\/24|172\.20\.2\.0\/24|default via (10\.77\.1\.1|172\.20\.2\.1)|(unreachable|blackhole) (10\.0\.0\.0\/8|172\.16\.0\.0\/12|192\.168\.0\.0\/16))\b/
    for (const ns of Object.values(lab.ns)) {
      const routes = (await lab.exec(ns, 'ip', '-4', 'route', 'show')).trim().split('\n').filter(l => l !== '')
      for (const route of routes) assert.match(route, labNets, `${ns} has a route out of the lab: ${route}`)
      const links = (await lab.exec(ns, 'ip', '-o', 'link', 'show')).trim().split('\n').map(l => l.split(':')[1]?.trim().split('@')[0])
      assert.ok(links.every(l => l != null && /^(lo|eth0|wan0|lan0|br0|p-\w+)$/.test(l)), `${ns} links: ${links.join(' ')}`)
    }
    // only the hosts have a default route, and it leads to their own NAT router
    assert.match(await lab.exec(lab.ns.ha, 'ip', 'route', 'show', 'default'), /via 10\.77\.1\.1 dev eth0/)
    assert.equal((await lab.exec(lab.ns.ra, 'ip', 'route', 'show', 'default')).trim(), '')
  })

  it('by peer ID alone, the hosts get a direct WebRTC connection through both NATs and exchange signed messages', async (t) => {
    assert.ok(lab != null)
    const [a, b] = await Promise.all([lab.startHost('a'), lab.startHost('b')])
    // stopped whatever happens: hosts left running would fail the next test too
    t.after(async () => { await Promise.all([a.stop(), b.stop()]) })
    await Promise.all([waitForReservation(a), waitForReservation(b)])
    await Promise.all([waitDiscoverable(lab, a), waitDiscoverable(lab, b)])

    // the bootstrap node sees each host from its router's public address: the NATs translate
    const seen = await connectionsTo(lab.bootstrap, a.peerId)
    assert.ok(seen.some(c => c.address.startsWith(`/ip4/${SIDES.a.routerWan}/`)), `bootstrap sees A at ${seen.map(c => c.address).join(' ')}`)
    assert.ok((await connectionsTo(lab.bootstrap, b.peerId)).some(c => c.address.startsWith(`/ip4/${SIDES.b.routerWan}/`)))
    const statusA = await status(a)
    assert.equal(statusA.reachability, 'private')
    assert.ok(statusA.relayReservations.length === 1)

    const echoA = await serveEcho(a)
    const echoB = await serveEcho(b)
    echoes.push(echoA, echoB)

    // B knows A only by peer ID: DHT lookup on the bootstrap node, WebRTC signalled over the relay
    await send(b, a, { hello: 'from behind NAT B' })
    assert.equal(echoA.received.at(-1).from, b.peerId, 'A authenticated the sender of the signed envelope')
    assert.equal(echoA.received.at(-1).kind, 'request')

    // `agentnet status --json`: the connection between the hosts is direct WebRTC, on both sides
    const cliStatus = await runJson<{ connections: Array<{ peerId: string, direct: boolean, transport: string, address: string }> }>(['status', '--home', b.home])
    const bToA = cliStatus.connections.filter(c => c.peerId === a.peerId)
    assert.ok(bToA.some(c => c.direct && c.transport === 'webrtc'), `B's connections to A: ${JSON.stringify(bToA)}`)
    const aToB = await connectionsTo(a, b.peerId)
    assert.ok(aToB.some(c => c.direct && c.transport === 'webrtc'), `A's connections to B: ${JSON.stringify(aToB)}`)

    await send(a, b, 'and back from behind NAT A')
    assert.equal(echoB.received.at(-1).from, a.peerId)

    // cut both LANs off from the bootstrap/relay node: messages keep flowing, so they never used the relay
    await lab.cut('a', BOOTSTRAP_IP)
    await lab.cut('b', BOOTSTRAP_IP)
    try {
      for (let i = 0; i < 3; i++) {
        await send(b, a, `direct ${i}`)
        await send(a, b, `direct back ${i}`)
      }
    } finally {
      await lab.heal()
    }
    echoA.stop()
    echoB.stop()
  })

  it('with WebRTC disabled on one side, the hosts still talk, over the relay', async (t) => {
    assert.ok(lab != null)
    const [a, b] = await Promise.all([lab.startHost('a'), lab.startHost('b', { config: { nat: { webrtc: false } } })])
    t.after(async () => { await Promise.all([a.stop(), b.stop()]) })
    await Promise.all([waitForReservation(a), waitForReservation(b, false)])
    await Promise.all([waitDiscoverable(lab, a), waitDiscoverable(lab, b, false)])
    const echoA = await serveEcho(a)
    const echoB = await serveEcho(b)
    echoes.push(echoA, echoB)

    // generous timeout: before the relay address, the dialler spends libp2p's
    // 6 s per-address timeout on the peer's private webrtc-direct address
    await send(b, a, 'relayed hello', 30_000)
    assert.equal(echoA.received.at(-1).from, b.peerId)
    await send(a, b, 'relayed reply', 30_000)
    assert.equal(echoB.received.at(-1).from, a.peerId)
    // a larger body, well inside the bootstrap profile's 1 MiB per relayed connection
    await send(b, a, 'x'.repeat(64 * 1024), 30_000)

    for (const [from, to] of [[b, a], [a, b]] as const) {
      const conns = await connectionsTo(from, to.peerId)
      assert.ok(conns.length > 0, `${from.name} has no connection to ${to.name}`)
      assert.ok(conns.every(c => !c.direct && c.transport === 'relay' && c.address.includes('/p2p-circuit')), `${from.name} → ${to.name}: ${JSON.stringify(conns)}`)
    }
    echoA.stop()
    echoB.stop()
  })
})
