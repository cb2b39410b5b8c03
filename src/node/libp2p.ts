import { autoNATv2 } from '@libp2p/autonat-v2'
import { keychain } from '@libp2p/keychain'
import { bootstrap } from '@libp2p/bootstrap'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { identify, identifyPush } from '@libp2p/identify'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper, removePublicAddressesMapper } from '@libp2p/kad-dht'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Config } from '../config/index.ts'
import type { Identify } from '@libp2p/identify'
import type { KadDHT, SelectFn, ValidateFn } from '@libp2p/kad-dht'
import type { ConnectionGater, Libp2p, PrivateKey, ServiceMap } from '@libp2p/interface'
import type { Ping } from '@libp2p/ping'
import type { Datastore } from 'interface-datastore'
import type { Libp2pOptions } from 'libp2p'
import type { Registry } from 'prom-client'

/** The private DHT's protocol: an agentnet network never mixes with the public IPFS DHT */
export const DHT_PROTOCOL = '/agentnet/kad/1.0.0'

export interface AgentServices extends ServiceMap {
  identify: Identify
  ping: Ping
  dht?: KadDHT
}

export type AgentLibp2p = Libp2p<AgentServices>

export interface Libp2pAssembly {
  config: Config
  privateKey: PrivateKey
  /** Peer store, DHT records and keychain; persistent when it is on disk. @default in memory */
  datastore?: Datastore
  /**
   * Pass phrase of a keychain in the datastore (at least 20 characters), which
   * keeps the WebRTC-direct certificate key; no keychain when absent
   */
  keychainPass?: string
  connectionGater?: ConnectionGater
  /** DHT record validators and selectors keyed by the key's first segment */
  dhtValidators?: Record<string, ValidateFn>
  dhtSelectors?: Record<string, SelectFn>
  userAgent: string
  /** The Prometheus registry libp2p reports its own metrics to; none when absent (`metrics.listen` off) */
  metricsRegistry?: Registry
}

const ADDRESS_MAPPERS = {
  all: passthroughMapper,
  public: removePrivateAddressesMapper,
  private: removePublicAddressesMapper
}

/**
 * Listen addresses implied by the NAT settings: a relay reservation listens
 * on `/p2p-circuit`, WebRTC private-to-private on `/webrtc` (signalled over
 * that reservation).
 */
export function effectiveListen (config: Config): string[] {
  const listen = [...config.listen]
  if (config.relay.reserve && !listen.includes('/p2p-circuit')) {
    listen.push('/p2p-circuit')
  }
  if (config.nat.webrtc && config.relay.reserve && !listen.includes('/webrtc')) {
    listen.push('/webrtc')
  }
  return listen
}

/** The STUN port bootstrap nodes answer on (the profile's `nat.stunServerPort`) */
export const BOOTSTRAP_STUN_PORT = 3478

/**
 * The STUN servers WebRTC may contact: those listed, plus (with
 * `stunFromBootstrap`) the bootstrap nodes the config names — never a third
 * party the user did not name.
 */
export function stunServersFor (config: Config): string[] {
  const servers = new Set(config.nat.stunServers)
  if (config.nat.stunFromBootstrap) {
    for (const address of config.bootstrap) {
      const host = multiaddr(address).getComponents().find(c => ['ip4', 'ip6', 'dns', 'dns4', 'dns6'].includes(c.name))
      if (host?.value != null) {
        servers.add(`stun:${host.name === 'ip6' ? `[${host.value}]` : host.value}:${BOOTSTRAP_STUN_PORT}`)
      }
    }
  }
  return [...servers]
}

/** The connection encrypters of `config.security`, in its order of preference */
export async function connectionEncryptersFor (config: Pick<Config, 'security'>): Promise<NonNullable<Libp2pOptions['connectionEncrypters']>> {
  // loaded only when configured: @libp2p/tls (X.509, ASN.1) adds ~0.4 s to module loading here
  const tls = config.security.includes('tls') ? (await import('@libp2p/tls')).tls : undefined
  return config.security.map(name => name === 'tls' && tls !== undefined ? tls() : noise())
}

