/**
 * Errors as a CLI user should read them: one line, in the user's terms (no
 * IPC parameter names, no libp2p internals), saying what to do next.
 */

import { errorCodeOf } from '../errors/index.ts'
import { CliError } from './common.ts'

export interface Explained {
  code: string
  message: string
  /** what to do next, when there is something to do */
  hint?: string
  exitCode: number
}

/** Words a CLI user knows for the IPC parameters a node may name */
const PARAM_WORDS: Record<string, string> = {
  to: 'the peer',
  target: 'the peer',
  peer: 'the peer',
  peerId: 'the peer ID',
  service: 'the service name',
  body: 'the body',
  bodyBase64: 'the body',
  timeoutMs: '--timeout',
  reason: '--reason',
  name: 'the petname',
  code: 'the invite code',
  ttlMs: '--ttl',
  uses: '--uses'
}

/** Codes that all mean "the peer could not be reached": one code for the user */
const UNREACHABLE_CODES = new Set(['PeerUnreachable', 'DialError', 'NoValidAddresses', 'NoValidAddressesError', 'UnreachableError', 'ConnectionFailed', 'StreamClosed', 'DialDeniedError', 'TimeoutError', 'AbortError'])

/** Raw texts from libp2p and Node that mean nothing to a user, and what they mean */
const RAW_TEXTS: Array<[RegExp, string]> = [
  [/All promises were rejected/g, 'none of its addresses answered'],
  [/Missing newline/g, 'the peer closed the stream (it may not trust this node)'],
  [/Too many (outbound|inbound) protocol streams for protocol "[^"]*" - \d+\/\d+/g, 'the peer is busy with another request of this kind'],
  [/EEXIST: file already exists, \w+ '([^']*)'/g, '$1 already exists'],
  [/ENOENT: no such file or directory, \w+ '([^']*)'/g, '$1 does not exist'],
  [/EACCES: permission denied, \w+ '([^']*)'/g, 'no permission to use $1'],
  [/params\.(\w+)/g, '']
]

export function humanize (message: string): string {
  let text = message
  for (const [pattern, replacement] of RAW_TEXTS) {
    text = pattern.source === 'params\\.(\\w+)'
      ? text.replace(pattern, (_m, key: string) => PARAM_WORDS[key] ?? key)
      : text.replace(pattern, replacement)
  }
  return text.split('\n')[0] ?? text
}

function hintFor (code: string, message: string): string | undefined {
  switch (code) {
    case 'NodeNotRunning': return undefined
    case 'UntrustedPeer': return 'ask for trust with "agentnet trust request <peer> --reason TEXT" (the peer\'s operator approves it), or accept an invite code from the peer with "agentnet invite accept CODE"'
    case 'PeerUnreachable': return 'check that the peer\'s node runs; connect once by multiaddr ("agentnet connect /ip4/…/p2p/<id>") or configure a bootstrap node so its peer ID can be found'
    case 'NoSuchService': return 'nothing serves that name on the peer: its agent must register it (e.g. "agentnet listen NAME")'
    case 'RequestTimeout': return 'the peer\'s service did not answer in time: try again or give a longer --timeout'
    case 'ServiceTimeout': return 'the peer\'s agent did not answer within 60 s'
    case 'ServiceUnavailable': return 'the peer\'s agent went away while answering: try again'
    case 'ServiceTaken': return 'another client of this node already serves it: stop that one first'
    case 'InvalidTarget': return 'name a peer by peer ID (12D3KooW…), multiaddr ending in /p2p/<id>, petname (agentnet alias add), or agentnet://<peer>/<service>'
    case 'NotPending': return 'see the requests waiting with "agentnet trust pending"'
    case 'InviteExpired':
    case 'InviteUsedUp':
    case 'InviteInvalid': return 'ask the inviter for a new code ("agentnet invite create")'
    case 'RateLimited': return 'wait a minute before asking again'
    case 'Refused':
    case 'Rejected': return 'the peer\'s operator refused; talk to them out of band'
    case 'CardNotFound': return 'the peer has not published a card yet, or no DHT peer holds it: check bootstrap nodes with "agentnet status"'
    case 'TokenRequired':
    case 'TokenInvalid':
    case 'TokenExpired':
    case 'TokenRevoked': return 'the service needs a session token, which the peer gives to trusted peers only: ask for trust with "agentnet trust request"'
    case 'BodyTooLarge': return 'send less than messaging.maxBodyBytes (1 MiB by default)'
    case 'Starting': return message.includes('agentnet wait') ? undefined : 'wait for it with "agentnet wait"'
    case 'NodeAlreadyRunning': return 'stop it with "agentnet stop" or use another --home'
    case 'MissingIdentity': return undefined
    case 'InternalError': return 'this is a bug in agentnet: please report it with the node\'s log'
    default: return undefined
  }
}

export function explain (err: unknown): Explained {
  // an agentnet error carries its code; a Node system error (ENOENT, EACCES, …) its errno name
  const errno = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined
  let code: string = errorCodeOf(err) ?? (typeof errno === 'string' && /^E[A-Z]+$/.test(errno) ? errno : 'InternalError')
  const raw = err instanceof Error ? err.message : String(err)
  let message = humanize(raw)
  if (code === 'InvalidParams') {
    code = 'UsageError'
  }
  if (UNREACHABLE_CODES.has(code) || (code === 'InternalError' && /All promises were rejected|ECONNREFUSED|EHOSTUNREACH|no valid addresses|dial/i.test(raw))) {
    code = 'PeerUnreachable'
  }
  if (code === 'RequestTimeout' && /cannot reach|All promises were rejected|no valid addresses|ECONNREFUSED/i.test(raw)) {
    code = 'PeerUnreachable'
  }
  if (code === 'ENOENT' || code === 'EACCES' || code === 'EEXIST' || code === 'EISDIR') {
    code = 'FileError'
  }
  if (message === '') message = code
  const exitCode = err instanceof CliError ? err.exitCode : code === 'UsageError' ? 2 : 1
  const hint = hintFor(code, message)
  return hint == null ? { code, message, exitCode } : { code, message, hint, exitCode }
}
