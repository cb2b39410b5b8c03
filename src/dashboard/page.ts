/**
 * The dashboard's page: plain HTML, CSS and browser JavaScript, served by
 * the dashboard itself (no CDN, no build step). The script builds the DOM
 * with textContent only: peer-supplied text (trust reasons, audit data) is
 * never parsed as HTML.
 */

/** The HTML page; `token` (base64url) is put in the asset URLs */
export function pageHtml (token: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agentnet dashboard</title>
<link rel="stylesheet" href="/app.css?token=${token}">
<script src="/app.js?token=${token}" defer></script>
</head>
<body>
<header><h1>agentnet</h1><span id="conn" class="badge">connecting…</span><span id="updated"></span></header>
<main>
<section id="node"><h2>This node</h2><dl id="node-info"></dl></section>
<section id="peers"><h2>Peers <span id="peer-count" class="count"></span></h2>
<table><thead><tr><th>peer</th><th>path</th><th>transport</th><th>RTT</th><th>direction</th><th>address</th></tr></thead><tbody id="peer-rows"></tbody></table></section>
<section id="pending"><h2>Pending trust requests <span id="pending-count" class="count"></span></h2><ul id="pending-list"></ul></section>
<section id="trust"><h2>Trust</h2>
<table><thead><tr><th>peer</th><th>state</th><th>via</th><th>since</th><th>reason</th></tr></thead><tbody id="trust-rows"></tbody></table></section>
<section id="rejections"><h2>Messages and rejections</h2><dl id="metrics"></dl><table><thead><tr><th>code</th><th>count</th></tr></thead><tbody id="rejection-rows"></tbody></table></section>
<section id="guard"><h2>Leakage guard</h2><dl id="guard-info"></dl>
<table><thead><tr><th>action</th><th>count</th></tr></thead><tbody id="guard-action-rows"></tbody></table>
<h3>Blocked findings by category</h3>
<table><thead><tr><th>category</th><th>count</th></tr></thead><tbody id="guard-category-rows"></tbody></table></section>
<section id="groups"><h2>Groups <span id="group-count" class="count"></span></h2>
<table><thead><tr><th>name</th><th>epoch</th><th>committer</th><th>members</th></tr></thead><tbody id="group-rows"></tbody></table></section>
<section id="posture"><h2>Security posture <span id="posture-status" class="badge"></span></h2><dl id="posture-info"></dl>
<p class="empty">details: <code>agentnet doctor --verbose</code></p></section>
<section id="audit"><h2>Audit log <span id="audit-status" class="badge"></span></h2>
<table><thead><tr><th>seq</th><th>time</th><th>type</th><th>data</th></tr></thead><tbody id="audit-rows"></tbody></table></section>
</main>
</body>
</html>
`
}

export const APP_CSS = `
:root { color-scheme: light dark; --ok: #1a7f37; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; }
header { display: flex; gap: 1em; align-items: baseline; padding: .6em 1.2em; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.2em; margin: 0; }
#updated { color: var(--muted); font-size: .85em; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1em; padding: 1em 1.2em; }
section { border: 1px solid var(--line); border-radius: 6px; padding: .6em .9em; overflow-x: auto; }
h2 { font-size: 1em; margin: .2em 0 .6em; }
h3 { font-size: .9em; margin: .8em 0 .3em; color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); }
td.mono, dd.mono, .peer { font-family: ui-monospace, monospace; font-size: .85em; word-break: break-all; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; margin: 0 0 .6em; }
dt { color: var(--muted); }
dd { margin: 0; }
.badge { border-radius: 1em; padding: 0 .6em; font-size: .85em; border: 1px solid var(--line); }
.badge.ok, .direct { color: var(--ok); }
.badge.bad, .relayed { color: var(--bad); }
.count { color: var(--muted); font-weight: normal; }
ul { list-style: none; padding: 0; margin: 0; }
li.request { display: flex; gap: .6em; align-items: center; padding: .3em 0; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
li.request .reason { flex: 1 1 100%; white-space: pre-wrap; }
button { font: inherit; padding: .1em .8em; cursor: pointer; }
.empty { color: var(--muted); }
`

export const APP_JS = `'use strict'
const token = new URLSearchParams(location.search).get('token') || ''
const $ = (id) => document.getElementById(id)

function el (tag, text, className) {
  const e = document.createElement(tag)
  if (text !== undefined) e.textContent = String(text)
  if (className) e.className = className
  return e
}
function row (cells) {
  const tr = document.createElement('tr')
  for (const [text, className] of cells) tr.appendChild(el('td', text, className))
  return tr
}
function fill (tbody, rows, columns) {
  tbody.replaceChildren(...(rows.length ? rows : [row([['none', 'empty']])]))
  if (!rows.length) tbody.firstChild.firstChild.colSpan = columns
}
function when (ms) { return ms ? new Date(ms).toLocaleString() : '' }
function dl (target, pairs) {
  target.replaceChildren()
  for (const [k, v, className] of pairs) { target.appendChild(el('dt', k)); target.appendChild(el('dd', v, className)) }
}

async function decide (action, peer, button) {
  button.disabled = true
  const res = await fetch('/api/trust/' + action, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-agentnet-token': token },
    body: JSON.stringify({ peer })
  })
  if (!res.ok) { button.disabled = false; alert((await res.json()).error) }
}

function render (s) {
  $('updated').textContent = 'updated ' + new Date(s.time).toLocaleTimeString()
  const conn = $('conn')
  conn.textContent = s.running ? 'node running' : 'node not reachable: ' + (s.error || '')
  conn.className = 'badge ' + (s.running ? 'ok' : 'bad')
  if (s.node) {
    dl($('node-info'), [
      ['peer ID', s.node.peerId, 'mono'], ['version', s.node.version], ['reachability', s.node.reachability],
      ['relay reservations', s.node.relayReservations.join(', ') || 'none', 'mono'],
      ['addresses', s.node.addresses.join('\\n') || 'none', 'mono']
    ])
  }
  const peers = s.peers || []
  $('peer-count').textContent = '(' + peers.length + ')'
  fill($('peer-rows'), peers.map(p => {
    const rtt = typeof p.rttMs === 'number' ? p.rttMs.toFixed(1) + ' ms' : '…'
    const tr = row([[p.peerId, 'mono peer'], [p.direct ? 'direct' : 'relayed', p.direct ? 'direct' : 'relayed'], [p.transport], [rtt], [p.direction], [p.address, 'mono']])
    tr.dataset.peer = p.peerId
    tr.dataset.path = p.direct ? 'direct' : 'relayed'
    return tr
  }), 6)
  const pending = (s.trust && s.trust.pending) || []
  $('pending-count').textContent = '(' + pending.length + ')'
  $('pending-list').replaceChildren(...(pending.length ? pending.map(p => {
    const li = el('li', undefined, 'request')
    li.dataset.peer = p.peerId
    li.appendChild(el('span', p.peerId, 'peer'))
    li.appendChild(el('span', when(p.since)))
    const approve = el('button', 'approve'); approve.className = 'approve'
    approve.addEventListener('click', () => decide('approve', p.peerId, approve))
    const reject = el('button', 'reject'); reject.className = 'reject'
    reject.addEventListener('click', () => decide('reject', p.peerId, reject))
    li.appendChild(approve); li.appendChild(reject)
    li.appendChild(el('span', p.reason, 'reason'))
    return li
  }) : [el('li', 'none', 'empty')]))
  const entries = (s.trust && s.trust.entries) || []
  fill($('trust-rows'), entries.map(e => {
    const tr = row([[e.peerId, 'mono peer'], [e.state], [e.via], [when(e.since)], [e.reason]])
    tr.dataset.peer = e.peerId
    tr.dataset.state = e.state
    return tr
  }), 5)
  if (s.metrics) {
    dl($('metrics'), [['sent', s.metrics.sent], ['received', s.metrics.received], ['retries', s.metrics.retries], ['duplicates', s.metrics.duplicates]])
    const codes = Object.entries(s.metrics.rejected).sort((a, b) => b[1] - a[1])
    fill($('rejection-rows'), codes.map(([code, n]) => { const tr = row([[code], [n]]); tr.dataset.code = code; return tr }), 2)
  }
  if (s.guard) {
    dl($('guard-info'), [['checked', s.guard.checks], ['registered values', s.guard.registered]])
    const actions = Object.entries(s.guard.actions).filter(([a]) => a !== 'pass').concat([['pass', s.guard.actions.pass || 0]])
    fill($('guard-action-rows'), actions.map(([action, n]) => { const tr = row([[action], [n]]); tr.dataset.action = action; tr.dataset.count = String(n); return tr }), 2)
    const cats = Object.entries(s.guard.blockedByCategory).sort((a, b) => b[1] - a[1])
    fill($('guard-category-rows'), cats.map(([category, n]) => { const tr = row([[category, 'mono'], [n]]); tr.dataset.category = category; tr.dataset.count = String(n); return tr }), 2)
  }
  const groups = s.groups || []
  $('group-count').textContent = '(' + groups.length + ')'
  fill($('group-rows'), groups.map(g => {
    const tr = row([[g.name], [g.epoch], [g.committer, 'mono peer'], [g.members.length + ': ' + g.members.join(', '), 'mono']])
    tr.dataset.group = g.groupId
    tr.dataset.name = g.name
    tr.dataset.epoch = String(g.epoch)
    tr.dataset.members = String(g.members.length)
    return tr
  }), 4)
  const posture = s.posture
  const pstatus = $('posture-status')
  if (!posture || posture.checking) {
    pstatus.textContent = posture ? 'reviewing…' : 'unavailable'
    pstatus.className = 'badge'
  } else {
    const f = posture.findings
    pstatus.textContent = f.high + ' high, ' + f.medium + ' medium, ' + f.low + ' low'
    pstatus.className = 'badge ' + (f.high + f.medium > 0 ? 'bad' : 'ok')
    for (const k of ['high', 'medium', 'low', 'info']) pstatus.dataset[k] = String(f[k])
    dl($('posture-info'), [['high', f.high], ['medium', f.medium], ['low', f.low], ['info', f.info],
      ['baseline', posture.baseline + (posture.baseline === 'intact' ? ', ' + posture.drift + ' drift finding' + (posture.drift === 1 ? '' : 's') : '')],
      ['reviewed', when(posture.checkedAt)]].concat(posture.error ? [['error', posture.error]] : []))
  }
  const audit = s.audit
  const status = $('audit-status')
  status.textContent = audit ? (audit.ok ? 'chain ok, ' + audit.records + ' records' : 'chain DAMAGED') : 'unavailable'
  status.className = 'badge ' + (audit && audit.ok ? 'ok' : 'bad')
  fill($('audit-rows'), ((audit && audit.tail) || []).slice().reverse().map(r => row([[r.seq], [r.time], [r.type], [JSON.stringify(r.data), 'mono']])), 4)
}

const events = new EventSource('/events?token=' + encodeURIComponent(token))
events.addEventListener('snapshot', (e) => render(JSON.parse(e.data)))
events.addEventListener('error', () => { const c = $('conn'); c.textContent = 'dashboard disconnected, retrying…'; c.className = 'badge bad' })
`
