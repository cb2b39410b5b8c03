import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { Attacker, craftFrame, tamper } from '../helpers/attacker.ts'
import { makeHome, removeHome, runCli, runJson, startNode } from '../helpers/cli.ts'
import { RawSocket } from '../helpers/raw-socket.ts'
import type { RunningNode } from '../helpers/cli.ts'
import type { AttackStream } from '../helpers/attacker.ts'

/** One sample: `name{labels} value` */
interface Sample { name: string, labels: Record<string, string>, value: number }

/** Parse the Prometheus text format (enough of it for prom-client's output) */
function parse (text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    assert.ok(m != null, `not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, k, v] of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k as string] = v as string
    out.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return out
}

/** Sum of the samples named `name` whose labels include `labels` */
function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0)
}

async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise(resolve => server.close(resolve))
  assert.ok(address != null && typeof address === 'object')
  return address.port
}

/** Poll `fn` until it holds (every 50 ms, at most `timeoutMs`) */
async function until<T> (fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (true) {
    const v = await fn()
    if (ok(v) || Date.now() > deadline) return v
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

describe('Prometheus metrics (metrics.listen)', () => {
  let homeA: string
  let homeB: string
  let nodeA: RunningNode
  let nodeB: RunningNode
  let urlA: string
  let urlB: string
  let peerA: string
  let peerB: string
  let addressB: string
  let x: RawSocket
  let y: RawSocket
  let attacker: Attacker | undefined
  let seq = 0

  const call = async (socket: RawSocket, method: string, params: unknown): Promise<any> => {
    const id = `c${seq++}`
    socket.send({ jsonrpc: '2.0', id, method, params })
    return socket.next(m => m.id === id)
  }
  const scrape = async (url: string): Promise<Sample[]> => {
    const res = await fetch(url)
    assert.equal(res.status, 200)
    return parse(await res.text())
  }

  before(async () => {
    homeA = await makeHome()
    homeB = await makeHome()
    const [portA, portB] = [await freePort(), await freePort()]
    urlA = `http://127.0.0.1:${portA}/metrics`
    urlB = `http://127.0.0.1:${portB}/metrics`
    const configA = join(homeA, 'metrics-config.json')
    const configB = join(homeB, 'metrics-config.json')
    // a planted weakness on A: session tokens living 10 minutes (posture finding config.token-lifetime, medium)
    await writeFile(configA, JSON.stringify({ metrics: { listen: `/ip4/127.0.0.1/tcp/${portA}` }, tokens: { lifetimeMs: 600_000 } }))
    await writeFile(configB, JSON.stringify({ metrics: { listen: `/ip4/127.0.0.1/tcp/${portB}` } }))
    ;[nodeA, nodeB] = await Promise.all([startNode(homeA, ['--config', configA]), startNode(homeB, ['--config', configB])])
    const idB = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeB])
    peerB = idB.peerId
    addressB = idB.addresses[0] ?? ''
    peerA = (await runJson<{ peerId: string }>(['id', '--home', homeA])).peerId
    await runJson(['connect', addressB, '--home', homeA])
    x = await RawSocket.connect(join(homeA, 'agentnet.sock'))
    y = await RawSocket.connect(join(homeB, 'agentnet.sock'))
    // A asks B for trust, B approves
    assert.equal((await call(x, 'trust.request', { peer: peerB, reason: 'metrics test' })).result.state, 'pending-outbound')
    assert.equal((await call(y, 'trust.approve', { peer: peerA })).result.state, 'trusted')
    assert.ok((await call(y, 'service.register', { service: 'echo' })).result)
  })

  after(async () => {
    x?.close()
    y?.close()
    await attacker?.libp2p.stop()
    await nodeA?.stop()
    await nodeB?.stop()
    await removeHome(homeA)
    await removeHome(homeB)
  })

  it('serves the text format 0.0.4 on /metrics only, with libp2p\'s and the process\'s series', async () => {
    const res = await fetch(urlA)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const samples = parse(await res.text())
    const names = new Set(samples.map(s => s.name))
    assert.ok([...names].some(n => n.startsWith('libp2p_')), 'libp2p series present')
    assert.ok(names.has('libp2p_connection_manager_connections'), [...names].filter(n => n.startsWith('libp2p_')).join(' '))
    assert.ok(names.has('process_cpu_user_seconds_total'))
    for (const name of ['agentnet_replay_cache_entries', 'agentnet_guard_checks_total', 'agentnet_groups', 'agentnet_relay_reservations', 'agentnet_token_events_total']) {
      assert.ok(names.has(name), name)
    }
    assert.ok(value(samples, 'agentnet_connections', { transport: 'tcp', path: 'direct' }) >= 1)
    assert.ok(value(samples, 'agentnet_trust_peers', { state: 'trusted' }) >= 1)
    // A's request went pending, then B approved it: both changes were counted as they happened
    assert.ok(value(samples, 'agentnet_trust_events_total', { state: 'pending-outbound' }) >= 1)
    assert.ok(value(await until(async () => scrape(urlA), s => value(s, 'agentnet_trust_events_total', { state: 'trusted' }) >= 1), 'agentnet_trust_events_total', { state: 'trusted' }) >= 1)
    assert.ok(value(await scrape(urlB), 'agentnet_trust_events_total', { state: 'trusted' }) >= 1)
    assert.equal((await fetch(urlA.replace('/metrics', '/'))).status, 404)
    assert.equal((await fetch(urlA, { method: 'POST' })).status, 405)
  })

  it('messages sent and received by service and result, and the request RTT histogram, move with traffic', async () => {
    const [beforeA, beforeB] = [await scrape(urlA), await scrape(urlB)]
    for (let i = 0; i < 3; i++) {
      const id = `s${seq++}`
      x.send({ jsonrpc: '2.0', id, method: 'msg.send', params: { to: peerB, service: 'echo', body: `ping ${i}` } })
      const note = await y.next(m => m.method === 'msg.received')
      assert.equal((await call(y, 'msg.reply', { id: note.params.id, body: 'pong' })).result.ok, true)
      assert.equal((await x.next(m => m.id === id)).result.body, 'pong')
    }
    assert.equal((await call(x, 'msg.send', { to: peerB, service: 'echo', body: 'fyi', oneway: true })).result.accepted, true)
    await y.next(m => m.method === 'msg.received')

    const afterA = await scrape(urlA)
    const moved = (before: Sample[], after: Sample[], name: string, labels: Record<string, string>): number => value(after, name, labels) - value(before, name, labels)
    assert.equal(moved(beforeA, afterA, 'agentnet_messages_sent_total', { service: 'echo', kind: 'request', result: 'ok' }), 3)
    assert.equal(moved(beforeA, afterA, 'agentnet_messages_sent_total', { service: 'echo', kind: 'oneway', result: 'ok' }), 1)
    assert.equal(moved(beforeA, afterA, 'agentnet_request_rtt_seconds_count', { service: 'echo' }), 3)
    assert.ok(moved(beforeA, afterA, 'agentnet_request_rtt_seconds_sum', { service: 'echo' }) > 0)
    assert.equal(value(afterA, 'agentnet_request_rtt_seconds_bucket', { service: 'echo', le: '+Inf' }), value(afterA, 'agentnet_request_rtt_seconds_count', { service: 'echo' }))
    assert.equal(moved(beforeA, afterA, 'agentnet_messages_received_total', { service: 'echo', kind: 'response', result: 'ok' }), 3)
    assert.equal(moved(beforeA, afterA, 'agentnet_outbox_admitted_total', { kind: 'request' }), 3)

    // the one-way message may still be on its way to B's counters when A has its ack: poll
    const afterB = await until(async () => scrape(urlB), s => moved(beforeB, s, 'agentnet_messages_received_total', { service: 'echo', kind: 'oneway', result: 'ok' }) === 1)
    assert.equal(moved(beforeB, afterB, 'agentnet_messages_received_total', { service: 'echo', kind: 'request', result: 'ok' }), 3)
    assert.equal(moved(beforeB, afterB, 'agentnet_messages_received_total', { service: 'echo', kind: 'oneway', result: 'ok' }), 1)
    assert.equal(moved(beforeB, afterB, 'agentnet_outbox_admitted_total', { kind: 'reply' }), 3)
    assert.ok(value(afterB, 'agentnet_replay_cache_entries') >= 4)
    assert.ok(value(afterB, 'libp2p_data_transfer_bytes_total') > 0 || afterB.some(s => s.name.startsWith('libp2p_protocol_streams')), 'libp2p traffic series')
  })

  it('rejections by code move after an attack frame (BadSignature) and an untrusted sender (UntrustedPeer)', async () => {
    const before = await scrape(urlB)
    attacker = await Attacker.create()
    const s: AttackStream = await attacker.open(multiaddr(addressB))
    const target = s.remotePeer
    // a captured-then-tampered frame: the signature no longer covers it
    const message = attacker.message(target, { service: 'echo' })
    assert.equal(await s.expectError(tamper(craftFrame(message, attacker.signer), { service: 'admin' }), message.id), 'BadSignature')
    // a valid frame from a peer B does not trust
    const valid = attacker.message(target, { service: 'echo' })
    assert.equal(await s.expectError(craftFrame(valid, attacker.signer), valid.id), 'UntrustedPeer')

    const after = await scrape(urlB)
    const moved = (name: string, labels: Record<string, string>): number => value(after, name, labels) - value(before, name, labels)
    assert.equal(moved('agentnet_message_rejections_total', { code: 'BadSignature' }), 1)
    assert.equal(moved('agentnet_message_rejections_total', { code: 'UntrustedPeer' }), 1)
    // an unverified frame is counted without its (attacker-chosen) service name
    assert.equal(moved('agentnet_messages_received_total', { service: '', result: 'BadSignature' }), 1)
    assert.equal(value(after, 'agentnet_messages_received_total', { service: 'admin' }), 0)
    assert.equal(moved('agentnet_messages_received_total', { service: 'echo', kind: 'request', result: 'UntrustedPeer' }), 1)
  })

  it('agentnet_posture_findings{severity} counts the node\'s posture findings (a planted weakness shows), as node.posture does', async () => {
    const severities = ['high', 'medium', 'low', 'info']
    // the first scrape starts the review; it is cached afterwards (poll until it finished)
    const a = await until(async () => scrape(urlA), s => severities.every(severity => s.some(x => x.name === 'agentnet_posture_findings' && x.labels.severity === severity)), 20_000)
    const b = await until(async () => scrape(urlB), s => s.some(x => x.name === 'agentnet_posture_findings'), 20_000)
    for (const severity of severities) assert.ok(a.some(x => x.name === 'agentnet_posture_findings' && x.labels.severity === severity), severity)
    const mediumA = value(a, 'agentnet_posture_findings', { severity: 'medium' })
    const mediumB = value(b, 'agentnet_posture_findings', { severity: 'medium' })
    assert.ok(mediumA >= 1, `A has a token lifetime of 10 minutes: ${mediumA} medium findings`)
    assert.equal(mediumA, mediumB + 1, 'the token lifetime is the one difference between A and B')
    assert.ok(value(a, 'agentnet_posture_findings', { severity: 'info' }) >= 1, 'baseline.none at least')
    assert.equal(value(a, 'agentnet_posture_drift'), 0)
    // over IPC: the same cached counts, the review's time, the baseline's state
    const posture = (await call(x, 'node.posture', {})).result
    assert.equal(posture.checking, false)
    assert.deepEqual(posture.findings, Object.fromEntries(severities.map(severity => [severity, value(a, 'agentnet_posture_findings', { severity })])))
    assert.equal(posture.baseline, 'none')
    assert.ok(Date.now() - posture.checkedAt < 5 * 60_000)
    // cached: a second scrape does not review again
    assert.equal((await call(x, 'node.posture', {})).result.checkedAt, posture.checkedAt)
    assert.deepEqual((await call(x, 'node.metrics', {})).result.posture.findings, posture.findings)
    assert.equal((await call(x, 'node.posture', { waitMs: -1 })).error.data.code, 'InvalidParams')
  })

  it('agentnet metrics prints the same series (text and --json)', async () => {
    const text = await runCli(['metrics', '--home', homeA])
    assert.equal(text.code, 0, text.stderr)
    const samples = parse(text.stdout)
    assert.ok(value(samples, 'agentnet_messages_sent_total', { service: 'echo', result: 'ok' }) >= 4)
    assert.ok(samples.some(s => s.name.startsWith('libp2p_')))

    const json = await runJson<{ url: string, metrics: Array<{ name: string, type: string, values: Array<{ labels: Record<string, string>, value: number }> }> }>(['metrics', '--home', homeA])
    assert.equal(json.url, urlA)
    const sent = json.metrics.find(m => m.name === 'agentnet_messages_sent_total')
    assert.equal(sent?.type, 'counter')
    assert.ok((sent?.values ?? []).some(v => v.labels.service === 'echo' && v.labels.kind === 'request' && v.value >= 3))
    assert.equal(json.metrics.find(m => m.name === 'agentnet_request_rtt_seconds')?.type, 'histogram')
  })

  it('a node without metrics.listen serves none: agentnet metrics answers MetricsDisabled', async () => {
    const homeC = await makeHome()
    const nodeC = await startNode(homeC)
    try {
      const text = await runCli(['metrics', '--home', homeC])
      assert.equal(text.code, 1)
      assert.match(text.stderr, /metrics\.listen/)
      const json = await runCli(['metrics', '--json', '--home', homeC])
      assert.equal(json.code, 1)
      assert.equal(JSON.parse(json.stdout).error.code, 'MetricsDisabled')
    } finally {
      await nodeC.stop()
      await removeHome(homeC)
    }
  })
})
