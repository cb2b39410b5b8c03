/**
 * @packageDocumentation
 *
 * The `agentnet` command line. `start` runs a node; every other command is a
 * thin client of the node's IPC socket through the SDK in `src/client`. This
 * module only declares the commands: each action imports its implementation
 * when it runs, so `agentnet send …` never loads libp2p (only `start` and
 * `init` do). Exit codes: 0 success, 1 failure, 2 bad usage; failures print
 * one line on stderr (as `{"error":{...}}` on stdout too with `--json`).
 */

import { CliError, collect, SilentExit, withCommon } from './common.ts'
import type { Command, CommanderError } from 'commander'

export { CliError, SilentExit } from './common.ts'

/** The package version (a unit test keeps it equal to package.json's) */
export const VERSION = '0.1.0'

type Action = (...args: any[]) => Promise<void>

/** An action whose implementation is imported when it runs */
function lazy (load: () => Promise<Record<string, unknown>>, name: string): Action {
  return async (...args: unknown[]) => {
    const module = await load()
    const fn = module[name] as Action
    await fn(...args)
  }
}

const remote = async (): Promise<Record<string, unknown>> => import('./commands/remote.ts')
const lifecycle = async (): Promise<Record<string, unknown>> => import('./commands/lifecycle.ts')
const local = async (): Promise<Record<string, unknown>> => import('./commands/local.ts')
const groupCommands = async (): Promise<Record<string, unknown>> => import('./commands/groups.ts')
const guardCommands = async (): Promise<Record<string, unknown>> => import('./commands/guard.ts')
const metricsCommand = async (): Promise<Record<string, unknown>> => import('./commands/metrics.ts')
const redteamCommands = async (): Promise<Record<string, unknown>> => import('./commands/redteam.ts')

