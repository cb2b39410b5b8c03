/**
 * ts-mls's group state encoding (`encodeGroupState`), the same bytes, with
 * the encodings of its large immutable parts kept by object.
 *
 * A state holds its ratchet tree and secret tree and, for each of the last
 * `retainEpochs` epochs, that epoch's ratchet tree, secret tree and group
 * context: at 100 members ~235 kB, ~7 ms to encode on a quiet machine (tens
 * under load), on every commit at the committer and at every member. Those
 * parts are not changed in place by ts-mls (every operation copies the array
 * it changes), and the trees of an epoch become the historical entry of the
 * next one as the same objects: so after the first save each commit only
 * encodes its new ratchet tree and secret tree, and of the new ratchet tree
 * only the nodes the commit changed (a new tree shares its other nodes with
 * the old one), of a secret tree after an application message only the
 * node it ratcheted.
 * `test/unit/groups/state-codec.test.ts` checks the bytes against
 * `encodeGroupState`, which also notices a ts-mls upgrade that changes the
 * field order.
 *
 * @module
 */

import { bigintMapEncoder, varLenDataEncoder, varLenTypeEncoder } from 'ts-mls/codec/variableLength.js'
import { contramapBufferEncoder, contramapBufferEncoders, encode } from 'ts-mls/codec/tlsEncoder.js'
import { optionalEncoder } from 'ts-mls/codec/optional.js'
import { groupActiveStateEncoder } from 'ts-mls/groupActiveState.js'
import { groupContextEncoder } from 'ts-mls/groupContext.js'
import { keyScheduleEncoder } from 'ts-mls/keySchedule.js'
import { privateKeyPathEncoder } from 'ts-mls/privateKeyPath.js'
import { nodeEncoder, stripBlankNodes } from 'ts-mls/ratchetTree.js'
import { secretTreeNodeEncoder } from 'ts-mls/secretTree.js'
import { unappliedProposalsEncoder } from 'ts-mls/unappliedProposals.js'
import type { BufferEncoder } from 'ts-mls/codec/tlsEncoder.js'
import type { EpochReceiverData } from 'ts-mls/epochReceiverData.js'
import type { ClientState } from 'ts-mls'

/** `enc`, with each object's encoding computed once (objects only: immutable ones, see the module doc). */
function memo<T extends object> (enc: BufferEncoder<T>): BufferEncoder<T> {
  const cache = new WeakMap<T, Uint8Array>()
  return (value: T) => {
    let bytes = cache.get(value)
    if (bytes === undefined) {
      bytes = encode(enc)(value)
      cache.set(value, bytes)
    }
    const b = bytes
    return [b.length, (offset: number, buffer: ArrayBuffer) => { new Uint8Array(buffer, offset, b.length).set(b) }]
  }
}

/** ts-mls's `ratchetTreeEncoder` and `secretTreeEncoder`, memoised by tree and by node */
const ratchetTree = memo(contramapBufferEncoder(varLenTypeEncoder(optionalEncoder(memo(nodeEncoder))), stripBlankNodes))
const secretTree = memo(varLenTypeEncoder(memo(secretTreeNodeEncoder)))

/** ts-mls's `epochReceiverDataEncoder` (epochReceiverData.js), on the memoised trees */
const epochReceiverData = memo(contramapBufferEncoders(
  [varLenDataEncoder, secretTree, ratchetTree, varLenDataEncoder, groupContextEncoder],
  (erd: EpochReceiverData) => [erd.resumptionPsk, erd.secretTree, erd.ratchetTree, erd.senderDataSecret, erd.groupContext] as const
))

/** ts-mls's `groupStateEncoder` (clientState.js), field for field */
const groupState = contramapBufferEncoders(
  [groupContextEncoder, keyScheduleEncoder, secretTree, ratchetTree, privateKeyPathEncoder, varLenDataEncoder, unappliedProposalsEncoder,
    varLenDataEncoder, bigintMapEncoder(epochReceiverData), groupActiveStateEncoder],
  (state: ClientState) => [
    state.groupContext, state.keySchedule, state.secretTree, state.ratchetTree, state.privatePath, state.signaturePrivateKey,
    state.unappliedProposals, state.confirmationTag, state.historicalReceiverData, state.groupActiveState
  ] as const
)

/** The bytes of ts-mls's `encodeGroupState(state)` (decode them with `decodeGroupState`). */
export const encodeState: (state: ClientState) => Uint8Array = encode(groupState)
