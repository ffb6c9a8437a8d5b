// A serving process (the single process, or each worker) that belongs to a cluster: the tunnel registry in
// Redis, and the relay listener that other instances dial to reach the tunnels held here. Every worker of an
// instance listens on the same relay address (node:cluster shares it); a relayed request that lands on a
// worker without the session goes on to the worker that holds it over the instance's unix sockets.
import type { Logger } from '../../core/logger.js';
import { setTunnelCluster } from '../../middleware/tunnel/cluster.js';
import { evictTunnel, heldTcp, heldTunnel, tcpSites } from '../../middleware/tunnel/registry.js';
import { RelayClient } from '../relay/client.js';
import { startRelayServer } from '../relay/server.js';
import { RedisLink } from '../redis.js';
import { isPrivateAddress, type ClusterSettings } from '../settings.js';
import { TcpMirrors } from './mirrors.js';
import { TunnelRegistry } from './registry.js';

let running: { stop(): Promise<void> } | undefined;

/**
 * Joins this process to the cluster's tunnels when -cluster-listen is set (else does nothing). The registry
 * hook is in place when this returns (before any client can connect); resolves once the relay listens.
 * `shared`: the process's link to Redis when it has one already (a single process also manages certificates);
 * it stays open at stop.
 */
export async function startClusterTunnels(
  settings: ClusterSettings,
  log: Logger,
  shared?: RedisLink,
): Promise<void> {
  const { listen, advertise, secret, storage } = settings;
  if (!listen || !advertise || !secret || storage.kind !== 'redis') return;
  const redis = shared ?? new RedisLink({ url: storage.url, prefix: storage.prefix, log });
  const relay = new RelayClient({ secret, log });
  const registry = new TunnelRegistry({
    redis,
    relay,
    instanceId: settings.instanceId,
    address: advertise,
    log,
  });
  setTunnelCluster(registry);
  registry.start();
  const host = advertise.replace(/:\d+$/, '');
  const server = await startRelayServer({
    host: listen.host,
    port: listen.port,
    secret,
    tls: !isPrivateAddress(host),
    handler: { upstream: heldTunnel, evict: evictTunnel, tcp: heldTcp },
    log,
  });
  const mirrors = new TcpMirrors({ redis, relay, instanceId: settings.instanceId, sites: tcpSites, log });
  mirrors.start();
  running = {
    async stop() {
      await mirrors.stop();
      await registry.stop();
      await Promise.allSettled([server.close(), relay.close()]);
      if (!shared) await redis.close();
    },
  };
}

/** After the sites closed (their sessions released their names): stops renewing, the relay and Redis. */
export async function stopClusterTunnels(): Promise<void> {
  const r = running;
  running = undefined;
  setTunnelCluster(undefined);
  await r?.stop();
}
