// Serving a Caddyfile: Caddy v1's flags, then load, start, watch, and handle signals (`nodecaddy -conf …`, and
// what the file-server and reverse-proxy subcommands hand over).
import cluster from 'node:cluster';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isatty } from 'node:tty';
import { caddyfileToJson, jsonToCaddyfile } from '../caddyfile/index.js';
import { defaultDataDir, loadConfig, type CaddyfileInput, type Config } from '../app.js';
import { loadEnvFile } from './envfile.js';
import { durationFlag, FlagError, formatUsage, parseFlags } from './flags.js';
import { FLAGS, USAGE_HEAD } from './options.js';
import { inputLoader, PIPE_HINT } from './input.js';
import { withMemorySettings } from './memory-relaunch.js';
import { startupLines } from './banner.js';
import { createProcessLogger, type Logger } from '../core/logger.js';
import { handleProcessFaults } from '../crash.js';
import { Runtime } from '../runtime.js';
import { ClusterEngine } from '../cluster/primary.js';
import { runWorker } from '../cluster/worker.js';
import { observePrimary, observeWorker, parseAdminAddress, type AdminAddress } from '../admin/index.js';
import { VERSION } from '../version.js';
import { libdeflate, libdeflateMissing } from '../middleware/gzip/libdeflate.js';
import { automaticHttps } from '../certs/acme/index.js';
import { CertificateManager } from '../certs/acme/manager.js';
import type { AcmeFlags } from '../certs/acme/plan.js';
import { FileStorage } from '../certs/file-storage.js';
import { localSink } from '../certs/sink.js';
import { setCertificateRequests } from '../core/tls/managed.js';
import { clusterSettings, type ClusterSettings } from '../cluster/settings.js';
import { setClusterInfo } from '../cluster/metrics.js';
import { RedisLink, redactUrl } from '../cluster/redis.js';
import { sharedCertificates } from '../cluster/shared-certs.js';
import { ChallengesFromPrimary } from '../cluster/challenge-relay.js';
import { setChallengeSource } from '../core/tls/challenge-lookup.js';
import { startClusterTunnels, stopClusterTunnels } from '../cluster/tunnels/index.js';

/** All of standard input, for `-conf stdin`: a terminal would wait for a Caddyfile nobody is typing. */
function readStdin(): string {
  if (isatty(0)) throw new Error(`-conf stdin: standard input is a terminal; ${PIPE_HINT}`);
  return readFileSync(0, 'utf8');
}

