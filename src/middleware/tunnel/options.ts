// tunnel { secret … } — parsing the directive into settings. Pure: nothing starts here.
import { createHash } from 'node:crypto';
import type { Dispenser } from '../../caddyfile/index.js';
import type { SetupContext } from '../../core/directive.js';
import { durationArg, intArg } from '../../core/setup-args.js';
import type { Logger } from '../../core/logger.js';

export interface TunnelSettings {
  /** Accepted client secrets (at least one). */
  secrets: string[];
  /** Live sessions one secret may hold on this site. */
  maxSessions: number;
  /** Concurrent requests (streams) one session may carry; more get 503. */
  maxStreams: number;
  /** Longest wait for the response head from the tunnel client (0 = none). */
  responseTimeoutMs: number;
  /** A stream with no traffic either way for this long is cancelled (0 = never). */
  idleTimeoutMs: number;
  /** Longest WebSocket handshake, and longest wait to reach a peer process. */
  handshakeTimeoutMs: number;
  /** Heartbeat period; a session that misses one is dropped (0 = off). */
  pingIntervalMs: number;
  /** Public ports handed to TCP tunnels (`tcp_ports 20000-20100`); none: TCP tunnels are refused. */
  tcpPorts: { from: number; to: number } | undefined;
  log: Logger;
  /** Where the unix sockets between server processes live (SetupContext.runDir); undefined: a private dir. */
  runDir: string | undefined;
  /** Server processes serving the site (-workers): a client keeps one link to each. */
  workers: number;
}

export const DEFAULTS = {
  maxSessions: 10,
  maxStreams: 1000,
  responseTimeoutMs: 60_000,
  idleTimeoutMs: 300_000,
  handshakeTimeoutMs: 10_000,
  pingIntervalMs: 15_000,
};

const SUBDIRECTIVES = [
  'secret',
  'max_sessions',
  'max_streams',
  'timeout',
  'idle_timeout',
  'handshake_timeout',
  'ping_interval',
  'tcp_ports',
];

const FORM =
  'tunnel { secret <secret>; max_sessions <n>; max_streams <n>; timeout <dur>; idle_timeout <dur>; handshake_timeout <dur>; ping_interval <dur>; tcp_ports <from>-<to> }';

export function parseTunnel(d: Dispenser, ctx: SetupContext): TunnelSettings {
  const s: TunnelSettings = {
    secrets: [],
    ...DEFAULTS,
    tcpPorts: undefined,
    log: ctx.log,
    runDir: ctx.runDir,
    workers: ctx.workers,
  };
  let seen = false;
  while (d.next()) {
    if (seen) throw d.err('tunnel may appear only once per site');
    seen = true;
    if (d.remainingArgs().length > 0) throw d.err(`Wrong argument count; expected ${FORM}`);
    while (d.nextBlock()) {
      const name = d.val();
      if (!SUBDIRECTIVES.includes(name)) throw d.unknownSubdirective(SUBDIRECTIVES);
      const args = d.remainingArgs();
      if (args.length !== 1) throw d.err(`${name} takes one argument; expected ${FORM}`);
      const arg = args[0];
      switch (name) {
        case 'secret':
          if (arg.length < 8) throw d.err(shortSecret(arg, d.written()));
          s.secrets.push(arg);
          break;
        case 'max_sessions':
          s.maxSessions = intArg(d, arg, 1, name);
          break;
        case 'max_streams':
          s.maxStreams = intArg(d, arg, 1, name);
          break;
        case 'timeout':
          s.responseTimeoutMs = durationArg(d, arg, name);
          break;
        case 'idle_timeout':
          s.idleTimeoutMs = durationArg(d, arg, name);
          break;
        case 'handshake_timeout':
          s.handshakeTimeoutMs = durationArg(d, arg, name) || DEFAULTS.handshakeTimeoutMs;
          break;
        case 'ping_interval':
          s.pingIntervalMs = durationArg(d, arg, name);
          break;
        case 'tcp_ports':
          s.tcpPorts = portRange(d, arg);
          break;
      }
    }
  }
  if (s.secrets.length === 0) throw d.err(`tunnel needs a secret; expected ${FORM}`);
  return s;
}

/** Why a secret is refused; names the environment variable when the secret came from an empty one. */
function shortSecret(secret: string, written: string): string {
  const names = [...written.matchAll(/\{\$([^}]+)\}|\{%([^%]+)%\}/g)].map((m) => m[1] ?? m[2]);
  if (names.length > 0) {
    const vars = names.map((n) => `$${n}`).join(', ');
    return secret === ''
      ? `tunnel secret is empty: the environment variable ${vars} is not set (or empty)`
      : `tunnel secret from ${vars} must be at least 8 characters (it has ${secret.length})`;
  }
  return 'tunnel secret must be at least 8 characters';
}

/** A short stable id of a secret (never the secret itself), for counting sessions per secret. */
export function secretId(secret: string): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 16);
}

/** One id for a set of secrets, whatever their order. */
export function secretsKey(secrets: readonly string[]): string {
  return [...new Set(secrets.map(secretId))].sort().join('+');
}

/** `20000-20100` or `20000`: ports 1-65535, the first not above the last. */
function portRange(d: Dispenser, arg: string): { from: number; to: number } {
  const m = /^(\d+)(?:-(\d+))?$/.exec(arg);
  const from = Number(m?.[1]);
  const to = Number(m?.[2] ?? m?.[1]);
  if (!m || from < 1 || to > 65535 || from > to) {
    throw d.err(`tcp_ports: '${arg}' is not a port range like 20000-20100`);
  }
  return { from, to };
}
