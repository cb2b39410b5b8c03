import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { defaultConfig, mergeConfig, validateConfig } from '../../src/config/index.ts'
import { isLoopback, MAX_LABEL_VALUES, MetricsDisabledError, NodeMetrics, OTHER_LABEL } from '../../src/metrics/index.ts'
import { isErrorCode } from '../../src/errors/index.ts'

const base = defaultConfig() as unknown as Record<string, unknown>

describe('metrics', () => {
  it('metrics.listen: "" or /ip4|ip6/<address>/tcp/<port>', () => {
    for (const listen of ['', '/ip4/127.0.0.1/tcp/9464', '/ip6/::1/tcp/0', '/ip4/0.0.0.0/tcp/9464']) {
      validateConfig(mergeConfig(base, { metrics: { listen } }))
    }
    for (const listen of ['/ip4/127.0.0.1/udp/9464', '/ip4/127.0.0.1', '/dns4/localhost/tcp/1', '/ip4/127.0.0.1/tcp/1/ws', 'localhost:9464', 9464]) {
      assert.throws(() => validateConfig(mergeConfig(base, { metrics: { listen } })), /metrics\.listen must be "" \(off\)/, String(listen))
    }
  })

  it('tells loopback addresses apart', () => {
    assert.equal(isLoopback('/ip4/127.0.0.1/tcp/1'), true)
    assert.equal(isLoopback('/ip6/::1/tcp/1'), true)
    assert.equal(isLoopback('/ip4/0.0.0.0/tcp/1'), false)
    assert.equal(isLoopback('/ip4/192.168.1.2/tcp/1'), false)
  })

  it('MetricsDisabled is a code of the table', () => {
    assert.equal(isErrorCode(new MetricsDisabledError('off').code), true)
  })

  it('serves /metrics; bounds service labels; hides foreign codes; warns beyond loopback', async () => {
    let log = ''
    const logger = pino({ level: 'info' }, new Writable({ write (chunk, _enc, done) { log += String(chunk); done() } }))
    const metrics = new NodeMetrics({ listen: '/ip4/0.0.0.0/tcp/0', logger })
    await metrics.start()
    try {
      assert.match(log, /metrics endpoint listens beyond loopback/)
      const url = metrics.url
      assert.ok(url != null)
      for (let i = 0; i < MAX_LABEL_VALUES + 5; i++) metrics.series.observer.sent(`svc-${i}`, 'request', 'ok', 0.01)
      metrics.series.observer.sent('svc-0', 'request', 'OutOfStock', 0.02)
      metrics.series.observer.received('', '', 'BadSignature')
      const res = await fetch(url.replace('0.0.0.0', '127.0.0.1'))
      assert.equal(res.status, 200)
      const text = await res.text()
      assert.match(text, new RegExp(`agentnet_messages_sent_total\\{service="${OTHER_LABEL}",kind="request",result="ok"\\} 5`))
      assert.match(text, /agentnet_messages_sent_total\{service="svc-0",kind="request",result="_foreign"\} 1/)
      assert.match(text, /agentnet_request_rtt_seconds_count\{service="svc-0"\} 2/)
      assert.match(text, /agentnet_messages_received_total\{service="",kind="",result="BadSignature"\} 1/)
      // no sources yet: the scrape-time series are empty, not an error
      assert.match(text, /# TYPE agentnet_replay_cache_entries gauge/)
    } finally {
      await metrics.stop()
    }
    assert.equal(metrics.url, undefined)
  })
})
