/**
 * Groups benchmark (issue 12), in the user's setting: the committer is this
 * process, the members are spread over `--procs` child processes (spawned
 * with `node`, `fixtures/group-members.ts`), every member its own libp2p
 * node (TCP, Noise, yamux as agentnet nodes run it (`src/node/muxer.ts`), on 127.0.0.1) with its own key and home. libp2p's
 * connection monitor (a ping to every connection every 10 s) is off in every
 * node: at 100 members it cost the committer ~100 ms of CPU whenever it fell
 * inside a measured change.
 *
 * 1. Membership change in groups of 10, 50 and 100 members (the committer
 *    included): the time of `committer.add({peer})` (key package fetch +
 *    commit creation + fan-out to every member + all acks + apply and
 *    persist) and of `committer.remove({peer})`, beside ts-mls's bare
 *    `createCommit` for the same group state and the same proposal in the
 *    same run (ratio = ours / bare; bare runs on the service's crypto provider,
 *    node:crypto, and again on ts-mls's default WebCrypto one). Also, per change, the time until every
 *    member (in its own process) has processed the commit, and two parts of
 *    the committer's cost on their own: one fan-out round of a small frame
 *    to every member (heartbeat, acks included) and one save of the group
 *    state (encrypted, atomic, fsync). Target: ≤ 150 ms at 100 members.
 *    CPU time is reported too (it depends less on the machine's load than
 *    wall time): the committer's per change, beside bare createCommit's, and
 *    the members' per member per change (processing the commit).
 * 2. Throughput to 10 members: sequential `send()` of 1 KiB bodies from the
 *    committer (MLS encrypt once, fan out to 10 members, each acknowledges)
 *    versus pairwise signed one-way messages of the messaging service
 *    (`/agentnet/msg/1.0.0`) to the same 10 peers.
 *
 * Run: `./node_modules/.bin/node test/bench/groups.bench.ts [--quick] [--sizes 10,50,100] [--procs 4] [--reps 3] [--messages 200] [--json] [--profile-dir DIR]`
 * `--quick` = sizes 10,25, 2 processes, 1 rep, 50 messages (under a minute).
 * `--profile-dir DIR` writes CPU profiles of the last rep's add and remove of the largest group there: the
 * committer's (`committer-add.cpuprofile`, `committer-remove.cpuprofile`) and each member process's
 * (`members-<i>-add.cpuprofile`, …), each covering only that change (node:inspector, 200 µs sampling);
 * with size 10, also of the group sends of the throughput test (`committer-send`, `members-<i>-send`).
 * Progress on stderr, the table (or JSON) on stdout, with the load average
 * seen at start and end: the figures mean little on a loaded machine.
 */

import { Outbox } from '../../src/outbox/index.ts'
import { fork } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { loadavg, tmpdir, cpus } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { agentnetMuxer } from '../../src/node/index.ts'
import { createCommit, defaultCryptoProvider, getCiphersuiteFromName, getCiphersuiteImpl } from 'ts-mls'
import { CIPHER_SUITE } from '../../src/groups/constants.ts'
import { groups } from '../../src/groups/index.ts'
import { leafOf, newKeyPackage } from '../../src/groups/identity.ts'
import { MessagingService } from '../../src/messaging/index.ts'
import { startProfile, stopProfile } from './fixtures/cpu-profile.ts'
import type { ChildProcess } from 'node:child_process'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    procs: { type: 'string' },
    reps: { type: 'string' },
    messages: { type: 'string' },
    json: { type: 'boolean', default: false },
    'profile-dir': { type: 'string' }
  }
})
const sizes = (args.sizes ?? (args.quick ? '10,25' : '10,50,100')).split(',').map(Number)
const procs = Number(args.procs ?? (args.quick ? 2 : 4))
const reps = Number(args.reps ?? (args.quick ? 1 : 3))
const messages = Number(args.messages ?? (args.quick ? 50 : 200))
const profileDir = args['profile-dir']
const FIXTURE = fileURLToPath(new URL('./fixtures/group-members.ts', import.meta.url))
const log = (s: string): void => { process.stderr.write(s + '\n') }
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] ?? NaN }
const round = (x: number): number => Math.round(x * 10) / 10
const load = (): string => loadavg().map(l => l.toFixed(2)).join(' ')

