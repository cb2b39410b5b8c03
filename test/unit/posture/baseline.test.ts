import assert from 'node:assert/strict'
import { createPublicKey, verify } from 'node:crypto'
import { describe, it } from 'node:test'
import canonicalize from 'canonicalize'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadConfig, mergeConfig } from '../../../src/config/index.ts'
import { checkBaseline, diffPosture, encodeBaseline, postureOf } from '../../../src/posture/index.ts'
import type { Config } from '../../../src/config/index.ts'
import type { PostureSnapshot } from '../../../src/posture/index.ts'

const NOW = Date.parse('2026-11-30T12:00:00Z')

async function snapshot (config: Record<string, unknown> = {}, extra: Partial<PostureSnapshot> = {}): Promise<PostureSnapshot> {
  const base = await loadConfig() as unknown as Record<string, unknown>
  return {
    now: NOW,
    home: '/h',
    homeMode: 0o700,
    files: [],
    config: mergeConfig(base, config) as unknown as Config,
    configSource: 'test',
    trust: { peers: {}, invites: {} },
    versions: {},
    advisories: [],
    live: { running: false },
    ...extra
  }
}

/** The signed bytes, rebuilt from the README's description with node:crypto only */
function uvarint (n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n >>>= 7 }
  out.push(n)
  return out
}
function lp (s: string | Uint8Array): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : Buffer.from(s)
  return Buffer.concat([Buffer.from(uvarint(b.length)), b])
}

describe('posture baseline', () => {
  it('is signed by the node key under the agentnet-posture domain (checked independently)', async () => {
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toString()
    const text = encodeBaseline(postureOf(await snapshot()), key, NOW)
    const file = JSON.parse(text) as Record<string, unknown>
    assert.equal(file.peerId, peerId)
    const payload = Buffer.from(canonicalize({ version: file.version, peerId: file.peerId, recordedAt: file.recordedAt, posture: file.posture }) ?? '')
    const signed = Buffer.concat([lp('agentnet-posture'), lp('/agentnet/posture/baseline/1.0.0'), lp(payload)])
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), key.publicKey.raw])
    assert.equal(verify(null, signed, createPublicKey({ key: spki, format: 'der', type: 'spki' }), Buffer.from(file.signature as string, 'base64url')), true)
    assert.equal(checkBaseline(text, peerId).status, 'intact')
    assert.doesNotMatch(text, new RegExp(Buffer.from(key.raw).toString('base64url').slice(0, 20)), 'no key material')
  })

  it('reports any edit, a foreign signer and garbage as tampered', async () => {
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toString()
    const text = encodeBaseline(postureOf(await snapshot()), key, NOW)
    const edited = text.replace('"messaging.replayWindowMs": 60000', '"messaging.replayWindowMs": 300000')
    assert.notEqual(edited, text)
    assert.equal(checkBaseline(edited, peerId).status, 'tampered')
    assert.match(checkBaseline(edited, peerId).reason ?? '', /signature/)
    const other = await generateKeyPair('Ed25519')
    const foreign = encodeBaseline(postureOf(await snapshot()), other, NOW)
    assert.match(checkBaseline(foreign, peerId).reason ?? '', /not this node/)
    assert.equal(checkBaseline('{', peerId).status, 'tampered')
    assert.equal(checkBaseline('{"version":1}', peerId).status, 'tampered')
    const resigned = JSON.parse(text) as Record<string, unknown>
    resigned.recordedAt = NOW + 1
    assert.equal(checkBaseline(JSON.stringify(resigned), peerId).status, 'tampered')
  })

  it('grades drift: weakening changes by severity, tightening as info', async () => {
    const a = await peer()
    const b = await peer()
    const approved = postureOf(await snapshot({ trust: { strict: true, peers: [a] }, tokens: { protectedServices: ['vault'] } }, { guardPolicies: { '*': { allow: [] } } }))
    const current = postureOf(await snapshot({
      trust: { strict: false, peers: [a], publicServices: ['search'] },
      tokens: { protectedServices: [], lifetimeMs: 30_000 },
      messaging: { replayWindowMs: 240_000 },
      nat: { upnp: true },
      security: ['tls']
    }, {
      guardPolicies: { '*': { allow: ['pii'] } },
      trust: { peers: { [b]: { state: 'trusted', since: NOW, updatedAt: NOW, reason: 'x', direction: 'mutual', via: 'invite' } }, invites: {} }
    }))
    const drift = diffPosture(approved, current, NOW)
    const sev = (id: string): string | undefined => drift.find(f => f.id === id)?.severity
    assert.equal(sev('drift.trust.strict'), 'high')
    assert.equal(sev('drift.tokens.protectedServices'), 'high')
    assert.equal(sev('drift.messaging.replayWindowMs'), 'medium')
    assert.equal(sev('drift.trust.publicServices'), 'medium')
    assert.equal(sev('drift.nat.upnp'), 'medium')
    assert.equal(sev('drift.security'), 'medium')
    assert.equal(sev(`drift.trusted-peer.${b}`), 'medium')
    assert.equal(sev('drift.guard-policies'), 'medium')
    assert.equal(sev('drift.tokens.lifetimeMs'), 'info', 'a shorter lifetime is tighter')
    assert.match(drift.find(f => f.id === 'drift.messaging.replayWindowMs')?.title ?? '', /60000 → 240000/)
    assert.equal(diffPosture(approved, approved, NOW).length, 0)
    // a trusted peer that rotated its key: one low finding, not a new peer plus a lost one
    const [old] = approved.trustedPeers
    assert.ok(old !== undefined)
    const successor = 'successor-id'
    const rotated = diffPosture(approved, { ...approved, trustedPeers: [...approved.trustedPeers.filter(p => p !== old), successor] }, NOW, { [successor]: old })
    assert.deepEqual(rotated.map(f => `${f.id}:${f.severity}`), [`drift.rotated-peer.${successor}:low`])
    const noGuard = { ...current, policies: { guard: null } }
    assert.equal(diffPosture(approved, noGuard, NOW).find(f => f.id === 'drift.guard-policies')?.severity, 'high')
  })
})

async function peer (): Promise<string> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
}
