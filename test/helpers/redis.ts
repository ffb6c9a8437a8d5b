// A real redis-server on 127.0.0.1 for the TCP tunnel tests (Debian's redis-server), and redis-cli runs.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './http.js';
import { freePort } from './process.js';

export interface Redis {
  port: number;
  child: ChildProcess;
  stop(): Promise<void>;
}

export const REDIS_SERVER = '/usr/bin/redis-server';
export const REDIS_CLI = '/usr/bin/redis-cli';

/** `port`: a given one (to start Redis again where the clients expect it), else a free one. */
export async function startRedis(dir: string, port?: number): Promise<Redis> {
  port ??= await freePort();
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(() => /Ready to accept connections/.test(out), 10_000, `redis-server on ${port}:\n${out}`);
  return {
    port,
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Runs redis-cli against `port`; resolves with its stdout (as bytes), rejects on a non-zero exit. */
export function redisCli(port: number, args: string[], stdin?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      REDIS_CLI,
      ['-h', '127.0.0.1', '-p', String(port), ...args],
      { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message} ${stderr.toString()}`));
        else resolve(stdout);
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
  });
}
