// `proxy <from> <to>... { ... }`: the Caddyfile side (reference 4.18). Pure apart from reading CA and client
// certificate files, so a missing file is reported with file:line at load time, not on the first request.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import type { Dispenser } from '../../caddyfile/index.js';
import { atLine, durationArg, intArg, oneArg } from '../../core/setup-args.js';
import { parseHeaderRule, type HeaderRule } from '../../core/headerrules.js';
import { POLICY_NAMES, createPolicy, type HostLimits } from '../../core/upstream/index.js';
import { parseUpstream, type UpstreamTarget } from './upstreams.js';

export interface HealthCheckConfig {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Port to check instead of the upstream's own. */
  readonly port: number | undefined;
  /** Substring the check's body must contain. */
  readonly contains: string | undefined;
}

export interface TlsConfig {
  readonly insecureSkipVerify: boolean;
  /** PEM root CAs (replace the system roots, as Go's RootCAs does). */
  readonly ca: string[] | undefined;
  readonly cert: Buffer | undefined;
  readonly key: Buffer | undefined;
}

export interface ProxyConfig {
  readonly from: string;
  readonly targets: UpstreamTarget[];
  readonly policy: { name: string; arg: string | undefined };
  readonly limits: HostLimits;
  readonly tryDurationMs: number;
  readonly tryIntervalMs: number;
  readonly healthCheck: HealthCheckConfig | undefined;
  readonly upstreamRules: HeaderRule[];
  readonly downstreamRules: HeaderRule[];
  readonly without: string;
  /** Full paths (`from` joined with each `except` argument) this proxy ignores. */
  readonly except: string[];
  /** Idle connections kept per upstream; 0 disables keep-alive. */
  readonly keepalive: number;
  /** Connect timeout (Caddy's `timeout`). */
  readonly dialTimeoutMs: number;
  /** nodecaddy's `response_timeout`: longest wait for the response head; 0 = none (Caddy has none). */
  readonly responseTimeoutMs: number;
  /** Happy-eyeballs delay between address families; undefined = Node's default. */
  readonly fallbackDelayMs: number | undefined;
  readonly tls: TlsConfig;
}

/** Idle connections kept per upstream (per worker) unless `keepalive` says otherwise. */
export const DEFAULT_KEEPALIVE = 32;

export const PROXY_SUBDIRECTIVES = [
  'policy',
  'fail_timeout',
  'max_fails',
  'max_conns',
  'try_duration',
  'try_interval',
  'health_check',
  'health_check_interval',
  'health_check_timeout',
  'health_check_port',
  'health_check_contains',
  'header_upstream',
  'header_downstream',
  'proxy_header',
  'keepalive',
  'timeout',
  'response_timeout',
  'fallback_delay',
  'without',
  'except',
  'insecure_skip_verify',
  'ca_certificates',
  'tls_client',
  'transparent',
  'websocket',
  'upstream',
] as const;

const TRANSPARENT: readonly (readonly string[])[] = [
  ['Host', '{host}'],
  ['X-Real-IP', '{remote}'],
  ['X-Forwarded-Proto', '{scheme}'],
  ['X-Forwarded-Port', '{server_port}'],
];
const WEBSOCKET: readonly (readonly string[])[] = [
  ['Connection', '{>Connection}'],
  ['Upgrade', '{>Upgrade}'],
];

