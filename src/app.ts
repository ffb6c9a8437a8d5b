// The wiring: the one place that knows both the core and the directive registry.
// loadConfig() turns Caddyfile text into a Config with no side effects; src/runtime.ts starts and swaps them.
import { createHash } from 'node:crypto';
import { readFileSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Dispenser, parse, type ServerBlock, type Token } from './caddyfile/index.js';
import { addressLabel, listenKey, parseAddress } from './core/address.js';
import { compose, type Middleware } from './core/chain.js';
import type { Directive, DirectiveInstance, SetupContext } from './core/directive.js';
import { silentLogger, type Logger } from './core/logger.js';
import type { Site, SiteConfig } from './core/site.js';
import { DEFAULT_POLICY, policyDifferences, type TlsPolicy } from './core/tls/config.js';
import {
  automaticHttpsAddress,
  httpsAddress,
  redirectSites,
  siteCertSource,
  type HttpsPorts,
} from './core/tls/plan.js';
import { directives as registry, staticFiles } from './middleware/index.js';
import { acmeRoleOf, DEFAULT_CA, type AcmeFlags } from './certs/acme/plan.js';
import { VERSION } from './version.js';

/** The Caddyfile text and where it came from. */
export interface CaddyfileInput {
  text: string;
  /** Name used in messages (the -conf value, `Caddyfile`, `args`, `stdin`). */
  name: string;
  /** Absolute path when the input is a real file (hidden from the file server, watched for changes). */
  path?: string;
  /** Directory that relative imports resolve against when the input is not a file. */
  baseDir?: string;
}

export interface LoadOptions {
  /** -root: the starting root of every site. */
  root: string;
  /** -host and -port: defaults for addresses that lack them. */
  host: string;
  port: string;
  cwd: string;
  env: Readonly<Record<string, string | undefined>>;
  /** The ordered directive registry; the real one unless a test brings its own. */
  directives?: readonly Directive<unknown>[];
  /** The process log handed to directives (silent when absent, e.g. -validate). */
  log?: Logger;
  /** -http-port and -https-port (Caddy v1): which ports mean plain HTTP and HTTPS (default 80 and 443). */
  httpPort?: string;
  httpsPort?: string;
  /** -http2: offer HTTP/2 by ALPN on TLS listeners (default true). */
  http2?: boolean;
  /** -data: where certificates and the local CA are kept. */
  dataDir?: string;
  /** -workers: server processes serving the config (default 1). */
  workers?: number;
  /** The run directory shared by the server processes (NODECADDY_RUN_DIR), if any. */
  runDir?: string;
  /** Caddy v1's ACME flags (-agree, -email, -ca, …) for automatic HTTPS. */
  acme?: AcmeFlags;
}

export interface ListenerSpec {
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly sites: Site[];
  /** The TLS policy of an HTTPS listener (every site on it agrees); undefined for plain HTTP. */
  readonly tls: TlsPolicy | undefined;
  /** Only implicit sites (HTTP → HTTPS redirects): a port that cannot be bound is a warning, not a failure. */
  readonly optional: boolean;
}

export interface Config {
  readonly input: CaddyfileInput;
  readonly sites: Site[];
  readonly listeners: Map<string, ListenerSpec>;
  /** Every directive instance, to start() before traffic and close() after the last request. */
  readonly instances: DirectiveInstance[];
  /** Absolute paths of the Caddyfile and everything it imports (what a reload watches). */
  readonly files: string[];
  readonly warnings: string[];
  /** Absolute paths of the files imported (without the Caddyfile itself). */
  readonly imports: readonly string[];
  /** Hash of the text and of every imported file: equal fingerprints mean nothing changed. */
  readonly fingerprint: string;
  /** -data: where certificates and the local CA are kept. */
  readonly dataDir: string;
}

export const DEFAULT_INDEX_FILES = [
  'index.html',
  'index.htm',
  'index.txt',
  'default.html',
  'default.htm',
  'default.txt',
];

