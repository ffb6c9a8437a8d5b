// Parsing `fastcgi <path> <endpoint> [php] { … }` into plain rules (reference 4.19). Pure: no sockets.
import path from 'node:path';
import type { Dispenser } from '../../caddyfile/index.js';
import type { SetupContext } from '../../core/directive.js';
import { atLine, durationArg, oneArg } from '../../core/setup-args.js';
import { createPolicy, POLICY_NAMES } from '../../core/upstream/index.js';
import type { Endpoint } from './connection.js';

export interface FastcgiRule {
  /** Base path (Caddy path match). */
  readonly path: string;
  readonly endpoints: Endpoint[];
  /** Always send requests ending in this (lower-cased); '' = none. */
  ext: string;
  split: string;
  index: string[];
  readonly env: [string, string][];
  /** Absolute, or undefined for the site root (resolved in build, after `root` has run). */
  root: string | undefined;
  readonly except: string[];
  connectTimeoutMs: number;
  readTimeoutMs: number;
  sendTimeoutMs: number;
  /** Idle connections each process keeps per endpoint (our addition; Caddy v1 had none); 0 = none. */
  keepalive: number;
  /** Load-balancing policy over endpoints (our addition; Caddy v1 had round robin only). */
  policy: string;
  policyArg: string | undefined;
  /** Split matching is case-sensitive unless CASE_SENSITIVE_PATH is false (Caddy 1.0's default: true). */
  readonly caseSensitive: boolean;
  /**
   * Idle connections are closed after this, so php-fpm workers are not parked on us forever. Under -workers
   * another process cannot see the requests our idle connections keep waiting in php-fpm's listen queue, so
   * each process parks php-fpm workers only briefly; under load reuse is immediate.
   */
  readonly idleTimeoutMs: number;
  /** SERVER_SOFTWARE. */
  readonly software: string;
}

const OPTIONS = [
  'ext',
  'split',
  'index',
  'env',
  'root',
  'except',
  'upstream',
  'connect_timeout',
  'read_timeout',
  'send_timeout',
  'policy',
  'keepalive',
];

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * Idle connections each process keeps per endpoint. A connection is made only for a request that finds none
 * free, and php-fpm takes no more connections than it has workers, so a pool seldom reaches this; set below
 * the requests a process runs at once, the connections given back together in a lull are closed and dialed
 * again.
 */
export const DEFAULT_KEEPALIVE = 64;

/** `host:port`, `tcp://`, `fastcgi://`, `unix:/path` or `/path`, as Caddy's parseAddress reads them. */
export function parseEndpoint(text: string): Endpoint {
  if (text.startsWith('srv://'))
    throw new Error(`SRV upstreams are not supported: '${text}' (give host:port or unix:/path)`);
  if (text.startsWith('unix:')) return { network: 'unix', path: text.slice(5) };
  if (text.startsWith('/')) return { network: 'unix', path: text };
  let hostPort = text;
  for (const scheme of ['tcp://', 'fastcgi://']) {
    if (hostPort.startsWith(scheme)) hostPort = hostPort.slice(scheme.length);
  }
  const colon = hostPort.lastIndexOf(':');
  const port = Number(hostPort.slice(colon + 1));
  if (colon < 0 || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`'${text}' needs a port: host:port, or unix:/path for a socket`);
  let host = hostPort.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { network: 'tcp', host: host || '127.0.0.1', port };
}

/** Every `fastcgi` line of a site block, in file order. */
export function parseFastcgi(d: Dispenser, ctx: SetupContext): FastcgiRule[] {
  const rules: FastcgiRule[] = [];
  while (d.next()) {
    const args = d.remainingArgs();
    if (args.length < 2 || args.length > 3) throw d.argErr();
    const endpoint = (text: string) => atLine(d, () => parseEndpoint(text));
    const rule: FastcgiRule = {
      path: args[0],
      endpoints: [endpoint(args[1])],
      ext: '',
      split: '',
      index: [],
      env: [],
      root: undefined,
      except: [],
      connectTimeoutMs: DEFAULT_TIMEOUT_MS,
      readTimeoutMs: DEFAULT_TIMEOUT_MS,
      sendTimeoutMs: DEFAULT_TIMEOUT_MS,
      keepalive: DEFAULT_KEEPALIVE,
      policy: 'round_robin',
      policyArg: undefined,
      caseSensitive: !/^(0|false)$/i.test(ctx.env.CASE_SENSITIVE_PATH ?? ''),
      idleTimeoutMs: ctx.workers > 1 ? 250 : 15_000,
      software: `nodecaddy/${ctx.version}`,
    };
    if (args.length === 3) {
      if (args[2] !== 'php') throw d.err(`${args[2]} is not a valid preset name (the one preset is 'php')`);
      rule.ext = '.php';
      rule.split = '.php';
      rule.index = ['index.php'];
    }
    while (d.nextBlock()) {
      const key = d.val();
      switch (key) {
        case 'ext':
          rule.ext = oneArg(d).toLowerCase();
          break;
        case 'split':
          rule.split = oneArg(d);
          break;
        case 'index': {
          const names = d.remainingArgs();
          if (names.length === 0) throw d.argErr();
          rule.index = names;
          break;
        }
        case 'env': {
          const kv = d.remainingArgs();
          if (kv.length < 2) throw d.err('Expected: env <NAME> <value>');
          rule.env.push([kv[0], kv[1]]);
          break;
        }
        case 'root':
          rule.root = path.resolve(ctx.cwd, oneArg(d));
          break;
        case 'except': {
          const paths = d.remainingArgs();
          if (paths.length === 0) throw d.argErr();
          rule.except.push(...paths);
          break;
        }
        case 'upstream':
          rule.endpoints.push(endpoint(oneArg(d)));
          break;
        case 'connect_timeout':
          rule.connectTimeoutMs = durationArg(d, oneArg(d), key);
          break;
        case 'read_timeout':
          rule.readTimeoutMs = durationArg(d, oneArg(d), key);
          break;
        case 'send_timeout':
          rule.sendTimeoutMs = durationArg(d, oneArg(d), key);
          break;
        case 'keepalive': {
          const text = oneArg(d);
          const n = Number(text);
          if (!/^\d+$/.test(text) || !Number.isSafeInteger(n))
            throw d.err(`keepalive must be a whole number of idle connections (0 = none), not '${text}'`);
          rule.keepalive = n;
          break;
        }
        case 'policy': {
          const p = d.remainingArgs();
          if (p.length < 1 || p.length > 2) throw d.err(`Expected: policy <${POLICY_NAMES.join('|')}> [arg]`);
          atLine(d, () => createPolicy(p[0], p[1]));
          rule.policy = p[0];
          rule.policyArg = p[1];
          break;
        }
        default:
          // Caddy v1 ignored unknown keys silently (issue #2401's `fastcgi_read_timeout`); we refuse them.
          throw d.unknownSubdirective(OPTIONS);
      }
    }
    rules.push(rule);
  }
  return rules;
}
