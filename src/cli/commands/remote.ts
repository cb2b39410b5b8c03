/**
 * Thin commands: each is one or two SDK calls to the running node and a
 * print. Imports only the SDK (no libp2p), so they start in tens of ms.
 */

import { readFile } from 'node:fs/promises'
import { connectClient } from '../../client/index.ts'
import { CliError, homeOf, print, untilInterrupted, withClient } from '../common.ts'
import type { ReceivedMessage, ReplyParams, SendParams } from '../../client/index.ts'
import type { GlobalOptions } from '../common.ts'

export async function status (opts: GlobalOptions): Promise<void> {
  const status = await withClient(opts, async client => client.status())
  print(opts.json, status, () => [
    `peer ID:      ${status.peerId}`,
    `reachability: ${status.reachability}`,
    ...(status.relayReservations.length > 0 ? [`relays:       ${status.relayReservations.join(', ')}`] : []),
    'addresses:',
    ...status.addresses.map(a => `  ${a}`),
    `connections:  ${status.connections.length}`,
    ...status.connections.map(c => `  ${c.peerId} ${c.address} ${c.direct ? 'direct' : 'relayed'} ${c.direction}`)
  ].join('\n'))
}

export async function peers (opts: GlobalOptions): Promise<void> {
  const peers = await withClient(opts, async client => client.peersList())
  print(opts.json, peers, () => peers.length === 0 ? 'no peers' : peers.map(p => `${p.peerId}\n${p.addresses.map(a => `  ${a}`).join('\n')}`).join('\n'))
}

export async function connect (target: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.connect(target))
  print(opts.json, result, () => `connected to ${result.peerId} at ${result.address}`)
}

export async function ping (target: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.ping(target))
  print(opts.json, result, () => `${result.peerId}: ${result.rttMs} ms`)
}

interface SendOptions extends GlobalOptions {
  file?: string
  jsonBody?: boolean
  binary?: boolean
  oneway?: boolean
  timeout?: number
}

async function readStdin (): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/** The body params for msg.send from the command line's text, stdin or file */
export function bodyParams (content: { text?: string, bytes?: Buffer }, opts: { jsonBody?: boolean, binary?: boolean }): Pick<SendParams, 'body' | 'bodyBase64'> {
  if (opts.jsonBody === true) {
    const text = content.text ?? strictUtf8.decode(content.bytes ?? Buffer.alloc(0))
    try {
      return { body: JSON.parse(text) }
    } catch (err) {
      throw new CliError(`--json-body: the body is not JSON (${(err as Error).message})`, 'UsageError', 2)
    }
  }
  if (content.text != null) return { body: content.text }
  const bytes = content.bytes ?? Buffer.alloc(0)
  if (opts.binary !== true) {
    try {
      return { body: strictUtf8.decode(bytes) }
    } catch {}
  }
  return { bodyBase64: bytes.toString('base64') }
}

