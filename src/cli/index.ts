/**
 * @packageDocumentation
 *
 * The `agentnet` command line. `start` runs a node in the foreground; every
 * other command is a thin client of the node's IPC socket through the SDK in
 * `src/client`. Exit codes: 0 success, 1 failure, 2 bad usage; failures print
 * one line on stderr (as `{"error":{...}}` on stdout too with `--json`).
 */

import { Command, CommanderError, Option } from 'commander'
import { pino } from 'pino'
import { loadConfig, profilePath } from '../config/index.ts'
import { connectClient, NodeNotRunningError } from '../client/index.ts'
import { CliError, collect, print, withClient, withCommon } from './common.ts'
import { errorCodeOf } from '../errors/index.ts'
import type { GlobalOptions } from './common.ts'
import { startDaemon } from '../daemon/index.ts'
import { createIdentity, ensureHome, loadIdentity, resolveHome } from '../identity/index.ts'
import { AddressBook } from '../addressbook/index.ts'
import { AUDIT_LOG_FILE, tailAuditLog, verifyAuditLog } from '../audit/index.ts'
import { join } from 'node:path'
import { registerPostureCommands } from './posture.ts'
import { didKeyFromPeerId } from '../did/did-key.ts'
import type { LogLevel, Profile } from '../config/index.ts'

export { CliError } from './common.ts'

