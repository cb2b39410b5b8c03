import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { allows, createGuard, DEFAULT_POLICY, InvalidGuardInputError } from '../../../src/guard/index.ts'

describe('policy patterns', () => {
  it('exact, prefix and *', () => {
    assert.equal(allows(['pii/email'], 'pii/email'), true)
    assert.equal(allows(['pii/email'], 'pii/phone'), false)
    assert.equal(allows(['finance/*'], 'finance/card'), true)
    assert.equal(allows(['finance/*'], 'finance/card/eu'), true)
    assert.equal(allows(['finance/*'], 'financex/card'), false)
    assert.equal(allows(['finance/*'], 'finance'), false)
    assert.equal(allows(['*'], 'health/diagnosis'), true)
    assert.equal(allows([], 'pii/email'), false)
  })
  it('secrets only by their exact category', () => {
    assert.equal(allows(['*'], 'secret/github'), false)
    assert.equal(allows(['secret/*'], 'secret/github'), false)
    assert.equal(allows(['secret/github'], 'secret/github'), true)
    assert.equal(allows(['secret/github'], 'secret/aws-access-key'), false)
  })
})

describe('policy resolution', () => {
  const g = createGuard()
  g.setPolicy({ peer: '*', allow: ['public/*'] })
  g.setPolicy({ peer: '*', service: 'billing', allow: ['finance/*'], action: 'redact' })
  g.setPolicy({ peer: 'PEER', allow: ['travel/*'], action: 'warn' })
  g.setPolicy({ peer: 'PEER', service: 'billing', allow: ['finance/card'] })
  g.setPolicy({ peer: 'alice', allow: ['health/*'] })

  it('(peer, service) > (peer) > (*, service) > (*)', () => {
    assert.deepEqual(g.resolvePolicy({ peerNames: ['PEER'], service: 'billing' }).allow, ['finance/card'])
    assert.deepEqual(g.resolvePolicy({ peerNames: ['PEER'], service: 'chat' }).allow, ['travel/*'])
    assert.deepEqual(g.resolvePolicy({ peerNames: ['PEER'] }).allow, ['travel/*'])
    assert.deepEqual(g.resolvePolicy({ peerNames: ['OTHER'], service: 'billing' }).allow, ['finance/*'])
    assert.deepEqual(g.resolvePolicy({ peerNames: ['OTHER'], service: 'chat' }).allow, ['public/*'])
  })
  it('a petname counts like the peer ID, the peer ID first', () => {
    assert.deepEqual(g.resolvePolicy({ peerNames: ['12D3X', 'alice'] }).allow, ['health/*'])
    assert.deepEqual(g.resolvePolicy({ peerNames: ['PEER', 'alice'] }).allow, ['travel/*'])
    // a petname's any-service policy beats a '*' service policy
    assert.deepEqual(g.resolvePolicy({ peerNames: ['12D3X', 'alice'], service: 'billing' }).allow, ['health/*'])
  })
  it('default: allow nothing, block', () => {
    const empty = createGuard()
    assert.deepEqual(empty.resolvePolicy({ peerNames: ['x'] }), DEFAULT_POLICY)
    assert.deepEqual(DEFAULT_POLICY, { peer: '*', allow: [], action: 'block' })
  })
  it('set replaces, get lists, remove removes', () => {
    const h = createGuard()
    assert.deepEqual(h.setPolicy({ peer: 'p', allow: ['a/*', 'a/*'] }), { peer: 'p', allow: ['a/*'], action: 'block' })
    h.setPolicy({ peer: 'p', allow: ['b'], action: 'warn' })
    h.setPolicy({ peer: 'q', service: 's', allow: [] })
    assert.deepEqual(h.getPolicy({ peer: 'p' }), [{ peer: 'p', allow: ['b'], action: 'warn' }])
    assert.equal(h.getPolicy().length, 2)
    assert.deepEqual(h.removePolicy({ peer: 'q', service: 's' }), { removed: 1 })
    assert.deepEqual(h.removePolicy({ peer: 'q', service: 's' }), { removed: 0 })
  })
  it('policies from init', () => {
    const h = createGuard({ policies: [{ peer: '*', allow: ['x/*'], action: 'warn' }] })
    assert.equal(h.resolvePolicy({ peerNames: ['z'] }).action, 'warn')
  })
  it('rejects bad input with InvalidParams', () => {
    const h = createGuard()
    const bad: unknown[] = [
      { peer: '', allow: [] },
      { peer: 'a b', allow: [] },
      { peer: 'p', allow: 'x' },
      { peer: 'p', allow: ['Finance/*'] },
      { peer: 'p', allow: ['finance/*/x'] },
      { peer: 'p', allow: ['*x'] },
      { peer: 'p', allow: [], action: 'drop' },
      { peer: 'p', service: '', allow: [] },
      null
    ]
    for (const b of bad) {
      assert.throws(() => h.setPolicy(b as never), (err: Error) => err instanceof InvalidGuardInputError && (err as InvalidGuardInputError).code === 'InvalidParams', JSON.stringify(b))
    }
  })
})