export async function send (peer: string, serviceArg: string | undefined, bodyArg: string | undefined, opts: SendOptions): Promise<void> {
  let service = serviceArg
  let bodyText = bodyArg
  const url = /^agentnet:\/\/([^/]+)\/(.+)$/.exec(peer)
  if (url != null) {
    // the URL names the service: the next argument is the body
    if (bodyText != null) {
      throw new CliError(`too many arguments: ${JSON.stringify(peer)} already names the service; give only the body`, 'UsageError', 2)
    }
    bodyText = service
    service = undefined
  } else if (service == null) {
    throw new CliError('missing the service: agentnet send <peer> <service> [body|-] (or agentnet send agentnet://<peer>/<service> [body|-])', 'UsageError', 2)
  }
  const sources = [bodyText != null ? 'a body argument' : undefined, opts.file != null ? '--file' : undefined].filter(s => s != null)
  if (sources.length > 1) {
    throw new CliError('give the body either as an argument (or - for stdin) or with --file, not both', 'UsageError', 2)
  }
  let content: { text?: string, bytes?: Buffer }
  if (opts.file != null) {
    content = { bytes: await readFile(opts.file) }
  } else if (bodyText === '-') {
    content = { bytes: await readStdin() }
  } else if (bodyText != null) {
    content = { text: bodyText }
  } else {
    throw new CliError('missing the body: give it as an argument, - to read stdin, or --file PATH', 'UsageError', 2)
  }
  const body = bodyParams(content, opts)
  const result = await withClient(opts, async client => {
    let to = peer
    if (peer.startsWith('/')) {
      // a multiaddr: connect there, then address the peer it named (or turned out to be)
      const connected = await client.connect(peer)
      to = connected.peerId
    }
    const params: SendParams = { to, ...body, oneway: opts.oneway === true }
    if (service != null) params.service = service
    if (opts.timeout != null) params.timeoutMs = opts.timeout
    return client.send(params)
  })
  const { from, id } = result
  if (opts.json === true) {
    const out = result.accepted === true
      ? { from, id, accepted: true }
      : result.bodyBase64 != null ? { from, id, bodyBase64: result.bodyBase64 } : { from, id, body: result.body }
    print(true, out, () => '')
    return
  }
  if (result.accepted === true) {
    process.stdout.write(`accepted by ${from}\n`)
  } else if (result.bodyBase64 != null) {
    process.stdout.write(Buffer.from(result.bodyBase64, 'base64'))
  } else if (typeof result.body === 'string') {
    // a body that came from stdin or a file is data: its reply goes out byte for byte;
    // a text argument is a person typing: the reply ends with a newline
    const raw = content.bytes != null && opts.jsonBody !== true
    process.stdout.write(result.body + (!raw && !result.body.endsWith('\n') ? '\n' : ''))
  } else {
    process.stdout.write(JSON.stringify(result.body) + '\n')
  }
}

/** The bytes of a received body, as a command's stdin sees them */
function bodyBytes (message: ReceivedMessage): Buffer {
  if (message.bodyBase64 != null) return Buffer.from(message.bodyBase64, 'base64')
  if (typeof message.body === 'string') return Buffer.from(message.body, 'utf8')
  return Buffer.from(JSON.stringify(message.body ?? null), 'utf8')
}

/** Run `command` in a shell with the body on stdin; its stdout is the reply, a non-zero exit an error reply */
async function execReply (command: string, message: ReceivedMessage): Promise<ReplyParams> {
  const { spawn } = await import('node:child_process')
  const child = spawn(command, {
    shell: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, AGENTNET_FROM: message.from, AGENTNET_SERVICE: message.service, AGENTNET_REQUEST_ID: message.requestId, AGENTNET_CONTENT_TYPE: message.contentType }
  })
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (d: Buffer) => out.push(d))
  child.stderr.on('data', (d: Buffer) => err.push(d))
  child.stdin.on('error', () => {})
  child.stdin.end(bodyBytes(message))
  const timer = setTimeout(() => child.kill('SIGKILL'), 55_000)
  const code = await new Promise<number>(resolve => {
    child.once('error', () => { resolve(127) })
    child.once('close', (c, signal) => { resolve(c ?? (signal != null ? 128 : 1)) })
  })
  clearTimeout(timer)
  if (code !== 0) {
    const lastLine = Buffer.concat(err).toString('utf8').trim().split('\n').pop() ?? ''
    return { id: message.id, error: { code: 'ExecFailed', message: `the service's command exited with status ${code}${lastLine !== '' ? `: ${lastLine.slice(0, 500)}` : ''}` } }
  }
  const { body, bodyBase64 } = bodyParams({ bytes: Buffer.concat(out) }, {})
  return bodyBase64 != null ? { id: message.id, bodyBase64 } : { id: message.id, body }
}