export function buildProgram (): Command {
  const program = new Command()
  program
    .name('agentnet')
    .description('Peer-to-peer overlay network node for AI agents')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ outputError: () => {} })

  withCommon(program.command('init').description('create this node\'s identity (never overwrites one)'))
    .action(async (opts: GlobalOptions) => {
      const home = resolveHome(opts.home)
      const { peerId } = await createIdentity(home)
      print(opts.json, { peerId: peerId.toString(), home }, () => `created identity ${peerId.toString()} in ${home}`)
    })

  withCommon(program.command('start').description('run a node in the foreground (creates an identity if the home has none)'), false)
    .option('--config <file>', 'JSON config merged over the defaults')
    .option('--listen <multiaddr>', 'listen address (repeatable; replaces the configured list)', collect)
    .option('--bootstrap <multiaddr>', 'bootstrap peer /…/p2p/<id> (repeatable; replaces the configured list)', collect)
    .addOption(new Option('--profile <name>', 'set of defaults: default (an agent) or bootstrap (DHT server, relay, AutoNAT server)').choices(['default', 'bootstrap']).default('default'))
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .action(async (opts: GlobalOptions & { config?: string, listen?: string[], bootstrap?: string[], logLevel?: LogLevel, profile: Profile }) => {
      const home = resolveHome(opts.home)
      const config = await loadConfig({
        defaultsFile: profilePath(opts.profile),
        file: opts.config,
        overrides: { listen: opts.listen, bootstrap: opts.bootstrap, logLevel: opts.logLevel }
      })
      const logger = pino({ level: config.logLevel, base: undefined }, pino.destination({ dest: 2, sync: true }))
      const daemon = await startDaemon({ home, config, logger })
      logger.info({ peerId: daemon.node.peerId.toString(), addresses: daemon.node.addresses(), socket: daemon.socketPath }, 'agentnet node running')
      await new Promise<void>(resolve => {
        const shutdown = (signal: string): void => {
          logger.info({ signal }, 'shutting down')
          daemon.stop().then(resolve, (err: unknown) => {
            logger.error({ err }, 'shutdown failed')
            resolve()
          })
        }
        process.once('SIGINT', shutdown)
        process.once('SIGTERM', shutdown)
      })
    })

  withCommon(program.command('id').description('print this node\'s peer ID and addresses'))
    .action(async (opts: GlobalOptions) => {
      const home = resolveHome(opts.home)
      const { peerId } = await loadIdentity(home)
      let addresses: string[] = []
      try {
        addresses = (await withClient(opts, async client => client.nodeInfo())).addresses
      } catch (err) {
        if (!(err instanceof NodeNotRunningError)) {
          throw err
        }
      }
      const did = didKeyFromPeerId(peerId)
      print(opts.json, { peerId: peerId.toString(), did, addresses }, () => [peerId.toString(), did, ...addresses].join('\n'))
    })

  withCommon(program.command('status').description('show the running node\'s addresses and connections'))
    .action(async (opts: GlobalOptions) => {
      const status = await withClient(opts, async client => client.status())
      print(opts.json, status, () => [
        `peer ID:     ${status.peerId}`,
        'addresses:',
        ...status.addresses.map(a => `  ${a}`),
        `connections: ${status.connections.length}`,
        ...status.connections.map(c => `  ${c.peerId} ${c.address} ${c.direct ? 'direct' : 'relayed'} ${c.direction}`)
      ].join('\n'))
    })

  withCommon(program.command('peers').description('list connected peers'))
    .action(async (opts: GlobalOptions) => {
      const peers = await withClient(opts, async client => client.peersList())
      print(opts.json, peers, () => peers.length === 0 ? 'no peers' : peers.map(p => `${p.peerId}\n${p.addresses.map(a => `  ${a}`).join('\n')}`).join('\n'))
    })

  withCommon(program.command('connect').description('connect to a peer').argument('<target>', 'multiaddr or peer ID'))
    .action(async (target: string, opts: GlobalOptions) => {
      const result = await withClient(opts, async client => client.connect(target))
      print(opts.json, result, () => `connected to ${result.peerId} at ${result.address}`)
    })

  withCommon(program.command('ping').description('measure the round-trip time to a peer').argument('<target>', 'multiaddr or peer ID'))
    .action(async (target: string, opts: GlobalOptions) => {
      const result = await withClient(opts, async client => client.ping(target))
      print(opts.json, result, () => `${result.peerId}: ${result.rttMs} ms`)
    })

  withCommon(program.command('send').description('send a message to a peer\'s service and print the reply'))
    .argument('<peer>', 'peer ID or agentnet:// URL')
    .argument('<service>', 'service name')
    .argument('<text>', 'message body (sent as UTF-8 text)')
    .option('--oneway', 'do not wait for a reply, only for the receiving node to accept it')
    .option('--timeout <seconds>', 'give up after this many seconds (retries included)', parseSeconds)
    .action(async (peer: string, service: string, text: string, opts: GlobalOptions & { oneway?: boolean, timeout?: number }) => {
      const result = await withClient(opts, async client => client.send({
        to: peer,
        service,
        body: text,
        oneway: opts.oneway === true,
        timeoutMs: opts.timeout
      }))
      const { from, id } = result
      const out = result.accepted === true ? { from, id, accepted: true } : { from, id, body: result.body ?? result.bodyBase64 }
      print(opts.json, out, () => result.accepted === true ? `accepted by ${from}` : typeof out.body === 'string' ? out.body : JSON.stringify(out.body))
    })

  withCommon(program.command('listen').description('serve a service: print inbound messages as NDJSON until interrupted'), false)
    .argument('<service>', 'service name to register')
    .option('--echo', 'answer each request with its own body')
    .action(async (service: string, opts: GlobalOptions & { echo?: boolean }) => {
      const client = await connectClient({ home: resolveHome(opts.home) })
      client.on('message', message => {
        process.stdout.write(JSON.stringify(message) + '\n')
        if (message.kind !== 'request') {
          return
        }
        const answer = opts.echo === true
          ? { id: message.id, ...(message.bodyBase64 !== undefined ? { bodyBase64: message.bodyBase64 } : { body: message.body }) }
          : { id: message.id, error: { code: 'NotImplemented', message: 'this listener does not answer requests' } }
        client.reply(answer).catch((err: Error) => { process.stderr.write(`agentnet: reply failed: ${err.message}\n`) })
      })
      await client.registerService(service)
      process.stderr.write(`listening on service ${service}\n`)
      await new Promise<void>((resolve, reject) => {
        client.once('close', () => { reject(new CliError('the node closed the connection', 'ConnectionClosed')) })
        process.once('SIGINT', () => { resolve() })
        process.once('SIGTERM', () => { resolve() })
      })
      client.close()
    })

  withCommon(program.command('lookup').description('fetch and verify a peer\'s agent card from the DHT').argument('<peer>', 'peer ID or petname'))
    .action(async (peer: string, opts: GlobalOptions) => {
      const card = await withClient(opts, async client => client.lookupCard(peer))
      print(opts.json, card, () => [
        `${card.peerId}  (seq ${card.seq})`,
        `name:     ${card.name}`,
        `services: ${card.services.join(', ')}`,
        `metadata: ${JSON.stringify(card.metadata)}`
      ].join('\n'))
    })

  const alias = program.command('alias').description('petnames: local names for peer IDs, usable wherever a peer is expected')
  withCommon(alias.command('add').description('name a peer').argument('<name>').argument('<peerId>'))
    .action(async (name: string, peerId: string, opts: GlobalOptions) => {
      const added = await new AddressBook(await ensureHomeDir(opts)).add(name, peerId)
      print(opts.json, added, () => `${added.name} → ${added.peerId}`)
    })
  withCommon(alias.command('list').description('list petnames'))
    .action(async (opts: GlobalOptions) => {
      const aliases = await new AddressBook(resolveHome(opts.home)).list()
      print(opts.json, aliases, () => aliases.length === 0 ? 'no petnames' : aliases.map(a => `${a.name}\t${a.peerId}`).join('\n'))
    })
  withCommon(alias.command('rm').description('forget a petname').argument('<name>'))
    .action(async (name: string, opts: GlobalOptions) => {
      const removed = await new AddressBook(resolveHome(opts.home)).remove(name)
      if (!removed) {
        throw new CliError(`no petname ${JSON.stringify(name)}`, 'NoSuchAlias')
      }
      print(opts.json, { name, removed }, () => `removed ${name}`)
    })

  const trust = program.command('trust').description('who may talk to this node\'s agents (private by default)')
  withCommon(trust.command('request').description('ask a peer to trust this node').argument('<peer>', 'peer ID or petname'))
    .requiredOption('--reason <text>', 'justification shown to the peer\'s operator (at most 1 KiB)')
    .action(async (peer: string, opts: GlobalOptions & { reason: string }) => {
      const result = await withClient(opts, async client => client.trustRequest(peer, opts.reason))
      print(opts.json, result, () => result.state === 'trusted' ? `${result.peerId} trusts us (mutual request)` : `request sent to ${result.peerId}; waiting for its approval`)
    })
  withCommon(trust.command('pending').description('requests waiting for a decision'))
    .action(async (opts: GlobalOptions) => {
      const pending = await withClient(opts, async client => client.trustPending())
      print(opts.json, pending, () => pending.length === 0 ? 'no pending requests' : pending.map(p => `${p.peerId}\t${new Date(p.since).toISOString()}\t${p.reason}`).join('\n'))
    })
  withCommon(trust.command('approve').description('trust a peer that asked').argument('<peer>', 'peer ID or petname'))
    .action(async (peer: string, opts: GlobalOptions) => {
      const result = await withClient(opts, async client => client.trustApprove(peer))
      print(opts.json, result, () => `${result.peerId} is ${result.state}${result.delivered ? '' : ` (not told: ${result.error ?? 'unreachable'})`}`)
    })
  withCommon(trust.command('reject').description('refuse a peer\'s request').argument('<peer>', 'peer ID or petname'))
    .option('--reason <text>', 'told to the peer')
    .action(async (peer: string, opts: GlobalOptions & { reason?: string }) => {
      const result = await withClient(opts, async client => client.trustReject(peer, opts.reason))
      print(opts.json, result, () => `${result.peerId} is ${result.state}`)
    })
  withCommon(trust.command('revoke').description('withdraw trust: tells the peer, closes its connections, revokes its tokens').argument('<peer>', 'peer ID or petname'))
    .option('--reason <text>', 'told to the peer')
    .action(async (peer: string, opts: GlobalOptions & { reason?: string }) => {
      const result = await withClient(opts, async client => client.trustRevoke(peer, opts.reason))
      print(opts.json, result, () => `${result.peerId} revoked; ${result.closedConnections} connection(s) closed`)
    })
  withCommon(trust.command('list').description('every peer the trust store knows'))
    .action(async (opts: GlobalOptions) => {
      const entries = await withClient(opts, async client => client.trustList())
      print(opts.json, entries, () => entries.length === 0 ? 'no peers' : entries.map(e => `${e.peerId}\t${e.state}\t${new Date(e.since).toISOString()}\t${e.reason}`).join('\n'))
    })

  const invite = program.command('invite').description('invite codes: trust whoever presents the code')
  withCommon(invite.command('create').description('create a signed invite code'))
    .option('--ttl <duration>', 'lifetime: 90s, 30m, 12h, 7d (default 1d)', parseDuration)
    .option('--uses <n>', 'how many peers may use it (default 1)', parseUses)
    .action(async (opts: GlobalOptions & { ttl?: number, uses?: number }) => {
      const created = await withClient(opts, async client => client.inviteCreate({ ttlMs: opts.ttl, uses: opts.uses }))
      print(opts.json, { code: created.code, expiresAt: created.expiresAt, uses: created.uses }, () => created.code)
    })
  withCommon(invite.command('accept').description('connect to the inviter and present its code').argument('<code>'))
    .action(async (code: string, opts: GlobalOptions) => {
      const accepted = await withClient(opts, async client => client.inviteAccept(code))
      print(opts.json, accepted, () => `trusted by and trusting ${accepted.peerId}`)
    })

  const audit = program.command('audit').description('the hash-chained audit log of security events (works whether or not the node runs)')
  withCommon(audit.command('verify').description('check the whole chain; names the first bad record'))
    .action(async (opts: GlobalOptions) => {
      const home = resolveHome(opts.home)
      const result = await verifyAuditLog(join(home, AUDIT_LOG_FILE))
      print(opts.json, result, () => result.ok
        ? `audit log ok: ${result.records} records`
        : `audit log damaged at line ${result.firstBad?.line ?? '?'}${result.firstBad?.seq != null ? ` (seq ${result.firstBad.seq})` : ''}: ${result.firstBad?.reason ?? 'unknown'}`)
      if (!result.ok) {
        process.exitCode = 1
        throw new SilentExit(1)
      }
    })
  withCommon(audit.command('tail').description('print the last records'))
    .option('-n, --lines <n>', 'how many records', parseCount, 20)
    .action(async (opts: GlobalOptions & { lines: number }) => {
      const home = resolveHome(opts.home)
      const records = await tailAuditLog(join(home, AUDIT_LOG_FILE), opts.lines)
      if (opts.json === true) {
        print(true, records, () => '')
      } else {
        process.stdout.write(records.map(r => `${r.seq}\t${r.time}\t${r.type}\t${JSON.stringify(r.data)}`).join('\n') + (records.length > 0 ? '\n' : ''))
      }
    })

  const token = program.command('token').description('session tokens this node issues')
  withCommon(token.command('revoke').description('invalidate every session token issued to a peer').argument('<peer>', 'peer ID'))
    .action(async (peer: string, opts: GlobalOptions) => {
      const result = await withClient(opts, async client => client.revokeTokens(peer))
      print(opts.json, result, () => `revoked every token issued to ${result.peerId}`)
    })

  registerPostureCommands(program)

  return program
}

