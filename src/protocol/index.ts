/**
 * @packageDocumentation
 *
 * The signed agent message protocol `/agentnet/msg/2.0.0`, without the
 * network: the envelope codec, Ed25519 signing, the replay cache, and
 * {@link openEnvelope}, the one function that decides whether an inbound frame
 * is accepted.
 *
 * Each frame is a protobuf `SignedMessage { payload, signature }` where
 * `payload` is a canonical protobuf `Message` and `signature` is Ed25519 over
 * the libp2p signed-envelope input (RFC 0002) with domain `"agentnet-msg"` and
 * payload type `"/agentnet/msg/2.0.0"` over {@link signingPayload}: the
 * payload with its body replaced by the body's SHA-256. A frame is accepted
 * only if it is well formed, of a known version, within the body limit, sent
 * by the peer the secure channel authenticated, addressed to this node,
 * correctly signed, fresh, and not seen before; each failure is its own error
 * class with a stable `code`.
 *
 * Ed25519 can run on every core: {@link CryptoPool} verifies and signs in
 * batches on worker threads when the main thread is busy or the data is
 * large, and {@link openEnvelopeAsync} / {@link sealEnvelopeAsync} use it
 * with the same checks, in the same order, as their sync forms. The same envelope and
 * the same checks carry the node's other signed protocols — MLS group frames
 * (`MLS_SIGNATURE_SCHEME`) and trust handshake messages
 * (`TRUST_SIGNATURE_SCHEME`, `/agentnet/trust/2.0.0`) — each signed under its
 * own scheme so no frame is valid in another.
 *
 * @example
 *
 * ```TypeScript
 * import { generateKeyPair } from '@libp2p/crypto/keys'
 * import { peerIdFromPrivateKey } from '@libp2p/peer-id'
 * import { createSigner, openEnvelope, ReplayCache, ReplayError, sealEnvelope } from './src/protocol/index.ts'
 *
 * const aliceKey = await generateKeyPair('Ed25519')
 * const bobKey = await generateKeyPair('Ed25519')
 * const alice = peerIdFromPrivateKey(aliceKey)
 * const bob = peerIdFromPrivateKey(bobKey)
 *
 * // Alice seals a request for Bob's "echo" service
 * const frame = sealEnvelope({
 *   to: bob,
 *   service: 'echo',
 *   kind: 'request',
 *   id: 'req-1',
 *   contentType: 'text/plain; charset=utf-8',
 *   body: new TextEncoder().encode('hello')
 * }, createSigner(aliceKey))
 *
 * // Bob, on a stream whose Noise handshake authenticated Alice, opens it
 * const replayCache = new ReplayCache()
 * const { message, fromPeer } = openEnvelope(frame, { localPeer: bob, remotePeer: alice, replayCache })
 * console.log(fromPeer.equals(alice), message.service, new TextDecoder().decode(message.body)) // true echo hello
 *
 * // the same frame a second time is a replay
 * try {
 *   openEnvelope(frame, { localPeer: bob, remotePeer: alice, replayCache })
 * } catch (err) {
 *   console.log(err instanceof ReplayError, (err as ReplayError).code) // true Replay
 * }
 * ```
 */

export {
  decodeMessage,
  decodeSignedMessage,
  encodeMessage,
  encodeSignedMessage,
  MAX_NONCE_BYTES,
  MIN_NONCE_BYTES,
  PROTOCOL_VERSION,
  SIGNATURE_BYTES
} from './envelope.ts'
export type { Message, MessageKind, SignedMessage } from './envelope.ts'

export {
  createSigner,
  MESSAGE_SIGNATURE_SCHEME,
  PAYLOAD_TYPE,
  PUBLIC_KEY_CACHE_SIZE,
  signatureScheme,
  signedData,
  uvarint,
  SIGNING_DOMAIN,
  TOKEN_SIGNATURE_SCHEME,
  TRUST_SIGNATURE_SCHEME,
  MLS_SIGNATURE_SCHEME,
  CARD_SIGNATURE_SCHEME,
  ed25519PublicKeyOf,
  verifyRaw,
  verifySignature
} from './signing.ts'
export type { MessageSigner, SignatureScheme } from './signing.ts'

export { BODY_DIGEST_BYTES, signingPayload } from './digest.ts'

export {
  createCryptoPool,
  CryptoPool,
  DEFAULT_LARGE_JOB_BYTES,
  DEFAULT_MAX_BATCH_JOBS,
  DEFAULT_OFFLOAD_UTILIZATION,
  LOAD_SAMPLE_MS,
  SPAWN_SAMPLE_MS,
  SPARE_SAMPLE_MS,
  SIGN_SPARE_CORES,
  SIGN_KEEP_CORES,
  MAX_AUTO_WORKERS,
  workerCount
} from './crypto-pool.ts'
export type { CryptoPoolInit, CryptoPoolStats } from './crypto-pool.ts'

export {
  DEFAULT_MAX_PER_PEER,
  DEFAULT_MAX_TOTAL,
  DEFAULT_WINDOW_MS,
  ReplayCache
} from './replay-cache.ts'
export type { ReplayCacheInit, RestoreOptions } from './replay-cache.ts'

export {
  DEFAULT_CONTENT_TYPE,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_SKEW_MS,
  MAX_WINDOW_MS,
  MIN_WINDOW_MS,
  openEnvelope,
  openEnvelopeAsync,
  sealEnvelope,
  sealEnvelopeAsync
} from './verify.ts'
export type { OpenContext, OpenedEnvelope, SealFields } from './verify.ts'

export {
  BadSignatureError,
  BodyTooLargeError,
  CorruptSnapshotError,
  FutureMessageError,
  InvalidArgumentError,
  MalformedFrameError,
  ProtocolError,
  ReplayError,
  RestartedAtError,
  SenderMismatchError,
  StaleMessageError,
  UnsupportedKeyError,
  UnsupportedVersionError,
  WrongRecipientError
} from './errors.ts'
export type { ProtocolErrorCode } from './errors.ts'

/** The libp2p protocol ID that carries these frames. */
export const PROTOCOL_ID = '/agentnet/msg/2.0.0'

export { encodeSignedBlob, decodeSignedBlob, SIGNED_BLOB_VERSION } from './signed-blob.ts'
export { loadReplayCache, saveReplayCache, REPLAY_FILE } from './replay-state.ts'
export { toPeer } from './peer.ts'