/** The full command definitions (commander is loaded only when they are needed) */
export async function buildProgram (): Promise<Command> {
  const { Command, Option } = await import('commander')
  const program = new Command()
  program
    .name('agentnet')
    .description('Peer-to-peer overlay network node for AI agents')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ outputError: () => {} })

  withCommon(program.command('init').description('create this node\'s identity (never overwrites one)'))
    .action(lazy(lifecycle, 'init'))

  withCommon(program.command('start').description('run a node (in the foreground, or in the background with --detach)'))
    .option('--detach', 'run in the background (log to <home>/agentnet.log); return once the node is ready and print its peer ID and addresses')
    .option('--new-identity', 'create a new identity although the home holds trust or audit state of a previous one (its identity.key is gone): the node becomes a new peer')
    .option('--timeout <seconds>', 'with --detach: how long to wait for the node to be ready (default 60)', parseSeconds)
    .option('--config <file>', 'JSON config merged over the defaults')
    .option('--listen <multiaddr>', 'listen address (repeatable; replaces the configured list)', collect)
    .option('--bootstrap <multiaddr>', 'bootstrap peer /…/p2p/<id> (repeatable; replaces the configured list)', collect)
    .addOption(new Option('--profile <name>', 'set of defaults: default (an agent) or bootstrap (DHT server, relay, AutoNAT server)').choices(['default', 'bootstrap']).default('default'))
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
    .addOption(new Option('--log-format <format>', 'log lines: pretty (default on a terminal) or json (default otherwise)').choices(['pretty', 'json']))
    .action(lazy(lifecycle, 'start'))

  withCommon(program.command('stop').description('stop the running node cleanly and wait until it exited'))
    .option('--timeout <seconds>', 'how long to wait for the exit (default 30)', parseSeconds)
    .action(lazy(lifecycle, 'stop'))

  withCommon(program.command('wait').description('wait until the node is ready: listening and, with bootstrap peers, in the DHT'))
    .option('--timeout <seconds>', 'give up after this many seconds (default 30)', parseSeconds)
    .action(lazy(lifecycle, 'wait'))

  withCommon(program.command('id').description('print this node\'s peer ID and addresses'))
    .action(lazy(lifecycle, 'id'))

  withCommon(program.command('status').description('show the running node\'s addresses, reachability and connections'))
    .action(lazy(remote, 'status'))

  withCommon(program.command('peers').description('list connected peers'))
    .action(lazy(remote, 'peers'))

  withCommon(program.command('connect').description('connect to a peer').argument('<target>', 'multiaddr, peer ID or petname'))
    .action(lazy(remote, 'connect'))

  withCommon(program.command('ping').description('measure the round-trip time to a peer').argument('<target>', 'multiaddr, peer ID or petname'))
    .action(lazy(remote, 'ping'))

  withCommon(program.command('send').description('send a message to a peer\'s service and print the reply'))
    .usage('<peer> <service> [body|-] [options]  |  agentnet://<peer>/<service> [body|-]')
    .argument('<peer>', 'peer ID, petname, multiaddr …/p2p/<id>, or agentnet://<peer>/<service>')
    .argument('[service]', 'service name (not with an agentnet:// URL that names one)')
    .argument('[body]', 'message body as text; - reads it from stdin')
    .option('--file <path>', 'read the body from a file (bytes that are not UTF-8 travel as binary)')
    .option('--json-body', 'the body is JSON: send it as a JSON value')
    .option('--binary', 'send the body (from stdin or --file) as bytes, even if it is text')
    .option('--oneway', 'do not wait for a reply, only for the receiving node to accept it')
    .option('--timeout <seconds>', 'give up after this many seconds (retries included)', parseSeconds)
    .action(lazy(remote, 'send'))

  withCommon(program.command('listen').description('serve a service: print inbound messages as NDJSON until interrupted'), false)
    .argument('<service>', 'service name to register')
    .option('--echo', 'answer each request with its own body')
    .option('--exec <command>', 'answer each request with the stdout of a shell command run with the body on stdin (exit status ≠ 0: an error reply)')
    .action(lazy(remote, 'listen'))

  withCommon(program.command('lookup').description('fetch and verify a peer\'s agent card from the DHT').argument('<peer>', 'peer ID or petname'))
    .action(lazy(remote, 'lookup'))

  const alias = program.command('alias').description('petnames: local names for peer IDs, usable wherever a peer is expected')
  withCommon(alias.command('add').description('name a peer').argument('<name>').argument('<peerId>'))
    .option('--force', 'replace a petname that names another peer')
    .action(lazy(local, 'aliasAdd'))
  withCommon(alias.command('list').description('list petnames'))
    .action(lazy(local, 'aliasList'))
  withCommon(alias.command('rm').description('forget a petname').argument('<name>'))
    .action(lazy(local, 'aliasRemove'))

  const trust = program.command('trust').description('who may talk to this node\'s agents (private by default)')
  withCommon(trust.command('request').description('ask a peer to trust this node').argument('<peer>', 'peer ID or petname'))
    .requiredOption('--reason <text>', 'justification shown to the peer\'s operator (at most 1 KiB)')
    .action(lazy(remote, 'trustRequest'))
  withCommon(trust.command('pending').description('requests waiting for a decision'))
    .action(lazy(remote, 'trustPending'))
  withCommon(trust.command('approve').description('trust a peer that asked').argument('<peer>', 'peer ID or petname'))
    .action(lazy(remote, 'trustApprove'))
  withCommon(trust.command('reject').description('refuse a peer\'s request').argument('<peer>', 'peer ID or petname'))
    .option('--reason <text>', 'told to the peer')
    .action(lazy(remote, 'trustReject'))
  withCommon(trust.command('revoke').description('withdraw trust: tells the peer, closes its connections, revokes its tokens').argument('<peer>', 'peer ID or petname'))
    .option('--reason <text>', 'told to the peer')
    .action(lazy(remote, 'trustRevoke'))
  withCommon(trust.command('list').description('every peer the trust store knows'))
    .action(lazy(remote, 'trustList'))

  const invite = program.command('invite').description('invite codes: trust whoever presents the code')
  withCommon(invite.command('create').description('create a signed invite code'))
    .option('--ttl <duration>', 'lifetime: 90s, 30m, 12h, 7d (default 1d)', parseDuration)
    .option('--uses <n>', 'how many peers may use it (default 1)', parseUses)
    .action(lazy(remote, 'inviteCreate'))
  withCommon(invite.command('accept').description('connect to the inviter and present its code').argument('<code>'))
    .action(lazy(remote, 'inviteAccept'))

  const audit = program.command('audit').description('the hash-chained audit log of security events (works whether or not the node runs)')
  withCommon(audit.command('verify').description('check the whole chain; names the first bad record'))
    .action(lazy(local, 'auditVerify'))
  withCommon(audit.command('tail').description('print the last records'))
    .option('-n, --lines <n>', 'how many records', parseCount, 20)
    .action(lazy(local, 'auditTail'))

  const token = program.command('token').description('session tokens this node issues')
  withCommon(token.command('revoke').description('invalidate every session token issued to a peer').argument('<peer>', 'peer ID or petname'))
    .action(lazy(remote, 'tokenRevoke'))

  const guard = program.command('guard').description('the leakage guard: what this agent holds, and what may go to whom')
  withCommon(guard.command('protect').description('register a value that must not travel freely (the value: an argument, - for stdin, or --value-file)').argument('[value]'))
    .requiredOption('--label <label>', 'how findings name it, e.g. visa')
    .requiredOption('--category <category>', 'e.g. finance/card, pii/dob')
    .option('--scope <scope>', 'a task or session: guard unprotect --scope drops it all at once')
    .option('--ttl <duration>', 'expire after e.g. 90s, 30m, 12h', parseDuration)
    .option('--persist', 'keep it across restarts (in a 0600 file in the home)')
    .option('--value-file <file>', 'read the value from a file')
    .action(lazy(guardCommands, 'guardProtect'))
  withCommon(guard.command('unprotect').description('forget a value by id, or every value of a scope').argument('[id]'))
    .option('--scope <scope>', 'every value of this scope')
    .action(lazy(guardCommands, 'guardUnprotect'))
  withCommon(guard.command('list').description('registered values: ids, labels, categories, scopes (never the values)'))
    .option('--scope <scope>', 'only this scope')
    .action(lazy(guardCommands, 'guardList'))
  withCommon(guard.command('policy').description('set the policy for a peer (peer ID, petname or *), or show policies with no options').argument('[peer]'))
    .option('--allow <category>', 'a category pattern that may go out, e.g. travel/* (repeatable)', collect)
    .option('--service <service>', 'only for this service')
    .addOption(new Option('--action <action>', 'what happens to the rest').choices(['block', 'redact', 'warn']))
    .action(async (peer: string | undefined, opts: { allow?: string[], action?: string, service?: string }, ...rest: unknown[]) => {
      const set = opts.allow != null || opts.action != null
      if (set && peer == null) throw new CliError('name the peer the policy is for (peer ID, petname or *)', 'UsageError', 2)
      await lazy(guardCommands, set ? 'guardPolicySet' : 'guardPolicyGet')(peer, opts, ...rest)
    })
  withCommon(guard.command('check').description('dry run: the decision send would take for this text to this peer').argument('<peer>').argument('<text>'))
    .option('--service <service>', 'the service it would go to')
    .action(lazy(guardCommands, 'guardCheck'))

  const group = program.command('group').description('MLS groups: end-to-end encrypted team messaging without a broker')
  withCommon(group.command('create').description('create a group (this node is its first committer)').argument('<name>'))
    .action(lazy(groupCommands, 'groupCreate'))
  withCommon(group.command('add').description('add a trusted peer to a group').argument('<group>', 'group ID').argument('<peer>', 'peer ID or petname'))
    .action(lazy(groupCommands, 'groupAdd'))
  withCommon(group.command('remove').description('remove a member').argument('<group>', 'group ID').argument('<peer>', 'peer ID or petname'))
    .action(lazy(groupCommands, 'groupRemove'))
  withCommon(group.command('send').description('send a text to every member').argument('<group>', 'group ID').argument('<text>'))
    .action(lazy(groupCommands, 'groupSend'))
  withCommon(group.command('list').description('groups, epochs, committers, members'))
    .action(lazy(groupCommands, 'groupList'))
  withCommon(group.command('listen').description('print the group\'s messages as NDJSON until interrupted').argument('<group>', 'group ID'))
    .action(lazy(groupCommands, 'groupListen'))
  withCommon(group.command('leave').description('leave a group').argument('<group>', 'group ID'))
    .action(lazy(groupCommands, 'groupLeave'))

  program.command('redteam').description('play attack dialogs against an agent\'s service and report what leaked (exit 1 if anything did)')
    .option('--json', 'print the report as JSON')
    .requiredOption('--target <peer>', 'peer ID, multiaddr …/p2p/<id>, or a petname (with --identity)')
    .requiredOption('--service <service>', 'the target agent\'s service')
    .option('--scenarios <path>', 'a scenario file or folder (default: the shipped library)')
    .option('--only <ids>', 'only these scenario ids or families (comma-separated, repeatable)', collect)
    .option('--canary <value>', 'a value that must not come back, or LABEL=VALUE (repeatable)', collect)
    .option('--canary-file <file>', 'canaries: JSON [{label, category, value}] or one value a line (repeatable)', collect)
    .option('--turns <n>', 'at most this many turns per scenario', parseCount)
    .option('--report <file>', 'also write the JSON report here')
    .option('--baseline <file>', 'an earlier JSON report: mark scenarios that newly leak')
    .option('--identity <home>', 'use the running node of this home instead of a fresh ephemeral one')
    .option('--fresh-per-scenario', 'a new ephemeral node (identity) for every scenario (the invite needs as many uses)')
    .option('--invite <code>', 'an invite code of the target: the red-team node accepts it first')
    .option('--connect <multiaddr>', 'dial this address first (repeatable)', collect)
    .option('--bootstrap <multiaddr>', 'bootstrap peer of the ephemeral node (repeatable)', collect)
    .option('--attacker-llm <url>', 'OpenAI-compatible chat-completions endpoint that writes the turns')
    .option('--model <name>', 'model name for --attacker-llm')
    .option('--timeout <seconds>', 'per turn (default 15)', parseSeconds)
    .action(lazy(redteamCommands, 'redteam'))
  program.command('audit-dialogs').description('scan JSONL conversation logs for canaries, secrets and PII (exit 1 if any leaked)').argument('<files...>')
    .option('--json', 'print the result as JSON')
    .option('--canary <value>', 'a registered value, or LABEL=VALUE (repeatable)', collect)
    .option('--canary-file <file>', 'canaries: JSON [{label, category, value}] or one value a line (repeatable)', collect)
    .action(lazy(redteamCommands, 'auditDialogs'))

  withCommon(program.command('dashboard').description('serve a live web dashboard of the running node on 127.0.0.1 (prints its URL with the access token)'))
    .option('--port <n>', 'TCP port on 127.0.0.1 (default: any free port)', parsePort)
    .action(lazy(guardCommands, 'dashboard'))

  // issue 15: doctor, card export/verify, identity rotate/status (their modules load when they run)
  const { registerPostureCommands } = await import('./posture.ts')
  registerPostureCommands(program, { Option, parseDuration })

  withCommon(program.command('metrics').description('print the running node\'s Prometheus metrics (needs metrics.listen; --json: every series as JSON)'))
    .action(lazy(metricsCommand, 'metrics'))

  program.command('completion').description('print a shell completion script: agentnet completion bash >> ~/.bashrc')
    .argument('<shell>', 'bash, zsh or fish')
    .action(async (shell: string) => {
      const { completionScript } = await import('./completion.ts')
      process.stdout.write(completionScript(await buildProgram(), shell))
    })

  for (const sub of [alias, trust, invite, audit, token, guard, group]) {
    sub.exitOverride().configureOutput({ outputError: () => {} })
  }
  return program
}

