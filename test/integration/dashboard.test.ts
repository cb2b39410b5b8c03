/**
 * The dashboard (src/dashboard) of a real node A with two peers: a relay R
 * (bootstrap profile, connected directly over TCP) and C, reached through R's
 * circuit relay (DCUtR and WebRTC off on A and C, so the connection stays
 * relayed). HTTP checks (token, Origin, Host, CSP, server-sent events), then
 * Debian's chromium driven by playwright-core: both peers with the right
 * direct/relayed state, a pending trust request from D approved by a click
 * (checked over IPC), and a screenshot saved to test/artifacts/.
 *
 * Chromium is required for the browser part: without /usr/bin/chromium
 * (or $CHROMIUM) that test fails and says to install it.
 */

import assert from 'node:assert/strict'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { connectClient } from '../../src/client/index.ts'
import { startDashboard } from '../../src/dashboard/index.ts'
import { errorCodeOf } from '../../src/errors/index.ts'
import { makeHome, removeHome, runJson, startNode } from '../helpers/cli.ts'
import type { AgentnetClient } from '../../src/client/index.ts'
import type { Dashboard, DashboardSnapshot } from '../../src/dashboard/index.ts'
import type { RunningNode } from '../helpers/cli.ts'

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))

interface HttpResult { status: number, headers: Record<string, string | string[] | undefined>, body: string }

async function http (url: string, options: { method?: string, headers?: Record<string, string>, body?: string, firstChunk?: boolean } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? 'GET', headers: options.headers }, res => {
      let body = ''
      res.on('data', (d: Buffer) => {
        body += d.toString()
        // server-sent events never end: stop at the first event
        const event = body.indexOf('event:')
        if (options.firstChunk === true && event !== -1 && body.includes('\n\n', event)) {
          req.destroy()
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body })
        }
      })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

