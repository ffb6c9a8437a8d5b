// Several nodecaddy instances as one cluster (certmagic's rule: instances that share a storage are a cluster).
// -storage names the storage; -cluster-listen is the relay listener the other instances dial to reach a tunnel
// held here (-cluster-advertise when they must dial another address); -cluster-secret authenticates instances
// to each other and encrypts what a Redis storage holds (so a Redis storage requires it). With the file
// storage and no -cluster-listen nothing changes.
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { redactUrl } from './redis.js';

export type StorageSetting =
  | { kind: 'file'; dir: string }
  | {
      kind: 'redis';
      /** As given (with its password): only the Redis client sees it. */
      url: string;
      /** Key prefix (hash tag) from `?prefix=`, default `nc`: several clusters can share one Redis. */
      prefix: string;
    };

export interface ClusterSettings {
  storage: StorageSetting;
  /** Where this instance's relay listener binds; undefined: tunnels are not shared with other instances. */
  listen?: { host: string; port: number };
  /** host:port the other instances dial to reach this one (default: the listen address). */
  advertise?: string;
  /** Shared by every instance; never sent over the wire (a key derived from it is). Set with a redis storage. */
  secret?: string;
  /** This instance's name in the registry, the logs and the metrics (default: host name plus a random part). */
  instanceId: string;
}

/** Minimum length of -cluster-secret (it guards the relay, which reaches every tunnel). */
export const MIN_CLUSTER_SECRET = 16;

export interface ClusterFlags {
  storage: string;
  clusterListen: string;
  clusterAdvertise: string;
  clusterSecret: string;
  instanceId: string;
}

/** The cluster's settings from the flags (and their environment defaults); throws a message naming the flag. */
export function clusterSettings(flags: ClusterFlags, dataDir: string, cwd: string): ClusterSettings {
  const storage = storageSetting(flags.storage, dataDir, cwd);
  const settings: ClusterSettings = { storage, instanceId: instanceIdOf(flags.instanceId) };
  if (storage.kind === 'redis' && !flags.clusterSecret) {
    throw new Error(
      `-storage ${redactUrl(flags.storage)} needs -cluster-secret (or $NODECADDY_CLUSTER_SECRET), at least ${MIN_CLUSTER_SECRET} characters, the same on every instance: private keys in Redis are encrypted with a key derived from it`,
    );
  }
  if (flags.clusterListen === '') {
    if (flags.clusterAdvertise) throw new Error('-cluster-advertise needs -cluster-listen');
    if (flags.clusterSecret) settings.secret = secretOf(flags.clusterSecret);
    return settings;
  }
  if (storage.kind !== 'redis') {
    throw new Error(
      '-cluster-listen needs a shared storage: -storage redis://host:6379/0 (instances find each other through it)',
    );
  }
  settings.listen = hostPort('cluster-listen', flags.clusterListen);
  if (!flags.clusterSecret) {
    throw new Error(
      `-cluster-listen needs -cluster-secret (or $NODECADDY_CLUSTER_SECRET), at least ${MIN_CLUSTER_SECRET} characters, the same on every instance`,
    );
  }
  settings.secret = secretOf(flags.clusterSecret);
  if (flags.clusterAdvertise) {
    const a = hostPort('cluster-advertise', flags.clusterAdvertise);
    if (isUnspecified(a.host)) throw new Error('-cluster-advertise must name an address others can dial');
    settings.advertise = joinHostPort(a.host, a.port);
  } else if (isUnspecified(settings.listen.host)) {
    throw new Error(
      `-cluster-listen ${flags.clusterListen} listens on every interface: add -cluster-advertise with the address the other instances dial`,
    );
  } else settings.advertise = joinHostPort(settings.listen.host, settings.listen.port);
  return settings;
}

function storageSetting(value: string, dataDir: string, cwd: string): StorageSetting {
  if (value === '') return { kind: 'file', dir: dataDir };
  const m = /^([a-z+]+):\/\/(.*)$/i.exec(value);
  const scheme = m?.[1].toLowerCase();
  if (scheme === 'file') {
    if (!m![2])
      throw new Error(`-storage ${value}: a file storage needs a folder (file:///var/lib/nodecaddy)`);
    return { kind: 'file', dir: path.resolve(cwd, decodeURIComponent(m![2])) };
  }
  if (scheme === 'redis' || scheme === 'rediss' || scheme === 'unix') {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      throw new Error(`-storage ${redactUrl(value)}: not a URL`);
    }
    if (scheme !== 'unix' && !url.hostname) throw new Error(`-storage ${redactUrl(value)}: no host`);
    if (scheme === 'unix' && !url.pathname) throw new Error(`-storage ${value}: no socket path`);
    const prefix = url.searchParams.get('prefix') ?? 'nc';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(prefix))
      throw new Error(`-storage: prefix '${prefix}' must be letters, digits, '.', '_' or '-'`);
    return { kind: 'redis', url: value, prefix };
  }
  throw new Error(
    `-storage ${redactUrl(value)}: expected file:///folder, redis://[user:password@]host:port/db, rediss://… or unix:///path/redis.sock`,
  );
}

function secretOf(value: string): string {
  if (value.length < MIN_CLUSTER_SECRET) {
    throw new Error(
      `-cluster-secret must be at least ${MIN_CLUSTER_SECRET} characters (it has ${value.length}); e.g. openssl rand -hex 24`,
    );
  }
  return value;
}

/**
 * -instance-id, or the one the primary chose for its workers ($NODECADDY_INSTANCE_ID, set in main before any
 * fork), or a new one: the host name and a random part (two instances on one host stay apart).
 */
function instanceIdOf(value: string): string {
  const id = value || `${os.hostname().split('.')[0]}-${randomBytes(3).toString('hex')}`;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(id))
    throw new Error(`-instance-id '${id}' must be letters, digits, '.', '_' or '-' (at most 64)`);
  return id;
}

function hostPort(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:\s]*)):(\d{1,5})$/i.exec(value);
  const port = Number(m?.[3]);
  if (!m || port < 1 || port > 65535)
    throw new Error(`-${flag} ${value}: expected host:port (10.0.0.5:7443)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function isUnspecified(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '';
}

export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Loopback or a private network (RFC 1918, ULA, link-local): the relay may go without TLS there. */
export function isPrivateAddress(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || /^127\./.test(h)) return true;
  if (/^10\./.test(h) || /^192\.168\./.test(h) || /^169\.254\./.test(h)) return true;
  const m = /^172\.(\d+)\./.exec(h);
  if (m && Number(m[1]) >= 16 && Number(m[1]) <= 31) return true;
  return /^f[cd][0-9a-f]{2}:/.test(h) || /^fe80:/.test(h);
}