/** Parses the input, runs every directive's setup, composes each site's chain. Throws with file:line. */
export function loadConfig(input: CaddyfileInput, options: LoadOptions): Config {
  const baseDir = input.baseDir ?? (input.path ? path.dirname(input.path) : options.cwd);
  const directives = options.directives ?? registry;
  const directiveNames = directives.map((d) => d.name);
  const parsed = parse(input.text, input.name, { directives: directiveNames, env: options.env, baseDir });
  let blocks = parsed.blocks;
  if (blocks.length === 0) {
    // An empty Caddyfile (or only comments/snippets) serves the default site, as Caddy does.
    blocks = parse(defaultCaddyfile(options), input.name, { directives: directiveNames }).blocks;
  }
  const files = [...(input.path ? [input.path] : []), ...parsed.files];
  const hiddenFiles = files.flatMap(realAndGiven);
  const warnings = [...parsed.warnings];
  const sites: Site[] = [];
  const instances: DirectiveInstance[] = [];
  const seen = new Map<string, string>();
  const dependencies = new Set<string>();
  const ports: HttpsPorts = { http: options.httpPort ?? '80', https: options.httpsPort ?? '443' };
  const load: LoadState = {
    input,
    options,
    directives,
    hiddenFiles,
    warnings,
    instances,
    dependencies,
    ports,
  };

  for (const block of blocks) {
    block.keys.forEach((key, i) => {
      const keyToken = block.keyTokens[i];
      const site = buildSite(block, key, keyToken, load);
      const a = site.config.address;
      const id = `${a.scheme}://${a.host}:${a.port}${a.path}`;
      const earlier = seen.get(id);
      if (earlier !== undefined) {
        throw errorAt(
          keyToken,
          `duplicate site address: ${addressLabel(a)} (already defined by '${earlier}')`,
        );
      }
      seen.set(id, key);
      sites.push(site);
    });
  }

  const listeners = groupListeners([...sites, ...redirectSites(sites, ports)], options.http2 ?? true);
  for (const file of dependencies) {
    if (!files.includes(file)) files.push(file);
    hiddenFiles.push(...realAndGiven(file));
  }
  const watched = [...parsed.files, ...dependencies];
  return {
    input,
    sites,
    listeners,
    instances,
    files,
    warnings,
    fingerprint: fingerprint(input.text, watched),
    imports: watched,
    dataDir: options.dataDir ?? defaultDataDir(options.env),
  };
}

/**
 * Sites per bound address. Every site on one listener is HTTPS or none is, and HTTPS sites agree on the TLS
 * policy (Caddy v1's rule: a connection's TLS settings are chosen before its Host is known).
 */
function groupListeners(sites: readonly Site[], http2: boolean): Map<string, ListenerSpec> {
  const listeners = new Map<string, { spec: ListenerSpec; first: Site }>();
  for (const site of sites) {
    const key = listenKey(site.config.bindHost, site.config.address.port);
    const secure = site.config.certSource !== undefined;
    const policy = secure ? listenerPolicy(site, http2) : undefined;
    const entry = listeners.get(key);
    if (!entry) {
      const spec: ListenerSpec = {
        key,
        host: site.config.bindHost ?? '',
        port: Number(site.config.address.port),
        sites: [site],
        tls: policy,
        optional: site.implicit === true,
      };
      listeners.set(key, { spec, first: site });
      continue;
    }
    const { spec, first } = entry;
    if ((spec.tls !== undefined) !== secure)
      throw siteError(
        site,
        `${site.label} and ${first.label} share port ${spec.port}, but one is HTTPS and the other plain HTTP`,
      );
    if (spec.tls && policy) {
      const differ = policyDifferences(spec.tls, policy);
      if (differ.length > 0)
        throw siteError(
          site,
          `incompatible TLS configurations on port ${spec.port}: ${site.label} and ${first.label} differ in ` +
            `${differ.map(policyName).join(', ')} (sites that share a port must agree)`,
        );
    }
    spec.sites.push(site);
    if (!site.implicit) (spec as { optional: boolean }).optional = false;
  }
  return new Map([...listeners].map(([key, e]) => [key, e.spec]));
}

function listenerPolicy(site: Site, http2: boolean): TlsPolicy {
  const policy = site.config.tls?.policy ?? DEFAULT_POLICY;
  if (http2 || site.config.tls?.explicit.includes('alpn')) return policy;
  return { ...policy, alpn: ['http/1.1'] };
}

function policyName(field: keyof TlsPolicy): string {
  const names: Record<keyof TlsPolicy, string> = {
    minVersion: 'protocols',
    maxVersion: 'protocols',
    ciphers: 'ciphers',
    curves: 'curves',
    alpn: 'alpn',
    clientAuth: 'clients',
  };
  return names[field];
}

function siteError(site: Site, message: string): Error {
  const where = site.config.tls?.where;
  return new Error(
    where ? `${where} - Error during parsing: ${message}` : `${site.config.sourceFile}: ${message}`,
  );
}

/** What every site of one load shares: its inputs, and the lists that collect warnings and instances. */
interface LoadState {
  readonly input: CaddyfileInput;
  readonly options: LoadOptions;
  readonly directives: readonly Directive<unknown>[];
  readonly hiddenFiles: string[];
  readonly warnings: string[];
  readonly instances: DirectiveInstance[];
  /** Files directives depend on (certificates, keys): watched, hidden, part of the fingerprint. */
  readonly dependencies: Set<string>;
  readonly ports: HttpsPorts;
}