/** One member-hosting child process. */
class Host {
  readonly child: ChildProcess
  private next = 1
  private readonly waiting = new Map<number, { resolve: (r: Record<string, unknown>) => void, reject: (e: Error) => void }>()
  readonly ready: Promise<void>

  constructor () {
    this.child = fork(FIXTURE, [], { execPath: process.execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.ready = new Promise((resolve, reject) => {
      this.waiting.set(0, { resolve: () => { resolve() }, reject })
    })
    this.child.on('message', (m: { id: number, ok: boolean, error?: string }) => {
      const w = this.waiting.get(m.id)
      this.waiting.delete(m.id)
      if (m.ok) w?.resolve(m)
      else w?.reject(new Error(m.error))
    })
    this.child.on('exit', () => { for (const w of this.waiting.values()) w.reject(new Error('member host exited')) })
  }

  async call (cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    const id = this.next++
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.child.send({ id, ...cmd })
    })
  }
}

const home = await mkdtemp(join(tmpdir(), 'agentnet-gbench-c-'))
const key = await generateKeyPair('Ed25519')
const libp2p = await createLibp2p({
  privateKey: key,
  addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [agentnetMuxer()],
  connectionManager: { inboundConnectionThreshold: 100_000, maxConnections: 1000 },
  // libp2p pings every connection every 10 s (here: 100 streams refused at once, ~100 ms of CPU in the
  // committer): unrelated to the change measured, it landed in some reps and not others
  connectionMonitor: { enabled: false }
})
const svc = groups({ home, heartbeatIntervalMs: 600_000, committerTimeoutMs: 3_600_000, selfUpdateIntervalMs: 0, ackTimeoutMs: 30_000, requestTimeoutMs: 60_000, framesPerSecond: 100_000 })({ libp2p, privateKey: key })
await svc.start()
/** ts-mls's own default provider (WebCrypto), for the second bare baseline */
const webCrypto = await getCiphersuiteImpl(getCiphersuiteFromName(CIPHER_SUITE), defaultCryptoProvider)

interface SizeResult {
  members: number
  addMs: number, addBareMs: number, addBareDefaultMs: number, addAllAppliedMs: number
  removeMs: number, removeBareMs: number, removeBareDefaultMs: number, removeAllAppliedMs: number
  fanOutRoundMs: number, saveMs: number
  /** the add and remove calls split at the committer: commit start → all acks, then acks → state durable */
  addAcksMs: number, addDurableMs: number, removeAcksMs: number, removeDurableMs: number
  /** CPU time, ms: the committer per change, bare createCommit, the members' per member per change */
  addCpuMs: number, addBareCpuMs: number, addMemberCpuMs: number
  removeCpuMs: number, removeBareCpuMs: number, removeMemberCpuMs: number
}

const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

const loadStart = load()
log(`load average at start: ${loadStart} (${cpus().length} CPUs); ${procs} member processes`)

