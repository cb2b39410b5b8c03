/**
 * The one source of the configuration: every key, its default, how its value
 * is checked and what it means. The `Config` type, the defaults,
 * `configs/default.json` and the README's configuration table all come from
 * this table (a test fails when the file or the README disagree with it).
 *
 * Why one typed table rather than a schema library (zod, valibot): the
 * checks need the libp2p parsers (multiaddrs, peer IDs) anyway, the error
 * messages must stay one line naming the key, and the table is small; a
 * library would add a runtime dependency for what 100 lines do here.
 */

import { autoOrInteger, bool, cardName, fileName, fraction, guardPolicies, integer, jsonObject, logLevel, multiaddrList, oneOf, peerIdList, peerMultiaddrList, securityList, serviceList, tcpListenAddress, urlList } from './checks.ts'
import type { Check, GuardPolicyConfig, LogLevel, SecurityProtocol } from './checks.ts'

/** One setting: its default, its check and its meaning (the README shows `doc`) */
export interface Field<T> {
  readonly default: T
  readonly check: Check
  readonly doc: string
}

function field<T> (defaultValue: T, check: Check, doc: string): Field<T> {
  return { default: defaultValue, check, doc }
}

export const SCHEMA = {
  listen: field<string[]>(['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/udp/0/webrtc-direct'], multiaddrList, 'listen multiaddrs (TCP and WebRTC-direct; port 0 = any free port: the peer ID, not the port, is the address)'),
  announce: field<string[]>([], multiaddrList, 'addresses to announce instead of the listen addresses'),
  bootstrap: field<string[]>([], peerMultiaddrList, 'bootstrap peers, multiaddrs ending in `/p2p/<peerId>`'),
  logLevel: field<LogLevel>('info', logLevel, '`fatal`…`trace`, `silent`'),
  connections: {
    maxConnections: field(300, integer(1, 100_000), 'inbound connections from peers that are neither trusted nor infrastructure (libp2p gets `reservedConnections` more, kept for those)'),
    reservedConnections: field(64, integer(0, 100_000), 'connection slots beyond `maxConnections` that only trusted and infrastructure peers can use'),
    maxPerIp: field(64, integer(1, 100_000), 'inbound connections from untrusted peers at one IP address'),
    maxPerSubnet: field(128, integer(1, 100_000), 'inbound connections from untrusted peers in one /24 (IPv4) or /48 (IPv6)'),
    dialTimeoutMs: field(10_000, integer(100, 600_000), 'one dial, ms'),
    inboundConnectionThreshold: field(25, integer(1, 100_000), 'inbound connections per second from one IP')
  },
  dht: {
    enabled: field(true, bool, 'the private DHT (`/agentnet/kad/1.0.0`)'),
    mode: field<'auto' | 'server' | 'client'>('auto', oneOf('auto', 'server', 'client'), '`auto` (server once a public address is confirmed), `server`, `client`'),
    addressFilter: field<'all' | 'public' | 'private'>('all', oneOf('all', 'public', 'private'), 'addresses the DHT keeps and hands out: `all`, `public` (internet only), `private` (LAN only)')
  },
  relay: {
    reserve: field(true, bool, 'reserve a slot on a relay (listen on `/p2p-circuit`)'),
    server: field(false, bool, 'serve as a circuit relay v2 (`true` in the bootstrap profile)'),
    maxReservations: field(15, integer(1, 100_000), 'relay server: reservations held at once'),
    reservationTtlMs: field(7_200_000, integer(60_000, 86_400_000), 'relay server: lifetime of a reservation, ms'),
    limitDurationMs: field(120_000, integer(1_000, 86_400_000), 'relay server: how long one relayed connection may stay open, ms'),
    limitDataBytes: field(131_072, integer(1024, 2 ** 40), 'relay server: bytes one relayed connection may carry (bootstrap: 1 MiB)')
  },
  nat: {
    autonat: field(true, bool, 'AutoNAT v2: learn (and help others learn) reachability'),
    dcutr: field(true, bool, 'DCUtR hole punching (cannot punch TCP from Node)'),
    upnp: field(false, bool, 'map a port on the LAN router with UPnP (multicasts on the LAN)'),
    webrtc: field(true, bool, 'WebRTC private-to-private connections, signalled over a relay'),
    stunServers: field<string[]>([], urlList, '`stun:`/`turn:` URLs for WebRTC; none are contacted unless listed'),
    stunServerPort: field(0, integer(0, 65_535), 'answer STUN binding requests on this UDP port (0: off; `3478` in the bootstrap profile)'),
    stunFromBootstrap: field(true, bool, 'also use the STUN responder of each configured bootstrap node (`stun:<its IP>:3478`)')
  },
  ipc: {
    maxLineBytes: field(4_194_304, integer(1024, 64 * 1024 * 1024), 'longest JSON-RPC line accepted on the socket (4 MiB: a 1 MiB body fits base64- or JSON-encoded)'),
    maxConnections: field(64, integer(1, 10_000), 'concurrent local clients; one more gets a `TooManyClients` error line, then is closed'),
    writeHighWaterBytes: field(16_777_216, integer(16_384, 1024 * 1024 * 1024), 'output queued for one client past which the node stops reading that client\'s requests until half of it drained'),
    maxClientBufferBytes: field(33_554_432, integer(1_048_576, 1024 * 1024 * 1024), 'output the node holds for one client (queued plus admitted messages); a message for its services that would pass this waits `ipc.deliveryWaitMs` for room, then is refused to the sender (`AgentNotReading` or `Busy`), never confirmed; a client holding twice this (at least 64 MiB) of replies to its own requests that reads nothing for 30 s is disconnected, with a log line'),
    maxTotalBufferBytes: field(268_435_456, integer(1_048_576, 16 * 1024 * 1024 * 1024), 'output the node holds for all clients together; messages past it are refused with `Busy`'),
    deliveryWaitMs: field(5_000, integer(0, 600_000), 'how long an inbound message waits for room in its agent\'s buffer before it is refused, ms')
  },
  messaging: {
    maxBodyBytes: field(1_048_576, integer(1, 64 * 1024 * 1024), 'largest message body sent or accepted'),
    replayWindowMs: field(60_000, integer(30_000, 300_000), 'how old a message may be, ms (30000–300000)'),
    maxClockSkewMs: field(30_000, integer(0, 300_000), 'how far in the future a timestamp may be, ms'),
    requestTimeoutMs: field(10_000, integer(100, 3_600_000), 'default request timeout, retries included, ms'),
    retries: field(2, integer(0, 10), 're-sends of a timed-out request (same request ID, new nonce)'),
    frameTimeoutMs: field(20_000, integer(1_000, 600_000), 'a frame must arrive whole within this long of its first byte, else the stream is reset, ms'),
    untrustedIdleStreamMs: field(60_000, integer(1_000, 3_600_000), 'an untrusted peer\'s inbound message stream with no traffic for this long is closed (it opens a new one when needed), ms'),
    untrustedInFlightBytes: field(4_194_304, integer(65_536, 1024 * 1024 * 1024), 'bytes of request bodies one untrusted peer may have in flight; more are refused with `Busy`'),
    untrustedInFlightRequests: field(32, integer(1, 65_536), 'requests one untrusted peer may have in flight (handed to a service, not yet answered); more are refused with `Busy`')
  },
  crypto: {
    workers: field<'auto' | number>('auto', autoOrInteger(0, 64), 'worker threads for Ed25519 verify and sign (`auto`: one per core beyond the first, none on one core; `0`: all on the main thread); used only while the main thread is busy (see `crypto.offloadUtilization`) or for signed data of 64 KiB and more'),
    offloadUtilization: field(0.75, fraction(0, 1), 'main-thread event-loop utilisation (over 50 ms) from which Ed25519 goes to the workers, and while the thread would be that busy with it back inline (`0`: always; `1`: only when saturated); below it the thread hop would only add latency')
  },
  tokens: {
    protectedServices: field<string[]>([], serviceList, 'services that refuse requests without a valid session token'),
    lifetimeMs: field(60_000, integer(1_000, 86_400_000), 'lifetime of issued tokens, ms'),
    maxLifetimeMs: field(3_600_000, integer(1_000, 86_400_000), 'longest lifetime a peer may ask for, ms')
  },
  card: {
    name: field('', cardName, 'display name of the agent card published in the DHT (at most 64 characters)'),
    services: field<string[]>([], serviceList, 'services listed on the agent card'),
    metadata: field<Record<string, unknown>>({}, jsonObject, 'free-form JSON metadata on the agent card (at most 2 KiB)')
  },
  trust: {
    peers: field<string[]>([], peerIdList, 'peer IDs trusted without a handshake (a fleet provisioned together)'),
    publicServices: field<string[]>([], serviceList, 'services that answer untrusted peers too; everything else is private'),
    strict: field(false, bool, 'refuse connections from peers that are neither trusted nor bootstrap/relay peers'),
    maxPending: field(1_000, integer(1, 1_000_000), 'trust requests held pending at most; when full, a newcomer from a less-represented network replaces the oldest request of the most-represented one'),
    maxPendingPerSource: field(50, integer(1, 1_000_000), 'pending trust requests from one network at most (IPv4 /24, IPv6 /48, or one relay)'),
    pendingTtlMs: field(604_800_000, integer(60_000, 31_536_000_000), 'a pending trust request is dropped this long after it was made, ms (7 days)'),
    acceptOldKeyOnlySuccession: field(false, bool, 'follow a peer\'s key rotation whose succession record only its old key signed (a stolen old key can make one; keep off)')
  },
  security: field<SecurityProtocol[]>(['noise'], securityList, 'connection encrypters in order of preference: `noise` (Noise XX), `tls` (TLS 1.3, mutual); both authenticate the peer ID (`["noise", "tls"]` in the bootstrap profile)'),
  groups: {
    enabled: field(true, bool, 'MLS groups on `/agentnet/mls/2.0.0` (RFC 9420 via ts-mls)'),
    heartbeatIntervalMs: field(5_000, integer(500, 600_000), 'committer heartbeats, ms (also the retry tick)'),
    committerTimeoutMs: field(20_000, integer(2_000, 3_600_000), 'silence after which the next member on the succession list takes over as committer, ms'),
    selfUpdateIntervalMs: field(3_600_000, integer(0, 604_800_000), 'periodic self-update for post-compromise security, ms (0: off)'),
    offlineWindowMs: field(600_000, integer(10_000, 86_400_000), 'how long a group message to an offline member is retried, ms'),
    maxGroups: field(256, integer(1, 100_000), 'groups this node holds at most'),
    maxMembers: field(1_000, integer(2, 100_000), 'members of one group at most')
  },
  guard: {
    enabled: field(true, bool, 'screen every outbound message with the leakage guard, and inbound ones for echoes and injection'),
    policies: field<GuardPolicyConfig[]>([], guardPolicies, 'policies installed at start: `[{peer, service?, allow, action?}]` (peer ID, petname or `*`); IPC changes are not written back'),
    persistFile: field('guard-values.json', fileName, 'file in the home for `persist: true` values (0600); a damaged one stops the node and is never overwritten'),
    maxValues: field(100_000, integer(1, 10_000_000), 'registered values held at once (`GuardLimit` beyond)'),
    maxPolicies: field(10_000, integer(1, 1_000_000), 'policies held at once'),
    maxBodyChars: field(1_048_576, integer(1, 64 * 1024 * 1024), 'longest body checked, UTF-16 units'),
    sweepIntervalMs: field(30_000, integer(1_000, 3_600_000), 'how often expired values are dropped, ms (also before every check)'),
    secretScan: field(true, bool, 'run secretlint\'s recommended preset on outbound messages'),
    entropyScan: field(true, bool, 'flag high-entropy tokens as `secret/high-entropy`'),
    minPartialDigits: field(8, integer(4, 64), 'contiguous digits of a long registered number that count as a leak'),
    longNumberDigits: field(12, integer(6, 64), 'digit runs of a registered value this long are also matched in part'),
    partialWordsFraction: field(0.6667, fraction(0.34, 1), 'share of a registered value\'s words (3 or more) that, contiguous, count as a leak'),
    inbound: {
      screen: field(true, bool, 'add `screening` to `msg.received` when an inbound body echoes registered values or secrets, or holds injection markers'),
      refuse: field<string[]>([], serviceList, 'services that refuse (do not deliver) inbound messages whose screening found something')
    }
  },
  metrics: {
    listen: field('', tcpListenAddress, 'serve Prometheus metrics on `http://<address>:<port>/metrics`, e.g. `/ip4/127.0.0.1/tcp/9464` (`""`: off; an address that is not loopback is logged as a warning)')
  }
}

/** A schema node: a field, or a section of them */
export type SchemaNode = Field<unknown> | { readonly [key: string]: SchemaNode }

/** The value type a schema node describes */
export type ValueOf<S> = S extends Field<infer T> ? T : { [K in keyof S]: ValueOf<S[K]> }

/** The validated configuration */
export type Config = ValueOf<typeof SCHEMA>
