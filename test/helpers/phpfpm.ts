// A private php-fpm master for tests and benchmarks: a temporary config with one pool on a loopback TCP
// port and one on a unix socket, run in the foreground and stopped afterwards.
//
//   const skip = phpFpmSkip();            // false, or why the tests skip (outside CI only)
//   describe('…', { skip }, () => { … }); // in CI (CI=1) a missing php-fpm is a failure, not a skip
//   const fpm = await startPhpFpm();      // fpm.port, fpm.socket, fpm.stop()
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './http.js';
import { freePort } from './process.js';

const CANDIDATES = [
  process.env.PHP_FPM,
  '/usr/sbin/php-fpm8.2',
  '/usr/sbin/php-fpm8.3',
  '/usr/sbin/php-fpm8.1',
  '/usr/sbin/php-fpm',
  '/usr/local/sbin/php-fpm',
];

/** The php-fpm binary, or undefined when none is installed. */
export function findPhpFpm(): string | undefined {
  for (const c of CANDIDATES) {
    if (!c) continue;
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/**
 * For `describe(name, { skip: phpFpmSkip() })`: false when php-fpm is there, or in CI (where a missing
 * php-fpm must fail the run, which startPhpFpm then does); otherwise the reason to skip.
 */
export function phpFpmSkip(): string | false {
  if (findPhpFpm() || process.env.CI) return false;
  return 'php-fpm is not installed (apt-get install php-fpm, or set PHP_FPM=/path/to/php-fpm)';
}

export interface PhpFpmOptions {
  /** Workers per pool (pm = static keeps the numbers predictable). Default 4. */
  children?: number;
  /** Extra php_admin_value settings for both pools. */
  ini?: Record<string, string>;
}

export interface PhpFpm {
  /** The TCP pool's port on 127.0.0.1. */
  readonly port: number;
  /** The unix socket pool's path. */
  readonly socket: string;
  readonly child: ChildProcess;
  /** php-fpm's own log (master and worker messages). */
  log(): string;
  stop(): Promise<void>;
}

const DEFAULT_INI: Record<string, string> = {
  display_errors: '0',
  log_errors: '1',
  html_errors: '0',
  max_execution_time: '0',
  memory_limit: '128M',
  upload_max_filesize: '200M',
  post_max_size: '200M',
};

export async function startPhpFpm(opts: PhpFpmOptions = {}): Promise<PhpFpm> {
  const bin = findPhpFpm();
  if (!bin) throw new Error(`php-fpm not found (${phpFpmSkip() || 'apt-get install php-fpm'})`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-fpm-'));
  const port = await freePort();
  const socket = path.join(dir, 'fpm.sock');
  const asRoot = process.getuid?.() === 0;
  const ini = { ...DEFAULT_INI, ...opts.ini };
  const pool = (name: string, listen: string) =>
    [
      `[${name}]`,
      `listen = ${listen}`,
      ...(asRoot ? ['user = root', 'group = root'] : []),
      'pm = static',
      `pm.max_children = ${opts.children ?? 4}`,
      'pm.status_path = /fpm-status',
      'catch_workers_output = yes',
      // Scripts can tell which pool served them: getenv('FPM_POOL').
      `env[FPM_POOL] = ${name}`,
      ...Object.entries(ini).map(([k, v]) => `php_admin_value[${k}] = ${v}`),
      '',
    ].join('\n');
  const conf = path.join(dir, 'php-fpm.conf');
  writeFileSync(
    conf,
    [
      '[global]',
      `pid = ${path.join(dir, 'php-fpm.pid')}`,
      `error_log = ${path.join(dir, 'php-fpm.log')}`,
      'daemonize = no',
      '',
      pool('tcp', `127.0.0.1:${port}`),
      pool('unix', socket),
    ].join('\n'),
  );
  const args = ['-F', '-y', conf, '-p', dir, ...(asRoot ? ['-R'] : [])];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const log = () => {
    try {
      return output + readFileSync(path.join(dir, 'php-fpm.log'), 'utf8');
    } catch {
      return output;
    }
  };
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));

  const stop = async () => {
    if (!gone) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const early = exited.then(() => {
      throw new Error(`php-fpm exited: ${log()}`);
    });
    await Promise.race([
      early,
      waitFor(
        async () => gone || (existsSync(socket) && (await canConnect(port))),
        15_000,
        'php-fpm to listen',
      ),
    ]);
    early.catch(() => undefined);
    if (gone) throw new Error(`php-fpm exited: ${log()}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, socket, child, log, stop };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * A TCP relay in front of php-fpm that counts the connections made through it: proof of how many
 * connections a client really opened (php-fpm's own status counts requests, not connections).
 */
export async function connectionCounter(
  target: number,
): Promise<{ port: number; connections(): number; open(): number; close(): Promise<void> }> {
  let count = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    count++;
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => count,
    /** Connections open through the relay now. */
    open: () => sockets.size / 2,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