async function membership (n: number): Promise<{ result: SizeResult, hosts: Host[], where: Map<string, Host>, groupId: string, joiner: string }> {
  // n members including the committer, plus one joiner that is added and removed
  const others = n
  const hosts = Array.from({ length: Math.min(procs, others) }, () => new Host())
  await Promise.all(hosts.map(async h => h.ready))
  const where = new Map<string, Host>()
  const all: Array<{ id: string, addr: string }> = []
  await Promise.all(hosts.map(async (h, i) => {
    const count = Math.floor(others / hosts.length) + (i < others % hosts.length ? 1 : 0)
    const r = await h.call({ cmd: 'start', count }) as { members: Array<{ id: string, addr: string }> }
    for (const m of r.members) { where.set(m.id, h); all.push(m) }
  }))
  log(`group of ${n}: ${all.length} member nodes in ${hosts.length} processes`)
  for (const m of all) await libp2p.dial(multiaddr(m.addr))
  const joiner = all.pop()?.id ?? ''
  const { groupId } = await svc.create({ name: `bench-${n}` })
  const rec = svc.groups.get(groupId)!
  const signal = AbortSignal.timeout(600_000)
  const kps = await Promise.all(all.map(async m => svc.fetchKeyPackage(rec, m.id, signal)))
  await svc.withLock(groupId, async () => svc.commit(rec, kps.map(kp => ({ proposalType: 'add' as const, add: { keyPackage: kp } })), { exclude: [], welcome: all.map(m => m.id) }, signal))
  const waitAll = async (epoch: number): Promise<void> => { await Promise.all(hosts.map(async h => h.call({ cmd: 'waitEpoch', groupId, epoch, ids: all.map(m => m.id) }))) }
  await waitAll(Number(rec.state.groupContext.epoch))
  log(`group of ${n}: formed at epoch ${rec.state.groupContext.epoch}`)
  const r: Record<string, number[]> = { addBareDefault: [], removeBareDefault: [], add: [], addBare: [], addAll: [], remove: [], removeBare: [], removeAll: [], fan: [], save: [], addCpu: [], addBareCpu: [], addMemberCpu: [], removeCpu: [], removeBareCpu: [], removeMemberCpu: [], addAcks: [], addDurable: [], removeAcks: [], removeDurable: [] }
  const membersCpuMs = async (): Promise<number> => (await Promise.all(hosts.map(async h => h.call({ cmd: 'cpu' }) as Promise<{ us: number }>))).reduce((a, c) => a + c.us, 0) / 1000
  const outsiderKey = await generateKeyPair('Ed25519')
  const outsider = await newKeyPackage(outsiderKey, peerIdFromPrivateKey(outsiderKey), svc.cs)
  const joinerHost = where.get(joiner)!
  // profiles of the last rep of the largest group only, each covering one change (committer and member processes)
  const profiling = (i: number): boolean => profileDir !== undefined && i === reps - 1 && n === Math.max(...sizes)
  const profile = async (on: boolean): Promise<void> => {
    if (!on) return
    await startProfile()
    await Promise.all(hosts.map(async h => h.call({ cmd: 'profileStart' })))
  }
  // the committer's covers the change (until add/remove resolves), the members' until all have applied it
  const committerProfiled = async (on: boolean, what: string): Promise<void> => {
    if (on && profileDir !== undefined) await stopProfile(profileDir, `committer-${what}`)
  }
  const profiled = async (on: boolean, what: string): Promise<void> => {
    if (!on || profileDir === undefined) return
    await Promise.all(hosts.map(async (h, j) => h.call({ cmd: 'profileStop', dir: profileDir, name: `members-${j}-${what}` })))
  }
  for (let i = 0; i < reps; i++) {
    let t = performance.now()
    await svc.heartbeat(rec)
    r.fan!.push(performance.now() - t)
    t = performance.now()
    await svc.store.save(rec)
    r.save!.push(performance.now() - t)
    // bare ts-mls: the same group state, the same kind of proposal, not applied
    const addBare = { extraProposals: [{ proposalType: 'add' as const, add: { keyPackage: outsider.publicPackage } }], ratchetTreeExtension: true }
    t = performance.now()
    await createCommit({ state: rec.state, cipherSuite: webCrypto }, addBare)
    r.addBareDefault!.push(performance.now() - t)
    t = performance.now()
    let c = cpuMs()
    await createCommit({ state: rec.state, cipherSuite: svc.cs }, addBare)
    r.addBare!.push(performance.now() - t)
    r.addBareCpu!.push(cpuMs() - c)
    let m0 = await membersCpuMs()
    await profile(profiling(i))
    t = performance.now()
    c = cpuMs()
    await svc.add({ groupId, peer: joiner })
    r.add!.push(performance.now() - t)
    r.addAcks!.push(svc.lastCommit!.ackedMs)
    r.addDurable!.push(svc.lastCommit!.durableMs - svc.lastCommit!.ackedMs)
    r.addCpu!.push(cpuMs() - c)
    await committerProfiled(profiling(i), 'add')
    const target = Number(rec.state.groupContext.epoch)
    await Promise.all([waitAll(target), joinerHost.call({ cmd: 'waitEpoch', groupId, epoch: target, ids: [joiner] })])
    r.addAll!.push(performance.now() - t)
    // the members' CPU for the change (key package, commit processing, Welcome) per member
    r.addMemberCpu!.push((await membersCpuMs() - m0) / (n - 1))
    await profiled(profiling(i), 'add')
    const leaf = leafOf(rec.state, joiner)!
    t = performance.now()
    await createCommit({ state: rec.state, cipherSuite: webCrypto }, { extraProposals: [{ proposalType: 'remove', remove: { removed: leaf } }] })
    r.removeBareDefault!.push(performance.now() - t)
    t = performance.now()
    c = cpuMs()
    await createCommit({ state: rec.state, cipherSuite: svc.cs }, { extraProposals: [{ proposalType: 'remove', remove: { removed: leaf } }] })
    r.removeBare!.push(performance.now() - t)
    r.removeBareCpu!.push(cpuMs() - c)
    m0 = await membersCpuMs()
    await profile(profiling(i))
    t = performance.now()
    c = cpuMs()
    await svc.remove({ groupId, peer: joiner })
    r.remove!.push(performance.now() - t)
    r.removeAcks!.push(svc.lastCommit!.ackedMs)
    r.removeDurable!.push(svc.lastCommit!.durableMs - svc.lastCommit!.ackedMs)
    r.removeCpu!.push(cpuMs() - c)
    const removeSplit = svc.lastCommit!
    await committerProfiled(profiling(i), 'remove')
    const target2 = Number(rec.state.groupContext.epoch)
    await Promise.all([waitAll(target2), joinerHost.call({ cmd: 'waitGone', groupId, member: joiner })])
    r.removeAll!.push(performance.now() - t)
    r.removeMemberCpu!.push((await membersCpuMs() - m0) / (n - 1))
    await profiled(profiling(i), 'remove')
    log(`group of ${n}: rep ${i + 1}: add ${round(r.add!.at(-1)!)} ms (commit→acks ${round(r.addAcks!.at(-1)!)}, bare ${round(r.addBare!.at(-1)!)}), remove ${round(r.remove!.at(-1)!)} ms (commit→acks ${round(r.removeAcks!.at(-1)!)}: made ${round(removeSplit.createdMs)}, sent ${round(removeSplit.sentMs)}; bare ${round(r.removeBare!.at(-1)!)}), fan-out round ${round(r.fan!.at(-1)!)} ms, save ${round(r.save!.at(-1)!)} ms; load ${load()}`)
  }
  const m = (k: string): number => round(median(r[k]!))
  const result = {
    members: n,
    addMs: m('add'), addBareMs: m('addBare'), addBareDefaultMs: m('addBareDefault'), addAllAppliedMs: m('addAll'),
    removeMs: m('remove'), removeBareMs: m('removeBare'), removeBareDefaultMs: m('removeBareDefault'), removeAllAppliedMs: m('removeAll'),
    fanOutRoundMs: m('fan'), saveMs: m('save'),
    addAcksMs: m('addAcks'), addDurableMs: m('addDurable'), removeAcksMs: m('removeAcks'), removeDurableMs: m('removeDurable'),
    addCpuMs: m('addCpu'), addBareCpuMs: m('addBareCpu'), addMemberCpuMs: m('addMemberCpu'),
    removeCpuMs: m('removeCpu'), removeBareCpuMs: m('removeBareCpu'), removeMemberCpuMs: m('removeMemberCpu')
  }
  return { result, hosts, where, groupId, joiner }
}

