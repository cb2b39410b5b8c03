/**
 * Groups benchmark (issue 12), all nodes in this one process on 127.0.0.1
 * (TCP, Noise, yamux; every member its own libp2p node, key and home):
 *
 * 1. Membership change in groups of 10, 50 and 100 members: the time of
 *    `committer.add({peer})` (key package fetch + commit creation + fan-out to
 *    every member + all acks + apply and persist) and of
 *    `committer.remove({peer})`, beside ts-mls's bare `createCommit` for the
 *    same group state and the same proposal in the same run. Also the time
 *    until every member has processed the commit (in-process members share
 *    this process's single JS thread, so that figure is a worst case).
 *    Target: ≤ 150 ms at 100 members (commit + fan-out + acks).
 * 2. Throughput to 10 members: sequential `send()` of 1 KiB bodies from one
 *    member (MLS encrypt once, persist the ratchet state, fan out to 9 peers,
 *    each decrypts) versus pairwise signed one-way messages of the project's
 *    messaging service (`/agentnet/msg/1.0.0`) to the same 9 peers.
 *
 * Run: `./node_modules/.bin/node test/bench/groups.bench.ts [--sizes 10,50,100] [--reps 3] [--messages 200] [--json]`
 * Progress on stderr, the table (or JSON) on stdout. The machine has 2 cores
 * shared with others: run nothing else meanwhile.
 */

import { Outbox } from '../../src/outbox/index.ts'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { createCommit } from 'ts-mls'
import { groups } from '../../src/groups/index.ts'
import { leafOf, newKeyPackage } from '../../src/groups/identity.ts'
import { MessagingService } from '../../src/messaging/index.ts'
import type { GroupsService } from '../../src/groups/index.ts'
import type { Libp2p, PrivateKey } from '@libp2p/interface'

const { values: args } = parseArgs({ options: { sizes: { type: 'string', default: '10,50,100' }, reps: { type: 'string', default: '3' }, messages: { type: 'string', default: '200' }, json: { type: 'boolean', default: false } } })
const sizes = args.sizes.split(',').map(Number)
const reps = Number(args.reps)
const messages = Number(args.messages)
const log = (s: string): void => { process.stderr.write(s + '\n') }
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN }
const round = (x: number): number => Math.round(x * 10) / 10

interface Member { key: PrivateKey, home: string, libp2p: Libp2p, svc: GroupsService, id: string }

async function member (): Promise<Member> {
  const key = await generateKeyPair('Ed25519')
  const home = await mkdtemp(join(tmpdir(), 'agentnet-gbench-'))
  const libp2p = await createLibp2p({
    privateKey: key,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 100_000, maxConnections: 1000 }
  })
  const svc = groups({ home, heartbeatIntervalMs: 600_000, selfUpdateIntervalMs: 0, ackTimeoutMs: 30_000, requestTimeoutMs: 60_000 })({ libp2p, privateKey: key })
  await svc.start()
  return { key, home, libp2p, svc, id: libp2p.peerId.toString() }
}

async function stopAll (ms: Member[]): Promise<void> {
  for (const m of ms) {
    await m.svc.stop()
    try { await m.libp2p.stop() } catch {}
    await rm(m.home, { recursive: true, force: true })
  }
}

