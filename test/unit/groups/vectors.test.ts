/**
 * The official RFC 9420 test vectors (mlswg/mls-implementations) for the
 * suite the groups service uses, MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
 * run through the same ts-mls build and cipher suite implementation the
 * service uses (`cipherSuite()` in src/groups/identity.ts). ts-mls's npm
 * package does not ship the vector files; the suite-1 entries of the
 * key-schedule and welcome files are copied into `vectors/suite1.json`
 * (the copies available offline here are an older revision of those files:
 * see the notes in the tests for the checks that revision cannot support).
 * crypto-basics, secret-tree and message-protection run in
 * `vectors-protection.test.ts`.
 */

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { mlsExporter } from 'ts-mls'
import { decodeGroupContext } from 'ts-mls/groupContext.js'
import { verifyGroupInfoConfirmationTag, verifyGroupInfoSignature } from 'ts-mls/groupInfo.js'
import { decodeKeyPackage, makeKeyPackageRef } from 'ts-mls/keyPackage.js'
import { initializeEpoch } from 'ts-mls/keySchedule.js'
import { decodeWelcome, decryptGroupInfo, decryptGroupSecrets } from 'ts-mls/welcome.js'
import { cipherSuite } from '../../../src/groups/identity.ts'
import { CIPHER_SUITE } from '../../../src/groups/constants.ts'

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex').toUpperCase()

interface Epoch { [k: string]: string | { label: string, context: string, length: number, secret: string } }
const vectors = JSON.parse(await readFile(new URL('./vectors/suite1.json', import.meta.url), 'utf8')) as {
  keySchedule: { cipher_suite: number, initial_init_secret: string, epochs: Epoch[] }
  welcome: { cipher_suite: number, init_priv: string, key_package: string, signer_pub: string, welcome: string }
}

describe('official MLS test vectors, suite 1', () => {
  it('the service uses suite 1', async () => {
    assert.equal(CIPHER_SUITE, 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519')
    assert.equal(vectors.keySchedule.cipher_suite, 1)
    assert.equal((await cipherSuite()).name, CIPHER_SUITE)
  })

  it('key schedule: every secret of every epoch', async () => {
    const cs = await cipherSuite()
    let initSecret = hex(vectors.keySchedule.initial_init_secret)
    for (const epoch of vectors.keySchedule.epochs) {
      const str = (k: string): string => epoch[k] as string
      const context = decodeGroupContext(hex(str('group_context')), 0)?.[0]
      assert.ok(context)
      assert.equal(toHex(context.treeHash), str('tree_hash'))
      const out = await initializeEpoch(initSecret, hex(str('commit_secret')), context, hex(str('psk_secret')), cs.kdf)
      assert.equal(toHex(out.joinerSecret), str('joiner_secret'))
      assert.equal(toHex(out.welcomeSecret), str('welcome_secret'))
      assert.equal(toHex(out.encryptionSecret), str('encryption_secret'))
      const ks = out.keySchedule
      assert.equal(toHex(ks.initSecret), str('init_secret'))
      assert.equal(toHex(ks.senderDataSecret), str('sender_data_secret'))
      assert.equal(toHex(ks.exporterSecret), str('exporter_secret'))
      assert.equal(toHex(ks.epochAuthenticator), str('epoch_authenticator'))
      assert.equal(toHex(ks.externalSecret), str('external_secret'))
      assert.equal(toHex(ks.confirmationKey), str('confirmation_key'))
      assert.equal(toHex(ks.membershipKey), str('membership_key'))
      assert.equal(toHex(ks.resumptionPsk), str('resumption_psk'))
      // `exporter.secret` is left out: in this (pre-RFC) revision of the file it was derived without hashing the context
      const ex = epoch.exporter as { label: string, context: string, length: number, secret: string }
      assert.equal((await mlsExporter(ks.exporterSecret, ex.label, hex(ex.context), ex.length, cs)).length, ex.length)
      initSecret = ks.initSecret
    }
  })

  it('welcome: the joiner decrypts its group secrets with init_priv (HPKE, key package ref)', async () => {
    const cs = await cipherSuite()
    const v = vectors.welcome
    // this revision of the file carries a bare KeyPackage and a Welcome preceded by its protocol version
    const keyPackage = decodeKeyPackage(hex(v.key_package), 0)?.[0]
    const welcome = decodeWelcome(hex(v.welcome).subarray(2), 0)?.[0]
    assert.ok(keyPackage)
    assert.ok(welcome)
    const ref = await makeKeyPackageRef(keyPackage, cs.hash)
    const initPriv = await cs.hpke.importPrivateKey(hex(v.init_priv))
    const secrets = await decryptGroupSecrets(initPriv, ref, welcome, cs.hpke)
    assert.ok(secrets, 'group secrets decrypt')
    assert.equal(secrets.joinerSecret.length, cs.kdf.size)
    // a different key package (its ref) finds no entry
    const other = hex(v.key_package)
    other[other.length - 1] = (other[other.length - 1] ?? 0) ^ 1
    const otherKp = decodeKeyPackage(other, 0)?.[0]
    assert.ok(otherKp)
    const otherRef = await makeKeyPackageRef(otherKp, cs.hash)
    await assert.rejects(async () => decryptGroupSecrets(initPriv, otherRef, welcome, cs.hpke), /No matching secret/)
    // The group-info step (decryptGroupInfo, verifyGroupInfoSignature, verifyGroupInfoConfirmationTag) is not run:
    // the stored revision of welcome.json predates RFC 9420's final encoding and its GroupInfo does not decrypt
    // under the RFC's derivation. ts-mls runs the current files in its own CI.
    void decryptGroupInfo
    void verifyGroupInfoSignature
    void verifyGroupInfoConfirmationTag
  })
})
