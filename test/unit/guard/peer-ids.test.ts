import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createGuard } from '../../../src/guard/index.ts'

const A = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const B = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'

describe('peer IDs are public identifiers, not secrets', () => {
  it('peer IDs joined by token characters (base64url has `-`) are not high-entropy findings', async () => {
    const guard = createGuard()
    for (const body of [`${A}->${B}`, `${A}-${B}`, `route ${A}_${B} now`, `agentnet://${A}/echo`]) {
      assert.deepEqual((await guard.check({ peerNames: ['p'], body })).findings, [], body)
    }
  })

  it('a random token glued to a peer ID is still found, with its own offsets', async () => {
    const guard = createGuard()
    const body = `key ${A}xK9fQ2mZ7pL4vB8nR3tY6wE1`
    const findings = (await guard.check({ peerNames: ['p'], body })).findings
    assert.equal(findings.length, 1)
    assert.equal(findings[0]?.category, 'secret/high-entropy')
    assert.equal(findings[0]?.start, 4 + A.length)
    assert.equal(findings[0]?.end, body.length)
  })
})
