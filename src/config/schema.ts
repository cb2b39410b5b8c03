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

import { bool, cardName, fileName, fraction, guardPolicies, integer, jsonObject, logLevel, multiaddrList, oneOf, peerIdList, peerMultiaddrList, securityList, serviceList, tcpListenAddress, urlList } from './checks.ts'
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
    maxConnections: field(300, integer(1, 100_000), 'open libp2p connections'),
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
    maxConnections: field(64, integer(1, 10_000), 'concurrent local clients')
  },
  messaging: {
    maxBodyBytes: field(1_048_576, integer(1, 64 * 1024 * 1024), 'largest message body sent or accepted'),
    replayWindowMs: field(60_000, integer(30_000, 300_000), 'how old a message may be, ms (30000–300000)'),
    maxClockSkewMs: field(30_000, integer(0, 300_000), 'how far in the future a timestamp may be, ms'),
    requestTimeoutMs: field(10_000, integer(100, 3_600_000), 'default request timeout, retries included, ms'),
    retries: field(2, integer(0, 10), 're-sends of a timed-out request (same request ID, new nonce)')
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
    enabled: field(true, bool, 'MLS groups on `/agentnet/mls/1.0.0` (RFC 9420 via ts-mls)'),
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