/** `90s`, `30m`, `12h`, `7d`, or plain seconds, to ms */
function parseDuration (value: string): number {
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

function parsePort (value: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1 || n > 65_535) {
    throw new CliError(`--port must be an integer from 1 to 65535, got ${JSON.stringify(value)}`, 'UsageError', 2)
  }
  return n
}

function parseSeconds (value: string): number {
  const seconds = Number(value)
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new CliError(`--timeout must be a positive number of seconds, got ${JSON.stringify(value)}`, 'UsageError', 2)
  }
  return Math.round(seconds * 1000)
}

/** The command path a usage error is about, for "see agentnet send --help" */
function commandPath (program: Command, argv: string[]): string {
  const names: string[] = []
  let current = program
  for (const arg of argv) {
    const next = current.commands.find(c => c.name() === arg || c.aliases().includes(arg))
    if (next == null) break
    names.push(next.name())
    current = next
  }
  return ['agentnet', ...names].join(' ')
}

/** Commander's usage errors as one line: "unknown command 'sned' (did you mean send?)" */
function usageLine (err: CommanderError, program: Command, argv: string[]): string {
  const lines = err.message.replace(/^error: /, '').split('\n').map(l => l.trim()).filter(l => l !== '')
  const [first = 'bad usage', ...rest] = lines
  const suggestion = rest.find(l => /^\(Did you mean/.test(l))
  let line = first.replace(/\.$/, '')
  if (suggestion != null) {
    line += ' ' + suggestion.replace('(Did you mean', '(did you mean')
  }
  const path = commandPath(program, argv)
  return `${line}; see "${path} --help"`
}

interface FastCommand {
  load: () => Promise<Record<string, unknown>>
  fn: string
  /** positional arguments: required, then optional */
  required: number
  optional?: number
  /** boolean flags and flags with a value, as commander names them in the options object */
  flags: Record<string, string>
  values: Record<string, [string, (v: string) => unknown]>
}

const COMMON_VALUES: Record<string, [string, (v: string) => unknown]> = { '--home': ['home', String] }
const TIMEOUT: Record<string, [string, (v: string) => unknown]> = { '--timeout': ['timeout', parseSeconds] }

/**
 * The commands scripts call in loops, parsed without loading commander
 * (about 30 ms of a thin command's start-up). Only well-formed calls take
 * this path; anything else (help, an unknown flag, a missing argument) goes
 * through the full definitions above, which also word every usage error.
 */
const FAST: Record<string, FastCommand> = {
  id: { load: lifecycle, fn: 'id', required: 0, flags: { '--json': 'json' }, values: COMMON_VALUES },
  wait: { load: lifecycle, fn: 'wait', required: 0, flags: { '--json': 'json' }, values: { ...COMMON_VALUES, ...TIMEOUT } },
  stop: { load: lifecycle, fn: 'stop', required: 0, flags: { '--json': 'json' }, values: { ...COMMON_VALUES, ...TIMEOUT } },
  status: { load: remote, fn: 'status', required: 0, flags: { '--json': 'json' }, values: COMMON_VALUES },
  peers: { load: remote, fn: 'peers', required: 0, flags: { '--json': 'json' }, values: COMMON_VALUES },
  connect: { load: remote, fn: 'connect', required: 1, flags: { '--json': 'json' }, values: COMMON_VALUES },
  ping: { load: remote, fn: 'ping', required: 1, flags: { '--json': 'json' }, values: COMMON_VALUES },
  send: {
    load: remote,
    fn: 'send',
    required: 1,
    optional: 2,
    flags: { '--json': 'json', '--json-body': 'jsonBody', '--binary': 'binary', '--oneway': 'oneway' },
    values: { ...COMMON_VALUES, ...TIMEOUT, '--file': ['file', String] }
  }
}

/** The action call for a well-formed fast command, or undefined to take the full parser */
function fastPath (argv: string[]): (() => Promise<void>) | undefined {
  const [name, ...rest] = argv
  const spec = name == null ? undefined : FAST[name]
  if (spec == null) return undefined
  const positionals: string[] = []
  const options: Record<string, unknown> = {}
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!
    if (arg.startsWith('-') && arg !== '-') {
      const flag = spec.flags[arg]
      const value = spec.values[arg]
      if (flag != null && options[flag] === undefined) {
        options[flag] = true
      } else if (value != null && options[value[0]] === undefined && rest[i + 1] != null) {
        options[value[0]] = value[1](rest[++i]!)
      } else {
        return undefined
      }
    } else {
      positionals.push(arg)
    }
  }
  const max = spec.required + (spec.optional ?? 0)
  if (positionals.length < spec.required || positionals.length > max) return undefined
  while (positionals.length < max) positionals.push(undefined as unknown as string)
  return async () => {
    const module = await spec.load()
    await (module[spec.fn] as Action)(...positionals, options)
  }
}