interface Throughput { receivers: number, groupMsgsPerS: number, groupDeliveriesPerS: number, pairwiseRoundsPerS: number, pairwiseDeliveriesPerS: number }

async function throughput (hosts: Host[], groupId: string, joiner: string): Promise<Throughput> {
  // the joiner joins again: the committer + 10 members
  await svc.add({ groupId, peer: joiner })
  const peers = svc.list().find(g => g.groupId === groupId)!.members.filter(p => p !== svc.selfId)
  const counts = async (): Promise<{ group: number, sunk: number }> => {
    const all = await Promise.all(hosts.map(async h => h.call({ cmd: 'counts' }) as Promise<{ group: number, sunk: number }>))
    return { group: all.reduce((a, c) => a + c.group, 0), sunk: all.reduce((a, c) => a + c.sunk, 0) }
  }
  const outbox = new Outbox([])
  const { body } = await outbox.admit({ kind: 'group', body: new Uint8Array(1024).fill(0x61), contentType: 'application/octet-stream' })
  const epoch = Number(svc.groups.get(groupId)!.state.groupContext.epoch)
  await Promise.all(hosts.map(async h => h.call({ cmd: 'waitEpoch', groupId, epoch, ids: peers })))
  for (let i = 0; i < 20; i++) await svc.send({ groupId, body, contentType: 'application/octet-stream' })
  let before = (await counts()).group
  if (profileDir !== undefined) { await startProfile(); await Promise.all(hosts.map(async h => h.call({ cmd: 'profileStart' }))) }
  let t = performance.now()
  for (let i = 0; i < messages; i++) await svc.send({ groupId, body, contentType: 'application/octet-stream' })
  if (profileDir !== undefined) {
    const took = performance.now() - t
    await stopProfile(profileDir, 'committer-send')
    await Promise.all(hosts.map(async (h, j) => h.call({ cmd: 'profileStop', dir: profileDir, name: `members-${j}-send` })))
    t = performance.now() - took
  }
  // send() resolves once every member acknowledged the frame (it is decrypted on arrival)
  const groupS = (performance.now() - t) / 1000
  const got = (await counts()).group - before
  if (got !== messages * peers.length) log(`warning: members received ${got} of ${messages * peers.length} group messages`)
  const ms = new MessagingService({ libp2p, privateKey: key }, { requestTimeoutMs: 30_000, retries: 0 })
  await ms.start()
  const ids = peers.map(p => peerIdFromString(p))
  const round1 = async (): Promise<void> => { await Promise.all(ids.map(async p => ms.send(p, 'sink', body, 'application/octet-stream', { oneway: true }))) }
  for (let i = 0; i < 20; i++) await round1()
  before = (await counts()).sunk
  t = performance.now()
  for (let i = 0; i < messages; i++) await round1()
  const pairS = (performance.now() - t) / 1000
  const sunk = (await counts()).sunk - before
  if (sunk !== messages * peers.length) log(`warning: peers sank ${sunk} of ${messages * peers.length} pairwise messages`)
  await ms.stop()
  return {
    receivers: peers.length,
    groupMsgsPerS: round(messages / groupS), groupDeliveriesPerS: round(messages * peers.length / groupS),
    pairwiseRoundsPerS: round(messages / pairS), pairwiseDeliveriesPerS: round(messages * peers.length / pairS)
  }
}

