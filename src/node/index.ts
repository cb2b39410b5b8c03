/**
 * @packageDocumentation
 *
 * The libp2p node behind an agent, and nothing else: TCP and WebRTC(-direct)
 * transports, Noise, yamux, identify, ping, the private DHT, relay, AutoNAT,
 * DCUtR and UPnP, assembled from a validated config ({@link createAgentLibp2p});
 * peer references ({@link parseTarget}); and {@link Network}, the network
 * operations the local API offers (addresses, status, connect by multiaddr
 * or by peer ID alone, ping, re-joining the bootstrap nodes).
 *
 * @example
 *
 * ```ts
 * import { loadConfig } from '../config/index.ts'
 * import { loadOrCreateIdentity } from '../identity/index.ts'
 * import { createAgentLibp2p, Network } from './index.ts'
 *
 * const config = await loadConfig({ overrides: { listen: ['/ip4/127.0.0.1/tcp/0'] } })
 * const { privateKey } = await loadOrCreateIdentity('/tmp/agentnet-a')
 * const libp2p = await createAgentLibp2p({ config, privateKey })
 * const network = new Network({ libp2p }, { config })
 * await libp2p.start()
 * console.log(network.info())
 * await libp2p.stop()
 * ```
 */

export { parseTarget, parsePeerId, InvalidTargetError } from './target.ts'
export type { Target } from './target.ts'

export { createAgentLibp2p, effectiveListen, DHT_PROTOCOL, WEBRTC_CERTIFICATE_KEY_NAME } from './libp2p.ts'
export type { AgentLibp2p, AgentServices } from './libp2p.ts'
export { agentnetMuxer } from './muxer.ts'
export type { AgentnetMuxerInit } from './muxer.ts'
export { Milestones } from './milestones.ts'
export { ConnectionGuard } from './connection-guard.ts'
export type { ConnectionGuardInit, ConnectionGuardComponents } from './connection-guard.ts'
export type { Readiness } from './milestones.ts'

export { Network, AGENT_VERSION, REJOIN_INTERVAL_MS, reachabilityOf, relaysOf, isWebRTCAddress, summarizeConnection } from './network.ts'
export type { NodeInfo, PeerSummary, ConnectionSummary, Reachability, NodeStatus, NetworkComponents, NetworkInit } from './network.ts'

export { openPeerStore, PEER_STORE_DIR } from './peer-store.ts'
export { keychainInit, keychainPassFor, legacyKeychainInit, upgradeKeychain, quietLogger, KEYCHAIN_DEK_ITERATIONS, KEYCHAIN_DEK_MARKER } from './keychain.ts'