export async function listen (service: string, opts: GlobalOptions & { echo?: boolean, exec?: string }): Promise<void> {
  if (opts.echo === true && opts.exec != null) {
    throw new CliError('choose --echo or --exec, not both', 'UsageError', 2)
  }
  const client = await connectClient({ home: homeOf(opts) })
  client.on('message', message => {
    process.stdout.write(JSON.stringify(message) + '\n')
    if (message.kind !== 'request') {
      return
    }
    const answer: Promise<ReplyParams> = opts.exec != null
      ? execReply(opts.exec, message)
      : Promise.resolve(opts.echo === true
        ? { id: message.id, ...(message.bodyBase64 !== undefined ? { bodyBase64: message.bodyBase64 } : { body: message.body }) }
        : { id: message.id, error: { code: 'NotImplemented', message: 'this listener does not answer requests' } })
    answer.then(async reply => { await client.reply(reply) }).catch((err: Error) => { process.stderr.write(`agentnet: reply failed: ${err.message}\n`) })
  })
  await client.registerService(service)
  process.stderr.write(`listening on service ${service}\n`)
  await untilInterrupted(client)
}

export async function lookup (peer: string, opts: GlobalOptions): Promise<void> {
  const card = await withClient(opts, async client => client.lookupCard(peer))
  print(opts.json, card, () => [
    `${card.peerId}  (seq ${card.seq})`,
    `name:     ${card.name}`,
    `services: ${card.services.join(', ')}`,
    `metadata: ${JSON.stringify(card.metadata)}`
  ].join('\n'))
}

export async function trustRequest (peer: string, opts: GlobalOptions & { reason: string }): Promise<void> {
  const result = await withClient(opts, async client => client.trustRequest(peer, opts.reason))
  print(opts.json, result, () => result.state === 'trusted' ? `${result.peerId} trusts us (mutual request)` : `request sent to ${result.peerId}; waiting for its approval`)
}

export async function trustPending (opts: GlobalOptions): Promise<void> {
  const pending = await withClient(opts, async client => client.trustPending())
  print(opts.json, pending, () => pending.length === 0 ? 'no pending requests' : pending.map(p => `${p.peerId}\t${new Date(p.since).toISOString()}\t${p.reason}`).join('\n'))
}

export async function trustApprove (peer: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.trustApprove(peer))
  print(opts.json, result, () => `${result.peerId} is ${result.state}${result.delivered ? '' : ` (not told: ${result.error ?? 'unreachable'})`}`)
}

export async function trustReject (peer: string, opts: GlobalOptions & { reason?: string }): Promise<void> {
  const result = await withClient(opts, async client => client.trustReject(peer, opts.reason))
  print(opts.json, result, () => `${result.peerId} is ${result.state}`)
}

export async function trustRevoke (peer: string, opts: GlobalOptions & { reason?: string }): Promise<void> {
  const result = await withClient(opts, async client => client.trustRevoke(peer, opts.reason))
  print(opts.json, result, () => `${result.peerId} revoked; ${result.closedConnections} connection(s) closed`)
}

export async function trustList (opts: GlobalOptions): Promise<void> {
  const entries = await withClient(opts, async client => client.trustList())
  print(opts.json, entries, () => entries.length === 0 ? 'no peers' : entries.map(e => `${e.peerId}\t${e.state}\t${new Date(e.since).toISOString()}\t${e.reason}`).join('\n'))
}

export async function inviteCreate (opts: GlobalOptions & { ttl?: number, uses?: number }): Promise<void> {
  const created = await withClient(opts, async client => client.inviteCreate({ ttlMs: opts.ttl, uses: opts.uses }))
  print(opts.json, { code: created.code, expiresAt: created.expiresAt, uses: created.uses }, () => created.code)
}

export async function inviteAccept (code: string, opts: GlobalOptions): Promise<void> {
  const accepted = await withClient(opts, async client => client.inviteAccept(code))
  print(opts.json, accepted, () => `trusted by and trusting ${accepted.peerId}`)
}

export async function tokenRevoke (peer: string, opts: GlobalOptions): Promise<void> {
  const result = await withClient(opts, async client => client.revokeTokens(peer))
  print(opts.json, result, () => `revoked every token issued to ${result.peerId}`)
}