const results: SizeResult[] = []
let tp: Throughput | undefined
try {
  for (const n of sizes) {
    const { result, hosts, groupId, joiner } = await membership(n)
    results.push(result)
    if (n === 10) {
      log('throughput to 10 members')
      tp = await throughput(hosts, groupId, joiner)
    }
    await Promise.all(hosts.map(async h => h.call({ cmd: 'stop' }).catch(() => {})))
    await svc.forget(svc.groups.get(groupId)!)
  }
} finally {
  await svc.stop()
  await libp2p.stop()
  await rm(home, { recursive: true, force: true })
}
const loadEnd = load()
if (args.json) {
  process.stdout.write(JSON.stringify({ membership: results, throughput: tp, procs, load: { start: loadStart, end: loadEnd, cpus: cpus().length } }, null, 2) + '\n')
} else {
  const ratio = (a: number, b: number): string => `${(a / b).toFixed(1)}×`
  const lines = [
    `committer in this process, members in ${procs} processes; load average ${loadStart} at start, ${loadEnd} at end (${cpus().length} CPUs)`, '',
    '| members | add: commit+fan-out+acks | bare createCommit (add) | ratio | bare, ts-mls default provider | all applied | remove: commit+fan-out+acks | bare createCommit (remove) | ratio | bare, ts-mls default provider | all applied | fan-out round (heartbeat) | save state |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|'
  ]
  for (const r of results) lines.push(`| ${r.members} | ${r.addMs} ms | ${r.addBareMs} ms | ${ratio(r.addMs, r.addBareMs)} | ${r.addBareDefaultMs} ms | ${r.addAllAppliedMs} ms | ${r.removeMs} ms | ${r.removeBareMs} ms | ${ratio(r.removeMs, r.removeBareMs)} | ${r.removeBareDefaultMs} ms | ${r.removeAllAppliedMs} ms | ${r.fanOutRoundMs} ms | ${r.saveMs} ms |`)
  lines.push('', 'The same calls split at the committer (`GroupsService.lastCommit`): from the start of the commit to every member\'s ack (the commit made, fanned out, acknowledged: what issue 12 times), then until the new state is durable (a rename and a folder fsync, shared with every member\'s save on this one disk); the add call also fetches the joiner\'s key package first:', '',
    '| members | add: commit → all acks | add: acks → durable | remove: commit → all acks | remove: acks → durable |', '|---|---|---|---|---|')
  for (const r of results) lines.push(`| ${r.members} | ${r.addAcksMs} ms | ${r.addDurableMs} ms | ${r.removeAcksMs} ms | ${r.removeDurableMs} ms |`)
  lines.push('', 'CPU time (ms; less sensitive to load than the wall times above):', '',
    '| members | committer: add | bare createCommit (add) | ratio | members: add, per member | committer: remove | bare createCommit (remove) | ratio | members: remove, per member |',
    '|---|---|---|---|---|---|---|---|---|')
  for (const r of results) lines.push(`| ${r.members} | ${r.addCpuMs} | ${r.addBareCpuMs} | ${ratio(r.addCpuMs, r.addBareCpuMs)} | ${r.addMemberCpuMs} | ${r.removeCpuMs} | ${r.removeBareCpuMs} | ${ratio(r.removeCpuMs, r.removeBareCpuMs)} | ${r.removeMemberCpuMs} |`)
  if (tp !== undefined) {
    lines.push('', `| to ${tp.receivers} members (1 KiB) | messages/s | deliveries/s |`, '|---|---|---|')
    lines.push(`| group send (MLS, one ciphertext fanned out, all acks) | ${tp.groupMsgsPerS} | ${tp.groupDeliveriesPerS} |`)
    lines.push(`| pairwise signed one-way messages | ${tp.pairwiseRoundsPerS} | ${tp.pairwiseDeliveriesPerS} |`)
    lines.push(`| ratio group / pairwise | ${ratio(tp.groupMsgsPerS, tp.pairwiseRoundsPerS)} | |`)
  }
  process.stdout.write(lines.join('\n') + '\n')
}
