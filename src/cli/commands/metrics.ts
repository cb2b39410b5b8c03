/**
 * `agentnet metrics`: the running node's Prometheus metrics, as its
 * `/metrics` endpoint serves them (text format 0.0.4), or with `--json`
 * prom-client's JSON form of every series. A thin client of `node.prometheus`.
 */

import { withClient } from '../common.ts'
import type { GlobalOptions } from '../common.ts'

export async function metrics (opts: GlobalOptions): Promise<void> {
  if (opts.json === true) {
    const result = await withClient(opts, async client => client.request<{ url?: string, metrics: unknown[] }>('node.prometheus', { format: 'json' }))
    process.stdout.write(JSON.stringify(result) + '\n')
    return
  }
  const result = await withClient(opts, async client => client.request<{ text: string }>('node.prometheus', { format: 'text' }))
  process.stdout.write(result.text)
}