/** Prints to stderr and exits 1, as Caddy's mustLogFatalf. */
function fatal(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

/** Serves the Caddyfile the flags say; `preset` is a Caddyfile a subcommand made (file-server, reverse-proxy). */
export async function serveMain(argv: string[], preset?: CaddyfileInput): Promise<void> {
  let flags;
  try {
    flags = parseFlags(FLAGS, argv);
  } catch (err) {
    if (err instanceof FlagError && err.help) {
      process.stdout.write(`${USAGE_HEAD}${formatUsage(FLAGS)}\n`);
      process.exit(0);
    }
    process.stderr.write(`${(err as Error).message}\n${USAGE_HEAD}${formatUsage(FLAGS)}\n`);
    process.exit(2);
  }
  const flag = (name: string) => flags.values.get(name)!;
  const bool = (name: string) => flag(name) === 'true';
  const logFormat = flag('log-format');
  if (logFormat !== 'auto' && logFormat !== 'json' && logFormat !== 'text') {
    fatal(`invalid value "${logFormat}" for flag -log-format: must be auto, json or text`, 2);
  }
  const log = createProcessLogger(flag('log'), logFormat);
  const graceMs = graceFlag(flag('grace'));
  const admin = adminFlag(
    flags.set.has('admin') ? flag('admin') : process.env.NODECADDY_ADMIN || flag('admin'),
  );
  const cwd = process.cwd();
  const workers = workersFlag(flag('workers'));
  const acme: AcmeFlags = {
    agree: bool('agree'),
    email: flag('email') || undefined,
    ca: caFlag(flag('ca')),
    caTimeoutMs: durationFlagOrExit('catimeout', flag('catimeout')),
    disableHttpChallenge: bool('disable-http-challenge'),
    disableTlsAlpnChallenge: bool('disable-tls-alpn-challenge'),
  };
  const dataDir = flag('data') ? path.resolve(cwd, flag('data')) : defaultDataDir(process.env);
  const clusterConfig = clusterFlagsOrExit(flags.set, flag, dataDir, cwd);
  const loadOptions = {
    root: flag('root'),
    host: flag('host'),
    port: flag('port'),
    httpPort: portFlag('http-port', flag('http-port')),
    httpsPort: portFlag('https-port', flag('https-port')),
    http2: bool('http2'),
    dataDir,
    cwd,
    env: process.env,
    log,
    workers,
    // Set by the primary for its workers, or by the user for several servers that share tunnels.
    runDir: process.env.NODECADDY_RUN_DIR || undefined,
    acme,
  };
  // A worker was forked by a primary that already did everything below (the env file is in its env).
  if (cluster.isWorker) {
    observeWorker(admin);
    // Challenges of orders another instance placed are in the shared storage: the primary looks for them.
    if (clusterConfig.storage.kind === 'redis') setChallengeSource(new ChallengesFromPrimary());
    joinClusterTunnels(clusterConfig, log);
    return runWorker(loadOptions, log, graceMs);
  }

  // Serving in this process (one worker, the default on a 1-CPU machine): it gets the workers' memory
  // settings too, before anything is read or written (a relaunch runs the same command again). Only all of
  // them: without `gc` and the sweeping flag, the young generation's cap alone (Node 20's run-time fallback)
  // cost the server relaying a tunnel download 1.4-1.8 ms of CPU per MB instead of 0.65-1.4.
  if (workers === 1) withMemorySettings({ fallback: false });
  if (flag('envfile')) {
    try {
      loadEnvFile(flag('envfile'), process.env);
    } catch (err) {
      fatal((err as Error).message);
    }
  }
  if (bool('env')) for (const [k, v] of Object.entries(process.env)) process.stdout.write(`${k}=${v}\n`);
  if (bool('version')) {
    process.stdout.write(`nodecaddy ${VERSION}\n`);
    // Which gzip serves whole bodies: the libdeflate binding, or node:zlib and why.
    process.stdout.write(
      libdeflate ? `gzip: libdeflate ${libdeflate.version}\n` : `gzip: node:zlib (${libdeflateMissing})\n`,
    );
    process.exit(0);
  }
  if (bool('json-to-caddyfile')) {
    try {
      process.stdout.write(`${jsonToCaddyfile(readStdin())}\n`);
      process.exit(0);
    } catch (err) {
      fatal(`Converting from JSON failed: ${(err as Error).message}`, 2);
    }
  }
  if (bool('caddyfile-to-json')) {
    try {
      process.stdout.write(`${caddyfileToJson(readStdin(), '', { baseDir: process.cwd() })}\n`);
      process.exit(0);
    } catch (err) {
      fatal(`Converting to JSON failed: ${(err as Error).message}`, 2);
    }
  }

  let readInput;
  let config: Config;
  try {
    readInput = preset
      ? () => preset
      : inputLoader({ ...loadOptions, conf: flag('conf'), positional: flags.positional, readStdin });
    config = loadConfig(readInput(), loadOptions);
  } catch (err) {
    fatal((err as Error).message);
  }
  if (bool('validate')) {
    for (const w of config.warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write('Caddyfile is valid\n');
    process.exit(0);
  }

  // With several workers, this process only supervises: it loads and validates every config (so a bad one
  // fails here, once), and the workers serve it. SCHED_NONE: see bench/README.md for the measurement.
  const engine = workers > 1 ? new ClusterEngine({ workers, log, scheduling: 'none' }) : undefined;
  const serveAdmin = observePrimary(admin, log);
  // The one connection to a shared storage of this process (workers have none of their own for certificates).
  const redis =
    clusterConfig.storage.kind === 'redis'
      ? new RedisLink({ url: clusterConfig.storage.url, prefix: clusterConfig.storage.prefix, log })
      : undefined;
  // Automatic HTTPS: this process is the only ACME client; the server processes get what it obtains.
  const sink = engine?.certificates ?? localSink;
  const shared = redis && sharedCertificates(redis, clusterConfig.secret!, sink, !!engine, log);
  const manager = new CertificateManager({
    storage:
      shared?.storage ??
      new FileStorage(clusterConfig.storage.kind === 'file' ? clusterConfig.storage.dir : dataDir),
    sink: shared?.sink ?? sink,
    peers: shared?.peers,
    flags: acme,
    log,
  });
  if (engine) engine.setCertificateRequests(manager);
  else setCertificateRequests(manager);
  const runtime = new Runtime(
    {
      ...loadOptions,
      log,
      graceMs,
      readInput,
      watch: bool('watch') && config.files.length > 0,
      certificates: automaticHttps(manager, acme),
    },
    engine,
  );
  // The serving process joins the cluster's tunnels (with workers, each worker does).
  if (!engine) joinClusterTunnels(clusterConfig, log, redis);
  try {
    await runtime.start(config);
  } catch (err) {
    log.error(`startup failed: ${(err as Error).message}`);
    await runtime.stop(0).catch(() => undefined);
    fatal((err as Error).message);
  }
  // Handlers first: whoever reads the listing or the pidfile may signal at once, and a signal that arrives
  // before its handler exists kills the process without a graceful stop.
  const pidfile = flag('pidfile');
  installSignals(runtime, log, graceMs, pidfile, () => engine?.kill());
  if (!bool('quiet')) process.stdout.write(startupLines(config, runtime.boundPorts()).join('\n') + '\n');
  log.info({ sites: config.sites.map((s) => s.label) }, 'serving');
  await serveAdmin(runtime, cwd);
  if (pidfile) {
    try {
      writeFileSync(pidfile, `${process.pid}\n`, { mode: 0o644 });
    } catch (err) {
      log.error(`writing pidfile failed: ${(err as Error).message}`);
    }
  }
}

function graceFlag(value: string): number {
  return durationFlagOrExit('grace', value);
}

function durationFlagOrExit(name: string, value: string): number {
  try {
    return durationFlag(name, value);
  } catch (err) {
    fatal((err as Error).message, 2);
  }
}

/**
 * -storage, -cluster-*, -instance-id, with their environment defaults. The primary fixes the instance id for
 * its workers (they parse the same flags) in $NODECADDY_INSTANCE_ID.
 */
function clusterFlagsOrExit(
  set: ReadonlySet<string>,
  flag: (name: string) => string,
  dataDir: string,
  cwd: string,
): ClusterSettings {
  const env = process.env;
  const given = (name: string, envName: string) => (set.has(name) ? flag(name) : env[envName] || flag(name));
  let settings: ClusterSettings;
  try {
    settings = clusterSettings(
      {
        storage: given('storage', 'NODECADDY_STORAGE'),
        clusterListen: flag('cluster-listen'),
        clusterAdvertise: flag('cluster-advertise'),
        clusterSecret: given('cluster-secret', 'NODECADDY_CLUSTER_SECRET'),
        instanceId: given('instance-id', 'NODECADDY_INSTANCE_ID'),
      },
      dataDir,
      cwd,
    );
  } catch (err) {
    fatal((err as Error).message, 2);
  }
  env.NODECADDY_INSTANCE_ID = settings.instanceId;
  if (settings.storage.kind === 'redis') setClusterInfo(settings.instanceId, redactUrl(settings.storage.url));
  return settings;
}

/** The tunnel registry and relay listener of -cluster-listen; a relay address that cannot be bound is fatal. */
function joinClusterTunnels(settings: ClusterSettings, log: Logger, redis?: RedisLink): void {
  startClusterTunnels(settings, log, redis).catch((err: Error) => {
    log.error(`-cluster-listen: ${err.message}`);
    fatal(`-cluster-listen: ${err.message}`);
  });
}

/** Stops serving, then the cluster's tunnels (the sites gave their names back as they closed). */
async function stopServing(runtime: Runtime, graceMs: number): Promise<void> {
  await runtime.stop(graceMs);
  await stopClusterTunnels();
}

/** -ca: an ACME directory URL. */
function caFlag(value: string): string {
  if (!/^https?:\/\/[^/]/i.test(value))
    fatal(`invalid value "${value}" for flag -ca: must be the URL of an ACME directory`, 2);
  return value;
}

/** -http-port, -https-port: a port number (0 lets the system pick, for tests). */
function portFlag(name: string, value: string): string {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535)
    fatal(`invalid value "${value}" for flag -${name}: must be a port number`, 2);
  return String(Number(value));
}

/** -admin (or $NODECADDY_ADMIN): host:port, :port, or off. */
function adminFlag(value: string): AdminAddress | undefined {
  try {
    return parseAdminAddress(value);
  } catch (err) {
    fatal((err as Error).message, 2);
  }
}

/** -workers: a positive integer; empty means one per CPU. */
function workersFlag(value: string): number {
  if (value === '') return os.availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1024)
    fatal(`invalid value "${value}" for flag -workers: must be a whole number from 1 to 1024`, 2);
  return n;
}

function installSignals(
  runtime: Runtime,
  log: Logger,
  graceMs: number,
  pidfile: string,
  killNow: () => void,
): void {
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      if (signal === 'SIGINT') {
        log.warn('SIGINT again: exiting now');
        killNow();
        cleanupPidfile(pidfile);
        process.exit(2);
      }
      return;
    }
    stopping = true;
    log.info({ signal, graceMs }, 'shutting down gracefully');
    stopServing(runtime, graceMs).then(
      () => {
        cleanupPidfile(pidfile);
        log.info('shutdown complete');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        cleanupPidfile(pidfile);
        process.exit(3);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGQUIT', () => {
    killNow();
    cleanupPidfile(pidfile);
    process.exit(0);
  });
  process.on('SIGHUP', () => log.info('SIGHUP ignored (use SIGUSR1 to reload)'));
  process.on('SIGUSR1', () => {
    log.info('SIGUSR1: reloading');
    void runtime.reload({ force: true, trigger: 'SIGUSR1' });
  });
  handleProcessFaults(log, (drainMs) => runtime.stop(drainMs), graceMs);
}

function cleanupPidfile(pidfile: string): void {
  if (pidfile) rmSync(pidfile, { force: true });
}
