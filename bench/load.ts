// One measured (or warm-up) run of a scenario against one server, with the scenario's load generator.
import path from 'node:path';
import { handshakes } from './handshakes.js';
import { h2load } from './h2load.js';
import type { Scenario } from './scenarios.js';
import { tcpLoad } from './tcpload.js';
import { wrk, type WrkResult } from './wrk.js';

export interface LoadRun {
  port: number;
  seconds: number;
  threads: number;
  connections: number;
  /** A folder for h2load's per-request log. */
  dir: string;
}

export function loadOnce(sc: Scenario, r: LoadRun): Promise<WrkResult> {
  if (sc.tcp) return tcpLoad({ port: r.port, connections: r.connections, seconds: r.seconds });
  const url = `${sc.tls ? 'https' : 'http'}://127.0.0.1:${r.port}${sc.path}`;
  const headers = sc.headers ?? {};
  switch (sc.load ?? 'wrk') {
    case 'wrk':
      return wrk({ url, threads: r.threads, connections: r.connections, headers, seconds: r.seconds });
    case 'h2load':
      return h2load({
        url,
        connections: r.connections,
        streams: sc.streams ?? 10,
        seconds: r.seconds,
        logFile: path.join(r.dir, `h2load-${r.port}.log`),
        headers,
      });
    case 'handshakes':
      return handshakes(
        { port: r.port, connections: r.connections, seconds: r.seconds, path: sc.path, host: '127.0.0.1' },
        sc.bytes ?? 0,
      );
  }
}

/** What the results header says about a scenario's load. */
export function describeLoad(sc: Scenario, threads: number, connections: number, seconds: number): string {
  if (sc.tcp) return `${connections} TCP reader(s) for ${seconds}s`;
  switch (sc.load ?? 'wrk') {
    case 'wrk':
      return `wrk -t${threads} -c${connections} -d${seconds}s`;
    case 'h2load':
      return `h2load -t1 -c${connections} -m${sc.streams ?? 10} -D${seconds}`;
    case 'handshakes':
      return `${connections} × openssl s_time -new -time ${seconds}`;
  }
}
