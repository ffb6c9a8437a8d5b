// Where the tunnel directive meets a cluster of instances (several machines sharing a registry of names), set
// by the process at start when it is one of them (-cluster-listen). The directive never imports src/cluster:
// this hook is the whole contract, and without it every name is this machine's business alone (the unix-socket
// lock between the workers, peer.ts). Kept in the directive's folder rather than core because it speaks in the
// directive's own types (Upstream).
import type { Upstream } from './relay.js';

/** One claimed name, as the registry knows it. */
export interface ClusterName {
  /** The site's key (host pattern, path, secrets): the same on every instance with the same Caddyfile. */
  siteKey: string;
  /** The public host claimed: alice.tunnel.example.com. */
  host: string;
  /** The client's token: the same client reconnecting elsewhere takes its name over. */
  token: string;
  /** Which of the site's secrets it came with (max_sessions counts per secret). */
  secretId: string;
}

/**
 * 'taken': another client holds the name on some instance; 'too-many-sessions': the secret holds max_sessions
 * names across the cluster; 'unavailable': the registry cannot be reached now (the client retries).
 */
export type ClusterClaim = 'ok' | 'taken' | 'too-many-sessions' | 'unavailable';

export interface TunnelCluster {
  /** This instance's id in the registry (shown beside the tunnels it holds). */
  readonly instanceId: string;
  /**
   * Registers the name for this instance across the cluster (the same client's stale session elsewhere is
   * closed first). `reclaim`: this process held it for the same client a moment ago, so it may keep it while
   * the registry is unreachable. Once registered, `lost` is called if the registry comes to name another
   * holder (renew-or-drop): the session must close.
   */
  claim(
    name: ClusterName,
    maxSessions: number,
    reclaim: boolean,
    lost: (reason: string) => void,
  ): Promise<ClusterClaim>;
  /**
   * Registers public TCP port `port` of the name's site for this process (the other instances listen on it
   * too and relay its connections here): 'taken' when another live instance has it registered.
   */
  claimPort(name: ClusterName, port: number): Promise<'ok' | 'taken' | 'unavailable'>;
  /** The port closed: the other instances stop listening on it. */
  releasePort(name: ClusterName, port: number): void;
  /** The session ended: the name is free again (only if the registry still names this process). */
  release(name: ClusterName): void;
  /**
   * Where requests for a name no session of this process holds go: the instance the registry names, or
   * `sibling` (this instance's other workers, over their unix sockets) when that is this instance.
   */
  route(siteKey: string, host: string, responseTimeoutMs: number, sibling: Upstream): Upstream;
}

let current: TunnelCluster | undefined;

/** Set once at start by a process that belongs to a cluster (undefined: standalone). */
export function setTunnelCluster(cluster: TunnelCluster | undefined): void {
  current = cluster;
}

export function tunnelCluster(): TunnelCluster | undefined {
  return current;
}