/** Parses one `proxy` directive (the Dispenser on its name token). */
export function parseProxy(d: Dispenser, cwd: string): ProxyConfig {
  const args = d.remainingArgs();
  if (args.length === 0) throw d.argErr();
  const from = args[0];
  const targets: UpstreamTarget[] = [];
  const addUpstream = (token: string) => targets.push(...atLine(d, () => parseUpstream(token)));
  for (const t of args.slice(1)) addUpstream(t);

  let policy = { name: 'random', arg: undefined as string | undefined };
  let failTimeoutMs = 0;
  let maxFails = 1;
  let maxConns = 0;
  let tryDurationMs = 0;
  let tryIntervalMs = 250;
  let hcPath: string | undefined;
  let hcInterval = 30_000;
  let hcTimeout = 60_000;
  let hcPort: number | undefined;
  let hcContains: string | undefined;
  const upstreamRules: HeaderRule[] = [];
  const downstreamRules: HeaderRule[] = [];
  let without = '';
  const except: string[] = [];
  // Caddy v1 kept Go's default of 2 idle connections: a busy site then opens a new connection for most
  // requests (0.26x nginx under 64 clients). 32, as Caddy 2, keeps them for a busy site's concurrency.
  let keepalive = DEFAULT_KEEPALIVE;
  let dialTimeoutMs = 30_000;
  let responseTimeoutMs = 0;
  let fallbackDelayMs: number | undefined;
  let insecureSkipVerify = false;
  let ca: string[] | undefined;
  let cert: Buffer | undefined;
  let key: Buffer | undefined;

  const one = () => oneArg(d);
  const duration = () => {
    const what = d.val(); // the subdirective, before oneArg moves past it
    return durationArg(d, oneArg(d), what);
  };
  const integer = (min: number, what: string) => intArg(d, oneArg(d), min, what);
  const rule = (into: HeaderRule[], ruleArgs: readonly string[]) =>
    into.push(atLine(d, () => parseHeaderRule(ruleArgs)));
  const readFile = (file: string): Buffer =>
    atLine(d, () => readFileSync(path.resolve(cwd, file)), `reading '${file}': `);

  while (d.nextBlock()) {
    const name = d.val();
    switch (name) {
      case 'policy': {
        const a = d.remainingArgs();
        if (a.length < 1 || a.length > 2) throw d.argErr();
        try {
          createPolicy(a[0], a[1]);
        } catch {
          throw d.err(`unknown policy '${a[0]}' (expected one of: ${POLICY_NAMES.join(', ')})`);
        }
        policy = { name: a[0], arg: a[1] };
        break;
      }
      case 'fail_timeout':
        failTimeoutMs = duration();
        break;
      case 'max_fails':
        maxFails = integer(1, 'max_fails');
        break;
      case 'max_conns':
        maxConns = integer(0, 'max_conns');
        break;
      case 'try_duration':
        tryDurationMs = duration();
        break;
      case 'try_interval':
        tryIntervalMs = duration();
        break;
      case 'health_check':
        hcPath = one();
        break;
      case 'health_check_interval':
        hcInterval = duration();
        if (hcInterval === 0) throw d.err('health_check_interval must be positive');
        break;
      case 'health_check_timeout':
        hcTimeout = duration();
        break;
      case 'health_check_port':
        hcPort = integer(0, 'health_check_port');
        if (hcPort > 65535) throw d.err(`health_check_port ${hcPort} out of range`);
        break;
      case 'health_check_contains':
        hcContains = one();
        break;
      case 'header_upstream':
      case 'proxy_header':
        rule(upstreamRules, d.remainingArgs());
        break;
      case 'header_downstream':
        rule(downstreamRules, d.remainingArgs());
        break;
      case 'keepalive':
        keepalive = integer(0, 'keepalive');
        break;
      case 'timeout':
        dialTimeoutMs = duration();
        break;
      case 'response_timeout':
        responseTimeoutMs = duration();
        break;
      case 'fallback_delay':
        fallbackDelayMs = duration();
        break;
      case 'without':
        without = one();
        break;
      case 'except': {
        const a = d.remainingArgs();
        if (a.length === 0) throw d.argErr();
        // Caddy: path.Join(from, p), which also drops a trailing slash unless p is exactly "/" on "/".
        for (const p of a) except.push(path.posix.join(from, p));
        break;
      }
      case 'insecure_skip_verify':
        if (d.remainingArgs().length !== 0) throw d.argErr();
        insecureSkipVerify = true;
        break;
      case 'ca_certificates': {
        const files = d.remainingArgs();
        if (files.length === 0) throw d.argErr();
        ca ??= [];
        for (const f of files) ca.push(...pemCertificates(readFile(f), f, d));
        break;
      }
      case 'tls_client': {
        const a = d.remainingArgs();
        if (a.length !== 2) throw d.argErr();
        cert = readFile(a[0]);
        key = readFile(a[1]);
        break;
      }
      case 'transparent':
        if (d.remainingArgs().length !== 0) throw d.argErr();
        for (const r of TRANSPARENT) rule(upstreamRules, r);
        break;
      case 'websocket':
        if (d.remainingArgs().length !== 0) throw d.argErr();
        for (const r of WEBSOCKET) rule(upstreamRules, r);
        break;
      case 'upstream': {
        const a = d.remainingArgs();
        if (a.length !== 1) throw d.argErr();
        addUpstream(a[0]);
        break;
      }
      default:
        throw d.unknownSubdirective(PROXY_SUBDIRECTIVES);
    }
  }
  if (targets.length === 0) throw d.err(`proxy ${from}: at least one upstream is required`);
  if (insecureSkipVerify && ca) throw d.err('insecure_skip_verify and ca_certificates cannot be combined');
  return {
    from,
    targets,
    policy,
    limits: { failTimeoutMs, maxFails, maxConns },
    tryDurationMs,
    tryIntervalMs,
    healthCheck:
      hcPath === undefined
        ? undefined
        : {
            path: hcPath,
            intervalMs: hcInterval,
            timeoutMs: hcTimeout,
            port: hcPort,
            contains: hcContains,
          },
    upstreamRules,
    downstreamRules,
    without,
    except,
    keepalive,
    dialTimeoutMs,
    responseTimeoutMs,
    fallbackDelayMs,
    tls: { insecureSkipVerify, ca, cert, key },
  };
}

/** The PEM certificates in a file; none is an error worded as Caddy's. */
function pemCertificates(data: Buffer, file: string, d: Dispenser): string[] {
  const blocks = data.toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  const certs = (blocks ?? []).filter((pem) => {
    try {
      new X509Certificate(pem);
      return true;
    } catch {
      return false;
    }
  });
  if (certs.length === 0)
    throw d.err(`loading CA certificate '${file}': no certificates were successfully parsed`);
  return certs;
}