function buildSite(block: ServerBlock, key: string, keyToken: Token, load: LoadState): Site {
  const { input, options, directives, hiddenFiles, warnings, instances, dependencies, ports } = load;
  // Caddy v1 would take a stray top-level '}' for an address; it is always a brace that lost its partner.
  if (key === '}') throw errorAt(keyToken, "Unexpected '}' because no matching opening brace");
  let address;
  try {
    address = parseAddress(key, {
      host: options.host,
      port: options.port,
      httpPort: ports.http,
      httpsPort: ports.https,
      caseSensitivePath: /^(1|true)$/i.test(options.env.CASE_SENSITIVE_PATH ?? ''),
    });
  } catch (err) {
    throw errorAt(keyToken, (err as Error).message);
  }
  const config: SiteConfig = {
    address,
    root: path.resolve(options.cwd, options.root),
    indexFiles: [...DEFAULT_INDEX_FILES],
    bindHost: undefined,
    hiddenFiles,
    sourceFile: input.name,
  };
  const ctx: SetupContext = {
    site: config,
    cwd: options.cwd,
    env: options.env,
    warn: (message) => warnings.push(`${addressLabel(address)}: ${message}`),
    log: options.log ?? silentLogger(),
    dependOn: (file) => dependencies.add(path.resolve(options.cwd, file)),
    workers: options.workers ?? 1,
    runDir: options.runDir,
    version: VERSION,
  };
  const setups: { build: NonNullable<Directive<unknown>['build']>; options: unknown }[] = [];
  for (const directive of directives) {
    const tokens = block.tokens.get(directive.name);
    if (!tokens) continue;
    const opts = directive.setup(new Dispenser(tokens), ctx);
    if (directive.build) setups.push({ build: directive.build.bind(directive), options: opts });
  }
  // Every directive has spoken (tls among them): is the site served over HTTPS, and with what certificate?
  config.address = automaticHttpsAddress(config, ports);
  const source = siteCertSource(config, ports, (m) => ctx.warn(m));
  if (source?.kind === 'acme') checkAutomaticHttps({ config, label: key, keyToken, acme: options.acme });
  if (source) {
    config.certSource = source;
    config.address = httpsAddress(config.address);
  } else if (config.address.scheme === 'https') {
    // `tls off` on an https:// address: served (and listed) as what it is, plain HTTP.
    config.address = { ...config.address, scheme: 'http' };
  }
  const middlewares: Middleware[] = [];
  for (const { build, options: opts } of setups) {
    const instance = build(opts, config);
    instances.push(instance);
    if (instance.middleware) middlewares.push(instance.middleware);
  }
  return { config, handler: compose(middlewares, staticFiles(config)), label: addressLabel(config.address) };
}

/**
 * A site whose certificate comes from an ACME CA: it must be able to get one (a wildcard needs DNS-01, on demand
 * needs a permission), and the CA's terms must be agreed to (-agree), as Caddy v1 asks before its first order.
 */
function checkAutomaticHttps(site: {
  config: SiteConfig;
  label: string;
  keyToken: Token;
  acme: AcmeFlags | undefined;
}): void {
  const role = acmeRoleOf({ config: site.config, handler: async () => {}, label: site.label });
  const where = site.config.tls?.where;
  const fail = (message: string) => {
    if (where) throw new Error(`${where} - Error during parsing: ${message}`);
    throw errorAt(site.keyToken, message);
  };
  if ('error' in role) fail(`${site.label}: ${role.error}`);
  if (!site.acme?.agree)
    fail(
      `${site.label} gets its certificate from an ACME CA (automatic HTTPS, ${site.acme?.ca ?? DEFAULT_CA}): ` +
        "run with -agree to accept the CA's subscriber agreement (and -email for its notices), " +
        'or serve the site with `tls internal`, `tls <cert> <key>`, or as http://',
    );
}

/**
 * Where certificates and the local CA live: $NODECADDY_DATA, else nodecaddy's folder in the XDG data
 * directory (~/.local/share/nodecaddy).
 */
export function defaultDataDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env.NODECADDY_DATA) return path.resolve(env.NODECADDY_DATA);
  const base = env.XDG_DATA_HOME || path.join(env.HOME || os.homedir(), '.local', 'share');
  return path.join(base, 'nodecaddy');
}

/** `:2015` with `root .` — what Caddy serves when there is no Caddyfile. */
export function defaultCaddyfile(options: Pick<LoadOptions, 'host' | 'port' | 'root'>): string {
  return `${options.host}:${options.port}\nroot "${options.root.replace(/"/g, '\\"')}"\n`;
}

function errorAt(token: Token, message: string): Error {
  const d = new Dispenser([token]);
  d.next();
  return d.err(message);
}

function realAndGiven(file: string): string[] {
  try {
    const real = realpathSync(file);
    return real === file ? [file] : [file, real];
  } catch {
    return [file];
  }
}

/** Hash of the Caddyfile text and the content of the files it imports: equal means nothing changed. */
export function fingerprint(text: string, imported: readonly string[]): string {
  const hash = createHash('sha256').update(text);
  for (const file of imported) {
    hash.update('\0').update(file).update('\0');
    try {
      hash.update(readFileSync(file));
    } catch {
      hash.update('<unreadable>');
    }
  }
  return hash.digest('hex');
}
