import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { multiaddr } from '@multiformats/multiaddr'
import { PendingQueue, sourceOf, UNKNOWN_SOURCE } from '../../../src/trust/index.ts'

const RELAY = '12D3KooWGUD768mrk69PWBYv17dSvEYSx7tTGbfkZEzzY17edYAT'
const REMOTE = '12D3KooWPBBxUrQJxQ8Ljjcq172tx9XsU2gkJZHoYicUPsLEuxyU'

describe('source network of a connection', () => {
  it('IPv4 /24, IPv6 /48 (mapped IPv4 as IPv4), relayed: the relay, otherwise unknown', () => {
    const cases: Array<[string, string]> = [
      ['/ip4/203.0.113.7/tcp/4001', 'ip4/203.0.113.0/24'],
      ['/ip4/203.0.113.250/udp/9/quic-v1', 'ip4/203.0.113.0/24'],
      ['/ip4/203.0.114.7/tcp/4001', 'ip4/203.0.114.0/24'],
      ['/ip6/::1/tcp/1', 'ip6/0:0:0::/48'],
      ['/ip6/2001:db8:1:2::5/tcp/1', 'ip6/2001:db8:1::/48'],
      ['/ip6/2001:0db8:0001:ffff:0:0:0:1/tcp/1', 'ip6/2001:db8:1::/48'],
      ['/ip6/2001:db8::1/tcp/1', 'ip6/2001:db8:0::/48'],
      ['/ip6/::ffff:198.51.100.9/tcp/1', 'ip4/198.51.100.0/24'],
      [`/ip4/198.51.100.1/tcp/1/p2p/${RELAY}/p2p-circuit/p2p/${REMOTE}`, `relay/${RELAY}`],
      ['/dns4/example.com/tcp/1', UNKNOWN_SOURCE],
      ['/memory/x', UNKNOWN_SOURCE]
    ]
    for (const [addr, source] of cases) assert.equal(sourceOf(multiaddr(addr)), source, addr)
    assert.equal(sourceOf(undefined), UNKNOWN_SOURCE)
  })
})

describe('pending queue admission', () => {
  it('a network at its share is refused even when the queue has room', () => {
    const q = new PendingQueue(100, 3)
    for (const p of ['a1', 'a2', 'a3']) {
      assert.deepEqual(q.admit('A'), { admitted: true })
      q.add(p, 'A')
    }
    const refused = q.admit('A')
    assert.equal(refused.admitted, false)
    assert.deepEqual(q.admit('B'), { admitted: true })
  })

  it('when full, a newcomer from a less-represented network replaces the oldest entry of the most-represented one', () => {
    const q = new PendingQueue(5, 10)
    for (const p of ['a1', 'a2', 'a3', 'a4']) q.add(p, 'A')
    q.add('b1', 'B')
    assert.deepEqual(q.admit('C'), { admitted: true, evict: 'a1' })
    q.remove('a1')
    q.add('c1', 'C')
    assert.deepEqual(q.admit('C'), { admitted: true, evict: 'a2' })
    // A 2, B 1, C 2: A or C evicting from the other would not reduce the imbalance, so they are refused; a new network is not
    q.remove('a2')
    q.add('c2', 'C')
    assert.equal(q.admit('A').admitted, false)
    assert.equal(q.admit('C').admitted, false)
    assert.deepEqual(q.admit('D'), { admitted: true, evict: 'a3' })
    assert.deepEqual(Object.fromEntries(q.counts()), { A: 2, B: 1, C: 2 })
    q.remove('zz') // unknown: nothing
    assert.equal(q.size, 5)
  })
})
