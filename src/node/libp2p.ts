/*
 * Only the core every node runs is imported here (TCP, Noise, yamux (muxer.ts),
 * identify, ping, the circuit-relay transport); every optional service is
 * imported by createAgentLibp2p when the config enables it, so that a node
 * that does not run it neither loads nor compiles it (start-up time and idle
 * memory, test/bench/startup.bench.ts).
 */
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { keychainInit, upgradeKeychain } from './keychain.ts'
import { agentnetMuxer } from './muxer.ts'
import type { Config } from '../config/index.ts'
import type { Identify } from '@libp2p/identify'
import type { KadDHT, SelectFn, ValidateFn } from '@libp2p/kad-dht'
import type { Keychain } from '@libp2p/keychain'
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
  keychain?: Keychain
}

/**
 * The keychain name of the WebRTC-direct certificate's key (the transport's
 * own default, named here because {@link createAgentLibp2p} creates the key)
 */
export const WEBRTC_CERTIFICATE_KEY_NAME = 'webrtc-direct-certificate-private-key'

export type AgentLibp2p = Libp2p<AgentServices>

export interface Libp2pAssembly {
  config: Config
  privateKey: PrivateKey
  /** Peer store, DHT records and keychain; persistent when it is on disk. @default in memory */
  datastore?: Datastore
  /**
   * Pass phrase of a keychain in the datastore (at least 20 characters), which
   * keeps the WebRTC-direct certificate key; no keychain when absent or when
   * the node has no WebRTC-direct listen address
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
  const webrtcDirect = listen.some(a => a.includes('/webrtc-direct'))
  // the optional modules this config needs, imported together so that their
  // loading overlaps; @libp2p/webrtc alone costs ~150 ms and ~17 MiB at start
  const [webrtc, keychainModule, dht, bootstrapModule, relayModule, autonat, dcutrModule, upnp] = await Promise.all([
    webrtcDirect || config.nat.webrtc ? import('@libp2p/webrtc') : undefined,
    // keeps the WebRTC-direct certificate's key (so its certhash) across restarts;
    // only with such a listener: opening a keychain derives its key (PBKDF2, a few ms with keychain.ts's rounds)
    init.keychainPass != null && webrtcDirect ? import('@libp2p/keychain') : undefined,
    config.dht.enabled ? import('@libp2p/kad-dht') : undefined,
    config.bootstrap.length > 0 ? import('@libp2p/bootstrap') : undefined,
    config.relay.server ? import('@libp2p/circuit-relay-v2') : undefined,
    config.nat.autonat ? import('@libp2p/autonat-v2') : undefined,
    config.nat.dcutr ? import('@libp2p/dcutr') : undefined,
    config.nat.upnp ? import('@libp2p/upnp-nat') : undefined
  ])

  const transports: NonNullable<Libp2pOptions['transports']> = [tcp(), circuitRelayTransport()]
  const iceServers = stunServersFor(config).map(urls => ({ urls }))
  if (webrtc != null && webrtcDirect) {
    transports.push(webrtc.webRTCDirect({ rtcConfiguration: { iceServers }, certificateKeychainName: WEBRTC_CERTIFICATE_KEY_NAME }))
  }
  if (webrtc != null && config.nat.webrtc) {
    transports.push(webrtc.webRTC({ rtcConfiguration: { iceServers } }))
  }

  const services: Record<string, (components: any) => unknown> = {
    identify: identify(),
    identifyPush: identifyPush(),
    // kad-dht pings every new contact before adding it to its routing table;
    // with libp2p's default of one outbound ping stream per connection, a
    // user's first ping to a newly found peer raced that ping and failed
    ping: ping({ maxOutboundStreams: 4, maxInboundStreams: 4 })
  }
  if (keychainModule != null && init.keychainPass != null) {
    // a key stored under the keychain's old 10,000-round DEK moves over first (keychain.ts)
    if (init.datastore != null) await upgradeKeychain(keychainModule.keychain, init.datastore, init.keychainPass)
    services.keychain = keychainModule.keychain(keychainInit(init.keychainPass))
  }
  if (dht != null) {
    const mappers = { all: dht.passthroughMapper, public: dht.removePrivateAddressesMapper, private: dht.removePublicAddressesMapper }
    services.dht = dht.kadDHT({
      protocol: DHT_PROTOCOL,
      clientMode: config.dht.mode === 'auto' ? undefined : config.dht.mode === 'client',
      peerInfoMapper: mappers[config.dht.addressFilter],
      validators: init.dhtValidators,
      selectors: init.dhtSelectors
    })
  }
  if (bootstrapModule != null) {
    services.bootstrap = bootstrapModule.bootstrap({ list: config.bootstrap })
  }
  if (relayModule != null) {
    services.relay = relayModule.circuitRelayServer({
      reservations: {
        maxReservations: config.relay.maxReservations,
        reservationTtl: config.relay.reservationTtlMs,
        defaultDurationLimit: config.relay.limitDurationMs,
        defaultDataLimit: BigInt(config.relay.limitDataBytes),
        applyDefaultLimit: true
      }
    })
  }
  if (autonat != null) {
    services.autonat = autonat.autoNATv2()
  }
  if (dcutrModule != null) {
    services.dcutr = dcutrModule.dcutr()
  }
  if (upnp != null) {
    services.upnp = upnp.uPnPNAT()
  }

  const libp2p = await createLibp2p({
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
    // yamux whose quiet streams grant window per 16 KiB, not per frame (muxer.ts)
    streamMuxers: [agentnetMuxer()],
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
  if (libp2p.services.keychain != null && webrtcDirect) {
    await ensureCertificateKey(libp2p.services.keychain)
  }
  return libp2p
}

/**
 * Create the WebRTC-direct certificate key in the keychain when it holds none
 * yet (a new home). The transport would otherwise find out by asking the
 * keychain for it, and the keychain answers a missing key only after a random
 * 200–1000 ms delay (its defence against guessing), which made every first
 * start that much slower.
 */
async function ensureCertificateKey (keychain: Keychain): Promise<void> {
  const keys = await keychain.listKeys()
  if (!keys.some(k => k.name === WEBRTC_CERTIFICATE_KEY_NAME)) {
    await keychain.importKey(WEBRTC_CERTIFICATE_KEY_NAME, await generateKeyPair('ECDSA', 'P-256'))
  }
}
