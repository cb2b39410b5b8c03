/**
 * @packageDocumentation
 *
 * Prometheus metrics: with `metrics.listen` set (e.g.
 * `/ip4/127.0.0.1/tcp/9464`), the node serves `GET /metrics` in the
 * Prometheus text format 0.0.4 with `node:http`. One `prom-client` registry
 * holds libp2p's own series (through `@libp2p/prometheus-metrics`, which the
 * node hands to `createLibp2p` only when metrics are on), the process
 * defaults (`process_*`, `nodejs_*`) and agentnet's `agentnet_*` series
 * (`series.ts`). The same text is available over IPC (`node.prometheus`,
 * `agentnet metrics`).
 *
 * An address that is not loopback is accepted, with a warning in the log:
 * the endpoint has no authentication, and the series name services, peers'
 * error codes and group IDs.
 *
 * @example
 *
 * ```TypeScript
 * import { createLibp2p } from 'libp2p'
 * import { prometheusMetrics } from '@libp2p/prometheus-metrics'
 * import { NodeMetrics } from './src/metrics/index.ts'
 *
 * const metrics = new NodeMetrics({ listen: '/ip4/127.0.0.1/tcp/9464' })
 * const libp2p = await createLibp2p({ metrics: prometheusMetrics({ registry: metrics.registry }) })
 * // messaging: new MessagingService({ …, observer: metrics.series.observer })
 * metrics.setSources({ messaging, outbox, guard, groups, trust, network })
 * await metrics.start()
 * // curl http://127.0.0.1:9464/metrics
 * await metrics.stop()
 * ```
 */

import { createServer } from 'node:http'
import { multiaddr } from '@multiformats/multiaddr'
import { Registry } from 'prom-client'
import { METRICS_PATH, SCRAPE_TIMEOUT_MS } from './constants.ts'
import { registerAgentSeries } from './series.ts'
import type { AgentSeries, MetricsSources } from './series.ts'
import type { Startable } from '@libp2p/interface'
import type { Server } from 'node:http'
import type { Logger } from 'pino'
import type { MetricObjectWithValues, MetricValue } from 'prom-client'

export * from './constants.ts'
export { MetricsDisabledError } from './errors.ts'
export type { AgentSeries, MetricsSources } from './series.ts'

export interface NodeMetricsInit {
  /** `/ip4|ip6/<address>/tcp/<port>` (port 0: any free port) */
  listen: string
  logger?: Logger
}

/** A series as `--json` prints it (prom-client's JSON form) */
export type MetricJson = MetricObjectWithValues<MetricValue<string>>

/** Host and port of a `/ip4|ip6/<address>/tcp/<port>` address */
export function hostPort (listen: string): { host: string, port: number } {
  const [ip, tcp] = multiaddr(listen).getComponents()
  return { host: ip?.value ?? '127.0.0.1', port: Number(tcp?.value ?? 0) }
}

/** Is this listen address reachable from this host only? */
export function isLoopback (listen: string): boolean {
  const { host } = hostPort(listen)
  return host === '::1' || /^127\./.test(host)
}

/** The metrics registry and its HTTP endpoint, a `Startable` of the node's lifecycle */
export class NodeMetrics implements Startable {
  readonly registry = new Registry()
  readonly series: AgentSeries
  private readonly init: NodeMetricsInit
  private sources: MetricsSources | undefined
  private server: Server | undefined
  private address: { host: string, port: number } | undefined

  constructor (init: NodeMetricsInit) {
    this.init = init
    this.series = registerAgentSeries(this.registry, () => this.sources)
  }

  /** The services the scrape-time series read (set once they exist) */
  setSources (sources: MetricsSources): void {
    this.sources = sources
  }

  /** `http://host:port/metrics` once started */
  get url (): string | undefined {
    if (this.address == null) return undefined
    const host = this.address.host.includes(':') ? `[${this.address.host}]` : this.address.host
    return `http://${host}:${this.address.port}${METRICS_PATH}`
  }

  /** Every series in the text format 0.0.4 */
  async text (): Promise<string> {
    return this.registry.metrics()
  }

  async json (): Promise<MetricJson[]> {
    return this.registry.getMetricsAsJSON()
  }

  get contentType (): string {
    return this.registry.contentType
  }

  async start (): Promise<void> {
    this.series.attach()
    const { host, port } = hostPort(this.init.listen)
    if (!isLoopback(this.init.listen)) {
      this.init.logger?.warn({ listen: this.init.listen }, 'metrics endpoint listens beyond loopback: anyone who reaches it can read the metrics (no authentication)')
    }
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path !== METRICS_PATH) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n')
        return
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n')
        return
      }
      const timeout = setTimeout(() => { if (!res.headersSent) res.writeHead(503).end('scrape timed out\n') }, SCRAPE_TIMEOUT_MS)
      this.text().then(body => {
        if (res.headersSent) return
        res.writeHead(200, { 'content-type': this.registry.contentType, 'cache-control': 'no-store' })
        res.end(req.method === 'HEAD' ? undefined : body)
      }, (err: Error) => {
        this.init.logger?.warn({ err: err.message }, 'metrics scrape failed')
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n')
      }).finally(() => { clearTimeout(timeout) })
    })
    server.headersTimeout = SCRAPE_TIMEOUT_MS
    server.requestTimeout = SCRAPE_TIMEOUT_MS
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port }, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const bound = server.address()
    this.address = bound != null && typeof bound === 'object' ? { host: bound.address, port: bound.port } : { host, port }
    this.server = server
    this.init.logger?.info({ url: this.url }, 'serving metrics')
  }

  async stop (): Promise<void> {
    this.series.detach()
    const server = this.server
    this.server = undefined
    this.address = undefined
    if (server == null) return
    server.closeAllConnections()
    await new Promise<void>(resolve => { server.close(() => { resolve() }) })
  }
}
