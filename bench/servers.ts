// Starting each server (and the backends) with a config for one scenario.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { start, type Proc } from './procs.js';
import { TUNNEL_HOST, type Env, type Scenario, type ServerName } from './scenarios.js';

export interface Paths {
  /** Temp dir of this run. */
  dir: string;
  /** build/src/cli.js */
  cli: string;
  /** build/bench/backend.js */
  backend: string;
  workers: number;
}

export function nginxConf(sc: Scenario, port: number, env: Env, p: Paths): string {
  const tmp = path.join(p.dir, 'nginx-tmp');
  mkdirSync(tmp, { recursive: true });
  const mime = existsSync('/etc/nginx/mime.types') ? 'include /etc/nginx/mime.types;' : '';
  return `worker_processes ${p.workers};
daemon off;
pid ${p.dir}/nginx.pid;
error_log ${p.dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  ${mime}
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65;
  keepalive_requests 100000;
  open_file_cache max=1000 inactive=60s;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
${sc.nginx!(port, env)}}
`;
}

export function caddyConf(sc: Scenario, port: number, env: Env): string {
  // No admin endpoint (nothing on :2019), no automatic HTTPS (the HTTPS scenarios name their certificate);
  // Caddy 2 logs no access log unless asked.
  return `{\n  admin off\n  auto_https off\n}\n${sc.caddy!(port, env)}`;
}

/** Starts one server for one scenario; returns the process (its group is the server's process tree). */
export function startServer(server: ServerName, sc: Scenario, port: number, env: Env, p: Paths): Proc {
  const file = (name: string, text: string) => {
    const f = path.join(p.dir, name);
    writeFileSync(f, text);
    return f;
  };
  switch (server) {
    case 'nginx': {
      const conf = file(`nginx-${sc.id}.conf`, nginxConf(sc, port, env, p));
      return start('nginx', '/usr/sbin/nginx', ['-p', p.dir, '-e', `${p.dir}/nginx-error.log`, '-c', conf]);
    }
    case 'caddy': {
      const conf = file(`Caddyfile-${sc.id}`, caddyConf(sc, port, env));
      const home = path.join(p.dir, 'caddy-home');
      return start('caddy', '/usr/bin/caddy', ['run', '--config', conf, '--adapter', 'caddyfile'], {
        env: {
          ...process.env,
          GOMAXPROCS: String(p.workers),
          HOME: home,
          XDG_DATA_HOME: home,
          XDG_CONFIG_HOME: home,
        },
      });
    }
    case 'nodecaddy': {
      const conf = file(`nodecaddy-${sc.id}.caddy`, sc.nodecaddy!(port, env));
      // The admin endpoint on (metrics counted, as by default) but on a free port: :2019 may be taken.
      const args = [
        '-conf',
        conf,
        '-workers',
        String(p.workers),
        '-watch=false',
        '-quiet',
        '-admin',
        '127.0.0.1:0',
      ];
      // Certificates come from files, but keep anything nodecaddy would store out of the user's data folder.
      if (sc.tls) args.push('-data', path.join(p.dir, 'nodecaddy-data'));
      return start('nodecaddy', process.execPath, [p.cli, ...args, '-log', `${p.dir}/nodecaddy.log`]);
    }
    case 'direct':
      throw new Error('the direct scenario uses the backend');
  }
}

/** `nodecaddy -validate` of the scenario's site: undefined when fine, else the reason to skip it. */
export function nodecaddyCannot(sc: Scenario, env: Env, p: Paths): string | undefined {
  const conf = path.join(p.dir, `validate-${sc.id}.caddy`);
  writeFileSync(conf, sc.nodecaddy!(1, env));
  try {
    execFileSync(process.execPath, [p.cli, '-validate', '-conf', conf], { stdio: 'pipe' });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    const unknown = /Unknown directive '([^']+)'/.exec(stderr);
    return unknown ? `nodecaddy has no \`${unknown[1]}\` directive on this build` : stderr.split('\n')[0];
  }
  if (sc.tunnelClient) {
    try {
      execFileSync(process.execPath, [p.cli, 'tunnel', '-h'], { stdio: 'pipe' });
    } catch {
      return 'this build has no `nodecaddy tunnel` command';
    }
  }
  return undefined;
}

/** The tunnel client: to the backend, or for a TCP scenario a TCP tunnel to the TCP source. */
export function startTunnelClient(port: number, env: Env, p: Paths, tcp = false): Proc {
  return start('nodecaddy tunnel', process.execPath, [
    p.cli,
    'tunnel',
    '-server',
    `http://tunnel.localhost:${port}`,
    '-dial',
    `127.0.0.1:${port}`,
    '-secret',
    env.tunnelSecret,
    '-name',
    TUNNEL_HOST.split('.')[0],
    ...(tcp ? ['-tcp', `127.0.0.1:${env.tcpSourcePort}`] : ['-to', `127.0.0.1:${env.backendPort}`]),
    '-quiet',
  ]);
}

export function startTcpSource(port: number, p: Paths): Proc {
  return start('tcp source', process.execPath, [
    path.join(path.dirname(p.backend), 'tcpsource.js'),
    String(port),
  ]);
}

export function startBackend(port: number, p: Paths): Proc {
  return start('backend', process.execPath, [p.backend, String(port)]);
}

/**
 * php-fpm with `children` workers. A worker serves one FastCGI connection at a time, and nginx cannot queue:
 * it opens an upstream connection per request in flight, and with fewer workers than that the surplus
 * connections wait in php-fpm's listen queue while nginx's kept-alive connections hold every worker
 * (measured with 4 workers and `wrk -c50`: 4 connections served, 46 waiting with their request, wrk's
 * timeouts counted as errors). The servers of a scenario run side by side, and the connections the others
 * keep idle hold workers while one is loaded: each nginx worker ends up keeping its `keepalive` (16) as wrk's
 * connections land on one worker or the other from run to run (with `-c16` and 32 workers, nginx held all
 * 32 and Caddy and nodecaddy got none), and nodecaddy's idle ones last 250 ms (15 s with `-workers 1`). So
 * run.ts gives php-fpm a worker per client connection twice over, plus nginx's idle ones.
 */
export function startPhpFpm(port: number, p: Paths, children: number): Proc {
  const conf = path.join(p.dir, 'php-fpm.conf');
  const root = process.getuid?.() === 0;
  writeFileSync(
    conf,
    `[global]\npid = ${p.dir}/php-fpm.pid\nerror_log = ${p.dir}/php-fpm.log\ndaemonize = no\n\n` +
      `[bench]\nlisten = 127.0.0.1:${port}\npm = static\npm.max_children = ${children}\n` +
      'pm.max_requests = 0\n',
  );
  return start('php-fpm', '/usr/sbin/php-fpm8.2', ['-y', conf, '-F', ...(root ? ['-R'] : [])]);
}

/** Machine facts for the results header. */
export function machine(): Record<string, string> {
  const cpuinfo = (() => {
    try {
      return /model name\s*:\s*(.+)/.exec(execFileSync('cat', ['/proc/cpuinfo']).toString())?.[1] ?? '?';
    } catch {
      return '?';
    }
  })();
  // nginx -v prints on stderr, caddy version on stdout.
  const version = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() || '?';
  };
  return {
    CPU: `${cpuinfo}, ${os.availableParallelism()} CPUs`,
    Kernel: `${os.type()} ${os.release()}`,
    Node: process.version,
    nginx: version('/usr/sbin/nginx', ['-v']).replace('nginx version: ', ''),
    Caddy: version('/usr/bin/caddy', ['version']).split(' ')[0] ?? '?',
    'Load average at start': os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}