function isCommanderError (err: unknown): err is CommanderError {
  // commander is loaded lazily, so its class may not be at hand to test against
  return err instanceof Error && 'code' in err && typeof err.code === 'string' && err.code.startsWith('commander.')
}

/** Run the CLI; resolves to the process exit code */
export async function main (argv: string[]): Promise<number> {
  const json = argv.includes('--json')
  let program: Command | undefined
  try {
    const fast = fastPath(argv)
    if (fast != null) {
      await fast()
      return typeof process.exitCode === 'number' ? process.exitCode : 0
    }
    program = await buildProgram()
    if (argv.length === 0) {
      program.outputHelp()
      return 0
    }
    await program.parseAsync(argv, { from: 'user' })
    return typeof process.exitCode === 'number' ? process.exitCode : 0
  } catch (err) {
    if (isCommanderError(err)) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') {
        return 0
      }
      if (err.exitCode === 0) {
        return 0
      }
      return report(json, { code: 'UsageError', message: program != null ? usageLine(err, program, argv) : err.message, exitCode: 2 })
    }
    if (err instanceof SilentExit) {
      return err.exitCode
    }
    const { explain } = await import('./errors.ts')
    return report(json, explain(err))
  }
}

function report (json: boolean, explained: { code: string, message: string, hint?: string, exitCode: number }): number {
  const { code, message, hint, exitCode } = explained
  process.stderr.write(`agentnet: ${message}${hint != null ? ` — ${hint}` : ''}\n`)
  if (json) {
    process.stdout.write(JSON.stringify({ error: hint != null ? { code, message, hint } : { code, message } }) + '\n')
  }
  return exitCode
}