async function ensureHomeDir (opts: GlobalOptions): Promise<string> {
  const home = resolveHome(opts.home)
  await ensureHome(home)
  return home
}

/** `90s`, `30m`, `12h`, `7d`, or plain seconds, to ms */
export function parseDuration (value: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(value.trim())
  const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
  if (match == null) {
    throw new CliError(`invalid duration ${JSON.stringify(value)}: use e.g. 90s, 30m, 12h, 7d`, 'UsageError', 2)
  }
  const ms = Math.round(Number(match[1]) * unit[(match[2] ?? 's') as keyof typeof unit])
  if (ms < 1000) {
    throw new CliError(`duration ${JSON.stringify(value)} is shorter than a second`, 'UsageError', 2)
  }
  return ms
}

function parseUses (value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 1000) {
    throw new CliError(`--uses must be an integer from 1 to 1000, got ${JSON.stringify(value)}`, 'UsageError', 2)
  }
  return n
}

function parseCount (value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 10_000) {
    throw new CliError(`-n must be an integer from 1 to 10000, got ${JSON.stringify(value)}`, 'UsageError', 2)
  }
  return n
}

/** Ends a command with an exit code after it printed its own result */
export class SilentExit extends Error {
  readonly exitCode: number
  constructor (exitCode: number) {
    super('')
    this.name = 'SilentExit'
    this.exitCode = exitCode
  }
}

function parseSeconds (value: string): number {
  const seconds = Number(value)
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new CliError(`--timeout must be a positive number of seconds, got ${JSON.stringify(value)}`, 'UsageError', 2)
  }
  return Math.round(seconds * 1000)
}

/** Run the CLI; resolves to the process exit code */
export async function main (argv: string[]): Promise<number> {
  const program = buildProgram()
  const json = argv.includes('--json')
  try {
    await program.parseAsync(argv, { from: 'user' })
    return 0
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return 0
      }
      return reportError(json, err.message.replace(/^error: /, ''), 'UsageError', 2)
    }
    if (err instanceof SilentExit) {
      return err.exitCode
    }
    const code = errorCodeOf(err) ?? 'InternalError'
    return reportError(json, err instanceof Error ? err.message : String(err), code, err instanceof CliError ? err.exitCode : 1)
  }
}

function reportError (json: boolean, message: string, code: string, exitCode: number): number {
  const line = message.split('\n')[0] ?? message
  process.stderr.write(`agentnet: ${line}\n`)
  if (json) {
    process.stdout.write(JSON.stringify({ error: { code, message: line } }) + '\n')
  }
  return exitCode
}
