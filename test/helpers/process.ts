// Runs the real nodecaddy binary (build/src/cli.js) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, utimesSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from './http.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli.js');

export interface Nodecaddy {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
  /** Ports from the startup listing, in order (`Serving HTTP on port N`). */
  ports: number[];
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export interface StartOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: string;
  /** Wait for this many `Serving HTTP` lines (default 1); 0 = don't wait. */
  listeners?: number;
  /** node's own flags, before the program. */
  nodeArgs?: string[];
}

export function spawnNodecaddy(args: string[], opts: StartOptions = {}): Nodecaddy {
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, ...args], {
    cwd: opts.cwd,
    // No admin endpoint unless a test asks for one: tests run side by side and must not fight over :2019.
    env: { NODECADDY_ADMIN: 'off', ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  if (opts.stdin !== undefined) child.stdin.end(opts.stdin);
  else child.stdin.end();
  const exited = new Promise<number | string>((resolve) =>
    // 'close', not 'exit': only then has all of stdout and stderr been read.
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const nc: Nodecaddy = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    ports: [],
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  return nc;
}

/** Runs nodecaddy until it exits (for -validate, -version, conversions). */
export async function runNodecaddy(
  args: string[],
  opts: StartOptions = {},
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const nc = spawnNodecaddy(args, opts);
  const timer = setTimeout(() => nc.child.kill('SIGKILL'), 20_000);
  const code = await nc.exited;
  clearTimeout(timer);
  return { code, stdout: nc.stdout(), stderr: nc.stderr() };
}

/** Starts nodecaddy and waits for its startup listing; fails fast if it exits first. */
export async function startNodecaddy(args: string[], opts: StartOptions = {}): Promise<Nodecaddy> {
  const nc = spawnNodecaddy(args, opts);
  const want = opts.listeners ?? 1;
  let exitedEarly: number | string | undefined;
  void nc.exited.then((c) => (exitedEarly = c));
  await waitFor(
    () => {
      if (exitedEarly !== undefined) throw new Error(`nodecaddy exited (${exitedEarly}): ${nc.stderr()}`);
      const ports = [...nc.stdout().matchAll(/^Serving HTTPS? on (?:port |.*:)(\d+)$/gm)].map((m) =>
        Number(m[1]),
      );
      if (ports.length < want) return false;
      nc.ports.push(...ports);
      return true;
    },
    15_000,
    'nodecaddy startup',
  ).catch((e: unknown) => {
    nc.child.kill('SIGKILL');
    throw e;
  });
  return nc;
}

/** A temp directory removed by the returned cleanup. */
export function tempDir(prefix = 'nodecaddy-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Ports handed out by freePort in any test process of this machine, one file each (see freePort). */
const HANDED_OUT = path.join(os.tmpdir(), 'nodecaddy-test-ports');
/** A port handed out longer ago than this may be handed out again: its test is over. */
const HANDED_OUT_MS = 15 * 60_000;

/**
 * A port that was free a moment ago (for configs that need a known port, e.g. adding a listener, or the ports
 * an ACME CA validates on). Picked below Linux's ephemeral range (32768-60999): a port the kernel hands out for
 * `listen(0)` or an outgoing connection could be taken by another test, or a load test, between this check and
 * the bind that wants it. Tried on every interface, as nodecaddy binds. A port is handed out once in 15
 * minutes across the test files running side by side (a file per port, created exclusively): a suite that
 * picks its ports first and binds them a minute later lost one to another file's pick.
 */
export async function freePort(): Promise<number> {
  mkdirSync(HANDED_OUT, { recursive: true });
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * 10_000);
    if (claim(port) && (await canListen(port))) return port;
  }
  throw new Error('no free port found between 10000 and 20000');
}

/** Takes `port` for this test unless another took it within HANDED_OUT_MS. */
function claim(port: number): boolean {
  const file = path.join(HANDED_OUT, String(port));
  try {
    closeSync(openSync(file, 'wx'));
    return true;
  } catch {
    try {
      if (Date.now() - statSync(file).mtimeMs < HANDED_OUT_MS) return false;
      utimesSync(file, new Date(), new Date());
      return true;
    } catch {
      return false;
    }
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen({ port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
