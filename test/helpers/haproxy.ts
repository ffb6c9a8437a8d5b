// HAProxy in TCP mode in front of several nodecaddy instances (Debian's /usr/sbin/haproxy, reference scale.md
// appendix A.1): each frontend balances its connections round robin over its servers, so that a client (an
// ACME CA validating) reaches every instance in turn. The stats socket tells how many connections each server
// got.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { waitFor } from './http.js';

export const HAPROXY = '/usr/sbin/haproxy';

export interface Frontend {
  /** A name of letters and digits (backend and stats use it). */
  readonly name: string;
  readonly port: number;
  /** Server name -> 127.0.0.1 port. */
  readonly servers: Readonly<Record<string, number>>;
}

export interface Haproxy {
  /** Connections each server of the frontend's backend got so far. */
  sessions(frontend: string): Promise<Record<string, number>>;
  /** Takes a server out of the rotation (`maint`) or puts it back (`ready`). */
  setState(frontend: string, server: string, state: 'ready' | 'maint'): Promise<void>;
  stop(): Promise<void>;
}

export function haproxySkip(): string | false {
  return existsSync(HAPROXY) ? false : `needs ${HAPROXY} (Debian package haproxy)`;
}

export async function startHaproxy(dir: string, frontends: readonly Frontend[]): Promise<Haproxy> {
  const socket = path.join(dir, 'haproxy.sock');
  const lines = [
    'global',
    '    maxconn 2000',
    `    stats socket ${socket} mode 600 level admin`,
    'defaults',
    '    mode tcp',
    '    timeout connect 2s',
    '    timeout client 30s',
    '    timeout server 30s',
    '    retries 2',
    '    option redispatch',
  ];
  for (const f of frontends) {
    lines.push(`frontend fe_${f.name}`, `    bind 127.0.0.1:${f.port}`, `    default_backend be_${f.name}`);
    lines.push(`backend be_${f.name}`, '    balance roundrobin');
    for (const [name, port] of Object.entries(f.servers)) lines.push(`    server ${name} 127.0.0.1:${port}`);
  }
  const cfg = path.join(dir, 'haproxy.cfg');
  writeFileSync(cfg, `${lines.join('\n')}\n`);
  const child = spawn(HAPROXY, ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const command = (text: string) =>
    new Promise<string>((resolve, reject) => {
      const c = net.connect(socket);
      let answer = '';
      c.setEncoding('utf8').on('data', (d: string) => (answer += d));
      c.on('end', () => resolve(answer));
      c.on('error', reject);
      c.end(`${text}\n`);
    });
  await waitFor(
    () => child.exitCode === null && command('show info').then((a) => a.includes('Name: HAProxy')),
    10_000,
    `haproxy listening (${out})`,
  );
  return {
    async sessions(frontend) {
      const csv = await command('show stat');
      const out: Record<string, number> = {};
      const header = csv.split('\n')[0].replace(/^# /, '').split(',');
      const stot = header.indexOf('stot');
      for (const row of csv.split('\n').slice(1)) {
        const cells = row.split(',');
        if (cells[0] === `be_${frontend}` && cells[1] !== 'BACKEND') out[cells[1]] = Number(cells[stot]);
      }
      return out;
    },
    async setState(frontend, server, state) {
      const answer = await command(`set server be_${frontend}/${server} state ${state}`);
      if (answer.trim() !== '') throw new Error(`haproxy: ${answer.trim()}`);
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