async function waitFor<T> (what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const value = await fn()
      if (value !== undefined) return value
    } catch (err) {
      last = err
    }
    await new Promise(resolve => setTimeout(resolve, 300))
  }
  throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`)
}

describe('dashboard of a node with a direct and a relayed peer', () => {
  const homes: string[] = []
  const nodes: RunningNode[] = []
  let dashboard: Dashboard
  let clientA: AgentnetClient
  let peerR: string
  let peerC: string
  let peerD: string
  let peerA: string
  const controller = new AbortController()

  before(async () => {
    const [homeA, homeR, homeC, homeD] = await Promise.all([0, 1, 2, 3].map(async () => makeHome('an-dash-')))
    homes.push(homeA ?? '', homeR ?? '', homeC ?? '', homeD ?? '')
    const noDirect = join(homeR ?? '', '..', `an-dash-nodirect-${process.pid}.json`)
    await writeFile(noDirect, JSON.stringify({ nat: { dcutr: false, webrtc: false, autonat: false }, relay: { reserve: true } }))
    const relayConfig = join(homeR ?? '', '..', `an-dash-relay-${process.pid}.json`)
    await writeFile(relayConfig, JSON.stringify({ nat: { stunServerPort: 0 } }))
    // A: a planted posture weakness (session tokens living 10 minutes: config.token-lifetime, medium)
    const weakA = join(homeR ?? '', '..', `an-dash-weak-${process.pid}.json`)
    await writeFile(weakA, JSON.stringify({ nat: { dcutr: false, webrtc: false, autonat: false }, relay: { reserve: true }, tokens: { lifetimeMs: 600_000 } }))
    nodes.push(await startNode(homeR ?? '', ['--profile', 'bootstrap', '--config', relayConfig]))
    const r = await runJson<{ peerId: string, addresses: string[] }>(['id', '--home', homeR ?? ''])
    peerR = r.peerId
    const relayAddr = r.addresses[0] ?? ''
    nodes.push(...await Promise.all([
      startNode(homeA ?? '', ['--config', weakA, '--bootstrap', relayAddr]),
      // C listens only through the relay: no direct address to dial
      startNode(homeC ?? '', ['--config', noDirect, '--bootstrap', relayAddr], { listen: ['/p2p-circuit'] }),
      startNode(homeD ?? '', ['--config', noDirect])
    ]))
    peerC = (await runJson<{ peerId: string }>(['id', '--home', homeC ?? ''])).peerId
    peerD = (await runJson<{ peerId: string }>(['id', '--home', homeD ?? ''])).peerId
    // C holds a reservation on R; A reaches C through it
    await waitFor('C\'s relay reservation', async () => {
      const status = await runJson<{ relayReservations: string[] }>(['status', '--home', homeC ?? ''])
      return status.relayReservations.includes(peerR) ? true : undefined
    })
    await runJson(['connect', `${relayAddr}/p2p-circuit/p2p/${peerC}`, '--home', homeA ?? ''])
    clientA = await connectClient({ home: homeA ?? '' })
    peerA = (await clientA.nodeInfo()).peerId
    dashboard = await startDashboard({ home: homeA ?? '', signal: controller.signal, intervalMs: 500 })
  })

  after(async () => {
    controller.abort()
    clientA?.close()
    await Promise.all(nodes.map(async n => n.stop()))
    await Promise.all(homes.map(removeHome))
  })

  it('refuses requests without the token, with a wrong token, from another Origin or Host', async () => {
    const base = `http://127.0.0.1:${dashboard.port}`
    assert.equal((await http(`${base}/`)).status, 401)
    assert.equal((await http(`${base}/?token=${'x'.repeat(dashboard.token.length)}`)).status, 401)
    assert.equal((await http(`${base}/api/state`)).status, 401)
    assert.equal((await http(`${base}/events`)).status, 401)
    assert.equal((await http(`${base}/api/state?token=${dashboard.token}`, { headers: { origin: 'http://evil.example' } })).status, 403)
    assert.equal((await http(`${base}/api/state?token=${dashboard.token}`, { headers: { host: 'evil.example' } })).status, 403)
    assert.equal((await http(`${base}/api/state?token=${dashboard.token}`, { headers: { 'sec-fetch-site': 'cross-site' } })).status, 403)
    const post = await http(`${base}/api/trust/approve?token=${dashboard.token}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"peer":"x"}' })
    assert.equal(post.status, 403, 'a simple (no-preflight) POST is refused')
    const page = await http(dashboard.url)
    assert.equal(page.status, 200)
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/)
    assert.equal(page.headers['referrer-policy'], 'no-referrer')
    assert.doesNotMatch(page.body, /https?:\/\//, 'no external asset')
  })

  it('the state and the event stream show both peers, R direct over TCP and C relayed', async () => {
    const state = await waitFor('both peers', async () => {
      const s = JSON.parse((await http(`http://127.0.0.1:${dashboard.port}/api/state?token=${dashboard.token}`)).body) as DashboardSnapshot
      const ids = new Set(s.peers?.map(p => p.peerId))
      return ids.has(peerR) && ids.has(peerC) ? s : undefined
    })
    assert.equal(state.running, true)
    assert.deepEqual(state.peers?.filter(p => p.peerId === peerR).map(p => [p.direct, p.transport]), [[true, 'tcp']])
    assert.deepEqual(state.peers?.filter(p => p.peerId === peerC).map(p => [p.direct, p.transport]), [[false, 'relay']])
    assert.equal(state.audit?.ok, true)
    // RTTs: the dashboard pings its peers in the background
    const rtts = await waitFor('RTTs of both peers', async () => {
      const s = JSON.parse((await http(`http://127.0.0.1:${dashboard.port}/api/state?token=${dashboard.token}`)).body) as DashboardSnapshot
      const found = [peerR, peerC].map(id => s.peers?.find(p => p.peerId === id)?.rttMs)
      return found.every(r => typeof r === 'number') ? found : undefined
    })
    assert.ok(rtts.every(r => (r ?? -1) >= 0))
    const events = await http(`http://127.0.0.1:${dashboard.port}/events?token=${dashboard.token}`, { firstChunk: true })
    assert.equal(events.headers['content-type'], 'text/event-stream')
    assert.match(events.body, /event: snapshot\ndata: \{/)
  })

  it('in Chromium: peers with their direct/relayed state, approve a pending request, screenshot', async () => {
    try {
      await access(CHROMIUM)
    } catch {
      assert.fail(`${CHROMIUM} not found: the dashboard's browser test needs Debian's chromium (apt-get install -y chromium; .ci/run installs it)`)
    }
    const { chromium } = await import('playwright-core')
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync']
    })
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
      const errors: string[] = []
      page.on('pageerror', err => errors.push(err.message))
      await page.goto(dashboard.url)
      await page.locator(`#peer-rows tr[data-peer="${peerR}"][data-path="direct"]`).waitFor({ timeout: 30_000 })
      await page.locator(`#peer-rows tr[data-peer="${peerC}"][data-path="relayed"]`).waitFor({ timeout: 30_000 })
      assert.match(await page.locator('#node-info').innerText(), new RegExp((await clientA.nodeInfo()).peerId))

      // D asks A for trust; the request appears live, with its reason as text
      const reason = 'D\'s agent <b>wants</b> in'
      const homeD = homes[3] ?? ''
      await runJson(['connect', (await runJson<{ addresses: string[] }>(['id', '--home', homes[0] ?? ''])).addresses.find(a => !a.includes('p2p-circuit')) ?? '', '--home', homeD])
      await runJson(['trust', 'request', (await clientA.nodeInfo()).peerId, '--reason', reason, '--home', homeD])
      const item = page.locator(`#pending-list li[data-peer="${peerD}"]`)
      await item.waitFor({ timeout: 30_000 })
      assert.equal(await item.locator('.reason').innerText(), reason)
      await mkdir(ARTIFACTS, { recursive: true })
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-pending.png'), fullPage: true })
      await item.locator('button.approve').click()
      await page.locator(`#trust-rows tr[data-peer="${peerD}"][data-state="trusted"]`).waitFor({ timeout: 30_000 })
      const entry = (await clientA.trustList()).find(e => e.peerId === peerD)
      assert.equal(entry?.state, 'trusted', 'approved over IPC')
      await page.locator(`#pending-list li[data-peer="${peerD}"]`).waitFor({ state: 'detached', timeout: 30_000 })

      // a guard block: a registered value sent to D is refused (LeakBlocked) and counted by category
      await clientA.guardProtect({ value: 'Project Nightingale closes at 4.2M', label: 'deal terms', category: 'legal/deal' })
      await assert.rejects(clientA.send({ to: peerD, service: 'notes', body: 'FYI: Project Nightingale closes at 4.2M', oneway: true }),
        (err: unknown) => errorCodeOf(err) === 'LeakBlocked')
      await page.locator('#guard-action-rows tr[data-action="block"][data-count="1"]').waitFor({ timeout: 30_000 })
      await page.locator('#guard-category-rows tr[data-category="legal/deal"][data-count="1"]').waitFor({ timeout: 30_000 })

      // a group with D: name, epoch, committer and members appear
      await waitFor('D trusting A', async () => (await runJson<Array<{ peerId: string, state: string }>>(['trust', 'list', '--home', homeD])).some(e => e.peerId === peerA && e.state === 'trusted') ? true : undefined)
      const { groupId } = await clientA.groupCreate('ops-room')
      const { epoch } = await clientA.groupAdd(groupId, peerD)
      const groupRow = page.locator(`#group-rows tr[data-group="${groupId}"][data-name="ops-room"][data-epoch="${epoch}"][data-members="2"]`)
      await groupRow.waitFor({ timeout: 30_000 })
      assert.match(await groupRow.innerText(), new RegExp(peerD))
      assert.match(await groupRow.innerText(), new RegExp(`ops-room\\s+${epoch}\\s+${peerA}`))

      // the posture review's counts: A runs with a 10-minute token lifetime (a medium finding)
      const posture = page.locator('#posture-status[data-medium]')
      await posture.waitFor({ timeout: 30_000 })
      const counts = await clientA.posture()
      assert.equal(counts.checking, false)
      assert.ok(!counts.checking && counts.findings.medium >= 1, 'the planted weakness is a finding')
      if (!counts.checking) {
        assert.equal(await posture.getAttribute('data-medium'), String(counts.findings.medium))
        assert.equal(await posture.innerText(), `${counts.findings.high} high, ${counts.findings.medium} medium, ${counts.findings.low} low`)
      }
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })
      assert.deepEqual(errors, [])
    } finally {
      await browser.close()
    }
  })
})
