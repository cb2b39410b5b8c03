import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { explain, humanize } from '../../src/cli/errors.ts'
import { bodyParams } from '../../src/cli/commands/remote.ts'
import { completionScript } from '../../src/cli/completion.ts'
import { buildProgram } from '../../src/cli/main.ts'
import { prettyLine } from '../../src/cli/log.ts'

function remote (code: string, message: string): Error {
  return Object.assign(new Error(message), { code })
}

describe('CLI errors in the user\'s terms', () => {
  it('hides IPC parameter names and libp2p internals', () => {
    assert.equal(humanize('params.to must be a peer ID, petname or agentnet:// URL'), 'the peer must be a peer ID, petname or agentnet:// URL')
    assert.equal(humanize('cannot reach X: All promises were rejected'), 'cannot reach X: none of its addresses answered')
    assert.doesNotMatch(humanize('stream failed: Missing newline'), /Missing newline/)
    assert.equal(humanize("EEXIST: file already exists, open '/h/identity.key'"), '/h/identity.key already exists')
    assert.equal(humanize('first line\n    at stack'), 'first line')
  })

  it('says what to do next', () => {
    const untrusted = explain(remote('UntrustedPeer', 'service "echo" answers trusted peers only; ask for trust first'))
    assert.match(untrusted.hint ?? '', /agentnet trust request/)
    assert.equal(untrusted.exitCode, 1)
    assert.match(explain(remote('InviteExpired', 'expired')).hint ?? '', /invite create/)
    assert.equal(explain(remote('InvalidParams', 'params.service must be …')).exitCode, 2)
  })

  it('one code for an unreachable peer', () => {
    assert.equal(explain(remote('PeerUnreachable', 'x')).code, 'PeerUnreachable')
    assert.equal(explain(remote('RequestTimeout', 'no answer from P for echo within 2000 ms (cannot reach P: request timed out)')).code, 'PeerUnreachable')
    assert.equal(explain(remote('InternalError', 'All promises were rejected')).code, 'PeerUnreachable')
    assert.equal(explain(remote('RequestTimeout', 'no answer from P for echo within 2000 ms')).code, 'RequestTimeout')
  })
})

describe('CLI bodies', () => {
  it('text, UTF-8 bytes as text, other bytes as base64, JSON values', () => {
    assert.deepEqual(bodyParams({ text: 'hi' }, {}), { body: 'hi' })
    assert.deepEqual(bodyParams({ bytes: Buffer.from('héllo') }, {}), { body: 'héllo' })
    assert.deepEqual(bodyParams({ bytes: Buffer.from([0xff, 0x00]) }, {}), { bodyBase64: '/wA=' })
    assert.deepEqual(bodyParams({ bytes: Buffer.from('hi') }, { binary: true }), { bodyBase64: 'aGk=' })
    assert.deepEqual(bodyParams({ text: '{"a":1}' }, { jsonBody: true }), { body: { a: 1 } })
    assert.throws(() => bodyParams({ text: '{' }, { jsonBody: true }), /not JSON/)
  })
})

describe('CLI completion and logs', () => {
  it('completion covers every command', async () => {
    const program = await buildProgram()
    const bash = completionScript(program, 'bash')
    for (const command of program.commands) assert.ok(bash.includes(command.name()), command.name())
    assert.throws(() => completionScript(program, 'tcsh'), /bash, zsh or fish/)
  })

  it('pretty log lines', () => {
    const line = prettyLine(JSON.stringify({ level: 30, time: Date.UTC(2026, 0, 1, 12, 0, 0), milestone: 'listening', msg: 'listening', addresses: ['/ip4/127.0.0.1/tcp/1'] }), false)
    assert.match(line, /^\d\d:\d\d:\d\d INFO {2}listening {2}addresses=\/ip4\/127\.0\.0\.1\/tcp\/1\n$/)
    assert.match(prettyLine(JSON.stringify({ level: 50, msg: 'failed', err: { message: 'boom' } }), false), /ERROR failed {2}error=boom/)
  })
})