/** Build (not start) the libp2p node a config describes */
export async function createAgentLibp2p (init: Libp2pAssembly): Promise<AgentLibp2p> {
  const { config } = init
  const listen = effectiveListen(config)
  const transports: NonNullable<Libp2pOptions['transports']> = [tcp(), circuitRelayTransport()]
  const iceServers = stunServersFor(config).map(urls => ({ urls }))
  if (listen.some(a => a.includes('/webrtc-direct')) || config.nat.webrtc) {
    // loaded only when configured: the module costs ~150 ms and ~17 MiB at start
    const { webRTC, webRTCDirect } = await import('@libp2p/webrtc')
    if (listen.some(a => a.includes('/webrtc-direct'))) {
      transports.push(webRTCDirect({ rtcConfiguration: { iceServers } }))
    }
    if (config.nat.webrtc) {
      transports.push(webRTC({ rtcConfiguration: { iceServers } }))
    }
  }

  const services: Record<string, (components: any) => unknown> = {
    identify: identify(),
    identifyPush: identifyPush(),
    // kad-dht pings every new contact before adding it to its routing table;
    // with libp2p's default of one outbound ping stream per connection, a
    // user's first ping to a newly found peer raced that ping and failed
    ping: ping({ maxOutboundStreams: 4, maxInboundStreams: 4 })
  }
  if (init.keychainPass != null) {
    // keeps the WebRTC-direct certificate's key (so its certhash) across restarts
    services.keychain = keychain({ pass: init.keychainPass })
  }
  if (config.dht.enabled) {
    services.dht = kadDHT({
      protocol: DHT_PROTOCOL,
      clientMode: config.dht.mode === 'auto' ? undefined : config.dht.mode === 'client',
      peerInfoMapper: ADDRESS_MAPPERS[config.dht.addressFilter],
      validators: init.dhtValidators,
      selectors: init.dhtSelectors
    })
  }
  if (config.bootstrap.length > 0) {
    services.bootstrap = bootstrap({ list: config.bootstrap })
  }
  if (config.relay.server) {
    services.relay = circuitRelayServer({
      reservations: {
        maxReservations: config.relay.maxReservations,
        reservationTtl: config.relay.reservationTtlMs,
        defaultDurationLimit: config.relay.limitDurationMs,
        defaultDataLimit: BigInt(config.relay.limitDataBytes),
        applyDefaultLimit: true
      }
    })
  }
  if (config.nat.autonat) {
    services.autonat = autoNATv2()
  }
  if (config.nat.dcutr) {
    services.dcutr = dcutr()
  }
  if (config.nat.upnp) {
    const { uPnPNAT } = await import('@libp2p/upnp-nat')
    services.upnp = uPnPNAT()
  }

  return await createLibp2p({
    start: false,
    privateKey: init.privateKey,
    datastore: init.datastore,
    connectionGater: init.connectionGater,
    nodeInfo: { userAgent: init.userAgent },
    addresses: {
      listen,
      announce: config.announce
    },
    transports,
    connectionEncrypters: await connectionEncryptersFor(config),
    streamMuxers: [yamux()],
    connectionManager: {
      // the reserve is for trusted and infrastructure peers: the ConnectionGuard holds strangers to maxConnections
      maxConnections: config.connections.maxConnections + config.connections.reservedConnections,
      dialTimeout: config.connections.dialTimeoutMs,
      inboundConnectionThreshold: config.connections.inboundConnectionThreshold
    },
    services,
    // loaded only when metrics are on
    metrics: init.metricsRegistry == null ? undefined : (await import('@libp2p/prometheus-metrics')).prometheusMetrics({ registry: init.metricsRegistry })
  }) as unknown as AgentLibp2p
}
