// HAProxy in TCP mode in front of several nodecaddy instances (Debian's /usr/sbin/haproxy, reference scale.md
// appendix A.1): each frontend balances its connections over its servers, round robin (so that a client, an
// ACME CA validating, reaches every instance in turn) or, with a health check, least connections as a
// production set-up would. The stats socket tells how many connections each server got and which are UP.
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
  /**
   * Checked servers: `GET /` with this Host must answer 200 (twice in a row, every 500 ms) for a server to
   * take connections, and a server marked down has its sessions cut; balanced by least connections.
   */
  readonly healthHost?: string;
}

export interface Haproxy {
  /** Connections each server of the frontend's backend got so far. */
  sessions(frontend: string): Promise<Record<string, number>>;
  /** Servers of the frontend's backend whose health check passes (all of them without a check). */
  upServers(frontend: string): Promise<string[]>;
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
    // Tunnels and WebSockets are long-lived.
    '    timeout client 1h',
    '    timeout server 1h',
    '    timeout check 1s',
    '    retries 2',
    '    option redispatch',
  ];
  for (const f of frontends) {
    lines.push(`frontend fe_${f.name}`, `    bind 127.0.0.1:${f.port}`, `    default_backend be_${f.name}`);
    lines.push(`backend be_${f.name}`);
    if (f.healthHost) {
      lines.push(
        '    balance leastconn',
        '    option httpchk',
        `    http-check send meth GET uri / ver HTTP/1.1 hdr Host ${f.healthHost}`,
        '    http-check expect status 200',
        '    default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions',
      );
    } else lines.push('    balance roundrobin');
    const check = f.healthHost ? ' check' : '';
    for (const [name, port] of Object.entries(f.servers))
      lines.push(`    server ${name} 127.0.0.1:${port}${check}`);
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
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  /** The stat rows of a frontend's servers, by column name. */
  const servers = async (frontend: string) => {
    const csv = await command('show stat');
    const header = csv.split('\n')[0].replace(/^# /, '').split(',');
    return csv
      .split('\n')
      .slice(1)
      .map((row) => row.split(','))
      .filter((cells) => cells[0] === `be_${frontend}` && cells[1] !== 'BACKEND')
      .map((cells) => ({ name: cells[1], column: (c: string) => cells[header.indexOf(c)] }));
  };
  try {
    await waitFor(
      () => child.exitCode === null && command('show info').then((a) => a.includes('Name: HAProxy')),
      10_000,
      `haproxy listening (${out})`,
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    async sessions(frontend) {
      const out: Record<string, number> = {};
      for (const s of await servers(frontend)) out[s.name] = Number(s.column('stot'));
      return out;
    },
    async upServers(frontend) {
      return (await servers(frontend))
        .filter((s) => /^(UP|no check)/.test(s.column('status')))
        .map((s) => s.name);
    },
    async setState(frontend, server, state) {
      const answer = await command(`set server be_${frontend}/${server} state ${state}`);
      if (answer.trim() !== '') throw new Error(`haproxy: ${answer.trim()}`);
    },
    stop,
  };
}
