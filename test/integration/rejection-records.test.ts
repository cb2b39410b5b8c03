/**
 * Rejected messages with huge peer-chosen fields, against a real node:
 * - the audit record is never dropped: long fields are clipped and keep the
 *   SHA-256 of the whole (a record over 8 KiB used to be refused outright);
 * - the log does not amplify a flood: fields are capped and each peer gets at
 *   most 10 "message rejected" lines a second, the rest summed in one line.
 */

import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/index.ts'
import { createAgentNode } from '../../src/agent/index.ts'
import { TEXT } from '../../src/messaging/index.ts'
import { Attacker, newId } from '../helpers/attacker.ts'
import type { AgentNode } from '../../src/agent/index.ts'

const encoder = new TextEncoder()
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('rejected messages with huge fields', () => {
  let home: string
  let node: AgentNode
  let attacker: Attacker
  const lines: string[] = []
  // the node's clock: frozen, moved by hand (the log's rate limit counts per second of it)
  const base = Date.now()
  let offset = 0

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'agentnet-rejrec-'))
    const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
    const logger = pino({ level: 'warn' }, new Writable({ write (chunk, _enc, done) { lines.push(String(chunk)); done() } }))
    node = await createAgentNode({ config, privateKey: await generateKeyPair('Ed25519'), home, logger, clock: () => base + offset })
    await node.start()
    attacker = await Attacker.create()
  })
  after(async () => {
    await attacker?.stop()
    await node?.stop()
    await rm(home, { recursive: true, force: true })
  })

  it('each rejection is audited with clipped fields and their SHA-256; the log gets 10 capped lines a second, then a summary', async () => {
    const service = `svc-${'s'.repeat(20_000)}`
    const stream = await attacker.open(node.libp2p.getMultiaddrs()[0]!)
    const frames: Uint8Array[] = []
    const ids: string[] = []
    for (let i = 0; i < 50; i++) {
      const id = newId('flood')
      ids.push(id)
      frames.push(attacker.seal({ to: node.peerId, service, kind: 'request', id, body: encoder.encode('x'), contentType: TEXT, timestamp: base }))
    }
    await stream.sendFrames(...frames)
    const deadline = Date.now() + 10_000
    const total = (): number => Object.values(node.messaging.metrics.rejected).reduce((a, b) => a + b, 0)
    while (total() < 50 && Date.now() < deadline) await sleep(20)
    assert.equal(total(), 50, `rejections: ${JSON.stringify(node.messaging.metrics.rejected)}`)

    const rejectedLines = lines.filter(l => l.includes('"msg":"message rejected"'))
    assert.equal(rejectedLines.length, 10, 'ten lines for this peer in this second')
    for (const l of rejectedLines) assert.ok(l.length < 2048, `a capped line (${l.length} bytes)`)
    const logged = lines.join('').length
    assert.ok(logged < 50 * 20_000 / 10, `the log stays far below the flood's size (${logged} bytes)`)

    // the next second: the left-out lines are summed up in one line
    offset += 1000
    const one = newId('next')
    await stream.sendFrames(attacker.seal({ to: node.peerId, service, kind: 'request', id: one, body: encoder.encode('x'), contentType: TEXT, timestamp: base + offset }))
    while (!lines.some(l => l.includes('not logged one by one')) && Date.now() < deadline) await sleep(20)
    const summary = JSON.parse(lines.find(l => l.includes('not logged one by one')) ?? '{}') as { suppressed?: number }
    assert.equal(summary.suppressed, 40)

    // the audit log: records (not dropped), fields clipped, the whole kept as a hash
    const digest = createHash('sha256').update(service).digest('hex')
    let records: Array<{ type: string, data: Record<string, unknown> }> = []
    while (Date.now() < deadline) {
      records = (await readFile(join(home, 'audit.log'), 'utf8')).split('\n').filter(l => l.includes('"message.rejected"')).map(l => JSON.parse(l) as { type: string, data: Record<string, unknown> })
      if (records.length >= 10) break
      await sleep(50)
    }
    assert.ok(records.length >= 10, `audit records of the rejections: ${records.length}`)
    for (const r of records) {
      assert.equal(r.data.serviceSha256, digest, 'the SHA-256 of the whole service name')
      assert.ok(typeof r.data.service === 'string' && r.data.service.length <= 257)
      assert.ok(service.startsWith((r.data.service as string).slice(0, -1)))
    }
    assert.ok(ids.includes(records[0]?.data.id as string))
  })
})