async function until (cond: () => boolean, timeoutMs = 600_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

const epoch = (m: Member, id: string): number => m.svc.list().find(g => g.groupId === id)?.epoch ?? -1

interface SizeResult { members: number, addMs: number, addBareMs: number, addAllAppliedMs: number, removeMs: number, removeBareMs: number, removeAllAppliedMs: number }

async function membership (n: number): Promise<{ result: SizeResult, nodes: Member[], groupId: string }> {
  log(`group of ${n}: starting ${n + 1} nodes`)
  const nodes: Member[] = []
  for (let i = 0; i < n + 1; i++) nodes.push(await member())
  const [c, ...rest] = nodes as [Member, ...Member[]]
  const joiner = rest.pop() as Member
  for (const m of [...rest, joiner]) await c.libp2p.dial(m.libp2p.getMultiaddrs()[0]!)
  const { groupId } = await c.svc.create({ name: `bench-${n}` })
  const rec = c.svc.groups.get(groupId)!
  log(`group of ${n}: one commit adding ${rest.length} members`)
  const signal = AbortSignal.timeout(600_000)
  const kps = await Promise.all(rest.map(async m => c.svc.fetchKeyPackage(rec, m.id, signal)))
  await c.svc.withLock(groupId, async () => c.svc.commit(rec, kps.map(kp => ({ proposalType: 'add' as const, add: { keyPackage: kp } })), { exclude: [], welcome: rest.map(m => m.id) }, signal))
  await until(() => rest.every(m => epoch(m, groupId) === epoch(c, groupId)))
  log(`group of ${n}: formed at epoch ${epoch(c, groupId)}`)
  const r: Record<string, number[]> = { add: [], addBare: [], addAll: [], remove: [], removeBare: [], removeAll: [] }
  const outsiderKey = await generateKeyPair('Ed25519')
  const outsider = await newKeyPackage(outsiderKey, peerIdFromPrivateKey(outsiderKey), c.svc.cs)
  for (let i = 0; i < reps; i++) {
    // bare ts-mls: the same group state, the same kind of proposal, not applied
    let t = performance.now()
    await createCommit({ state: rec.state, cipherSuite: c.svc.cs }, { extraProposals: [{ proposalType: 'add', add: { keyPackage: outsider.publicPackage } }], ratchetTreeExtension: true })
    r.addBare!.push(performance.now() - t)
    t = performance.now()
    await c.svc.add({ groupId, peer: joiner.id })
    r.add!.push(performance.now() - t)
    const target = epoch(c, groupId)
    await until(() => rest.every(m => epoch(m, groupId) === target))
    await until(() => epoch(joiner, groupId) === target)
    r.addAll!.push(performance.now() - t)
    const leaf = leafOf(rec.state, joiner.id)!
    t = performance.now()
    await createCommit({ state: rec.state, cipherSuite: c.svc.cs }, { extraProposals: [{ proposalType: 'remove', remove: { removed: leaf } }] })
    r.removeBare!.push(performance.now() - t)
    t = performance.now()
    await c.svc.remove({ groupId, peer: joiner.id })
    r.remove!.push(performance.now() - t)
    const target2 = epoch(c, groupId)
    await until(() => rest.every(m => epoch(m, groupId) === target2) && joiner.svc.list().length === 0)
    r.removeAll!.push(performance.now() - t)
    log(`group of ${n}: rep ${i + 1}: add ${round(r.add!.at(-1)!)} ms (bare ${round(r.addBare!.at(-1)!)}), remove ${round(r.remove!.at(-1)!)} ms (bare ${round(r.removeBare!.at(-1)!)})`)
  }
  const result = {
    members: n,
    addMs: round(median(r.add!)), addBareMs: round(median(r.addBare!)), addAllAppliedMs: round(median(r.addAll!)),
    removeMs: round(median(r.remove!)), removeBareMs: round(median(r.removeBare!)), removeAllAppliedMs: round(median(r.removeAll!))
  }
  await stopAll([joiner])
  return { result, nodes: [c, ...rest], groupId }
}

async function throughput (nodes: Member[], groupId: string): Promise<{ groupMsgsPerS: number, groupDeliveriesPerS: number, pairwiseRoundsPerS: number, pairwiseDeliveriesPerS: number }> {
  const [sender, ...peers] = nodes as [Member, ...Member[]]
  for (const a of nodes) for (const b of nodes) if (a !== b) await a.libp2p.dial(b.libp2p.getMultiaddrs()[0]!).catch(() => {})
  let got = 0
  for (const p of peers) p.svc.on('received', () => { got++ })
  // both paths send bodies that passed a (stageless) outbox, as the node's own paths do
  const outbox = new Outbox([])
  const { body } = await outbox.admit({ kind: 'group', body: new Uint8Array(1024).fill(0x61), contentType: 'application/octet-stream' })
  const nothing = (await outbox.admit({ kind: 'reply', body: new Uint8Array(), contentType: 'application/octet-stream' })).body
  for (let i = 0; i < 20; i++) await sender.svc.send({ groupId, body, contentType: 'application/octet-stream' })
  await until(() => got === 20 * peers.length)
  got = 0
  let t = performance.now()
  for (let i = 0; i < messages; i++) await sender.svc.send({ groupId, body, contentType: 'application/octet-stream' })
  await until(() => got === messages * peers.length)
  const groupS = (performance.now() - t) / 1000
  // pairwise: the messaging service, one signed one-way message to each peer per round
  const services = nodes.map(n => new MessagingService({ libp2p: n.libp2p, privateKey: n.key }, { requestTimeoutMs: 30_000, retries: 0 }))
  let sunk = 0
  for (const s of services) { s.registerService('sink', () => { sunk++; return { body: nothing, contentType: 'application/octet-stream' } }); await s.start() }
  const [ms] = services as [MessagingService]
  const round1 = async (): Promise<void> => { await Promise.all(peers.map(async p => ms.send(p.libp2p.peerId, 'sink', body, 'application/octet-stream', { oneway: true }))) }
  for (let i = 0; i < 20; i++) await round1()
  t = performance.now()
  for (let i = 0; i < messages; i++) await round1()
  const pairS = (performance.now() - t) / 1000
  for (const s of services) await s.stop()
  void sunk
  return {
    groupMsgsPerS: round(messages / groupS), groupDeliveriesPerS: round(messages * peers.length / groupS),
    pairwiseRoundsPerS: round(messages / pairS), pairwiseDeliveriesPerS: round(messages * peers.length / pairS)
  }
}

const results: SizeResult[] = []
let tp: Awaited<ReturnType<typeof throughput>> | undefined
for (const n of sizes) {
  const { result, nodes, groupId } = await membership(n)
  results.push(result)
  if (n === 10) {
    log('throughput to 10 members')
    tp = await throughput(nodes, groupId)
  }
  await stopAll(nodes)
}
if (args.json) {
  process.stdout.write(JSON.stringify({ membership: results, throughput: tp }, null, 2) + '\n')
} else {
  const lines = ['| members | add: commit+fan-out+acks | bare createCommit (add) | all members applied | remove: commit+fan-out+acks | bare createCommit (remove) | all applied |', '|---|---|---|---|---|---|---|']
  for (const r of results) lines.push(`| ${r.members} | ${r.addMs} ms | ${r.addBareMs} ms | ${r.addAllAppliedMs} ms | ${r.removeMs} ms | ${r.removeBareMs} ms | ${r.removeAllAppliedMs} ms |`)
  if (tp !== undefined) {
    lines.push('', '| to 10 members (1 KiB) | messages/s | deliveries/s |', '|---|---|---|')
    lines.push(`| group send (MLS, one ciphertext fanned out) | ${tp.groupMsgsPerS} | ${tp.groupDeliveriesPerS} |`)
    lines.push(`| pairwise signed one-way messages | ${tp.pairwiseRoundsPerS} | ${tp.pairwiseDeliveriesPerS} |`)
  }
  process.stdout.write(lines.join('\n') + '\n')
}
