// Debian's Pebble (a test ACME CA) for a test file, as in reference/tls.md §5: its HTTPS listener gets a
// certificate from a throwaway CA made here (Debian ships none), the CA's PEM goes to a file that nodecaddy
// processes trust through NODE_EXTRA_CA_CERTS, and Pebble validates challenges on the ports the caller's
// nodecaddy listens on (-http-port / -https-port). With `dns: true`, pebble-challtestsrv runs beside it as its
// DNS server: every name resolves to 127.0.0.1 and TXT records are set through its management API.
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Resolver } from 'node:dns/promises';
import path from 'node:path';
import { rootCa, signedLeaf } from '../../src/certs/x509.js';
import { waitFor } from './http.js';
import { freePort, tempDir } from './process.js';

export const PEBBLE = '/usr/bin/pebble';
export const CHALLTESTSRV = '/usr/bin/pebble-challtestsrv';

export interface PebbleOptions {
  /** Where Pebble validates HTTP-01 (the nodecaddy under test's -http-port). */
  readonly httpPort: number;
  /** Where Pebble validates TLS-ALPN-01 (the nodecaddy under test's -https-port). */
  readonly tlsPort: number;
  /** Lifetime of issued certificates in seconds (Pebble's default is 5 years). */
  readonly certificateValidityPeriod?: number;
  /** Skip Pebble's random 0-15 s sleep before each validation (default true: one test keeps it). */
  readonly vaNoSleep?: boolean;
  /** Percentage of good nonces rejected as badNonce (default 0; Pebble's own default is 5). */
  readonly nonceRejectPercent?: number;
  /** Percentage of valid authorizations reused for the same account (Pebble's default 50). */
  readonly authzReusePercent?: number;
  /** Run pebble-challtestsrv as Pebble's DNS server (any name -> 127.0.0.1, TXT records for DNS-01). */
  readonly dns?: boolean;
  /** More environment for Pebble. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface ChallTestSrv {
  /** `127.0.0.1:<port>`, UDP and TCP. */
  readonly dnsServer: string;
  /** `http://127.0.0.1:<port>` */
  readonly managementUrl: string;
  setTxt(host: string, value: string): Promise<void>;
  clearTxt(host: string): Promise<void>;
  addA(host: string, ip: string): Promise<void>;
}

export interface Pebble {
  /** `https://127.0.0.1:<port>/dir` */
  readonly directoryUrl: string;
  /** The PEM file of the CA of Pebble's own listener (for NODE_EXTRA_CA_CERTS). */
  readonly caFile: string;
  readonly caPem: string;
  /** An agent that trusts Pebble's listener. */
  readonly agent: https.Agent;
  /** Present with `dns: true`. */
  readonly dns: ChallTestSrv | undefined;
  /** Pebble's issuing root (PEM) since its last start: issued chains verify against it. */
  root(): Promise<string>;
  /** New orders Pebble accepted so far, over all its starts. */
  orderCount(): number;
  /** Pebble's output so far, over all its starts. */
  log(): string;
  /** Takes the CA down (the listener ports are free while it is down). */
  stopCa(): Promise<void>;
  /** Brings it back on the same ports (with new roots: Pebble makes them at every start). */
  startCa(): Promise<void>;
  /** Stops everything and removes the temp dir. */
  stop(): Promise<void>;
}

/** Why Pebble tests cannot run here (for `test(..., { skip })`), or false. */
export function pebbleSkip(dns = false): string | false {
  if (!existsSync(PEBBLE)) return `needs ${PEBBLE} (Debian package pebble)`;
  if (dns && !existsSync(CHALLTESTSRV)) return `needs ${CHALLTESTSRV} (Debian package pebble)`;
  return false;
}

/** A child process whose output is kept. */
interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  output(): string;
  kill(): Promise<void>;
}

function run(file: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Proc {
  const child = spawn(file, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return {
    child,
    exited,
    output: () => out,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** A port free for both UDP and TCP on 127.0.0.1 a moment ago (challtestsrv serves DNS on both). */
async function freeDnsPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    const udp = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      udp.once('error', () => resolve(false));
      udp.bind(port, '127.0.0.1', () => resolve(true));
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (ok) return port;
  }
}

/** GET over https trusting `agent`'s CA; the body, or an error for a non-2xx answer. */
function httpsGet(url: string, agent: https.Agent): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, { agent }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () =>
        (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300
          ? resolve(body)
          : reject(new Error(`GET ${url}: ${res.statusCode} ${body}`)),
      );
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

function postJson(url: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`POST ${url} ${data}: ${res.statusCode}`)),
        );
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error(`POST ${url} timed out`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Waits until `ready` succeeds, failing fast with the process output when the process exits first. */
async function waitReady(proc: Proc, what: string, ready: () => Promise<unknown>): Promise<void> {
  let exited: number | string | undefined;
  void proc.exited.then((c) => (exited = c));
  await waitFor(
    async () => {
      if (exited !== undefined) throw new Error(`${what} exited (${exited}): ${proc.output()}`);
      await ready();
      return true;
    },
    15_000,
    what,
  ).catch(async (err: unknown) => {
    await proc.kill();
    throw new Error(`${(err as Error).message}\n${what} output:\n${proc.output()}`, { cause: err });
  });
}

async function startChallTestSrv(dir: string): Promise<{ proc: Proc; srv: ChallTestSrv }> {
  const dnsPort = await freeDnsPort();
  const mgmtPort = await freePort();
  const dnsServer = `127.0.0.1:${dnsPort}`;
  const managementUrl = `http://127.0.0.1:${mgmtPort}`;
  // -defaultIPv6 "": with its own resolver Pebble 2.4.0 asks for AAAA first and dials the first address
  // (reference §5.1). Its own challenge servers are off: they would take ports 5001-5003.
  const proc = run(
    CHALLTESTSRV,
    ['-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', dnsServer, '-http01', '', '-https01', '',
      '-tlsalpn01', '', '-management', `127.0.0.1:${mgmtPort}`], // prettier-ignore
    dir,
    process.env,
  );
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([dnsServer]);
  await waitReady(proc, 'pebble-challtestsrv', async () => {
    await postJson(`${managementUrl}/set-default-ipv4`, { ip: '127.0.0.1' });
    await resolver.resolve4('ready.pebble.test');
  });
  const fqdn = (host: string): string => (host.endsWith('.') ? host : `${host}.`);
  const srv: ChallTestSrv = {
    dnsServer,
    managementUrl,
    setTxt: (host, value) => postJson(`${managementUrl}/set-txt`, { host: fqdn(host), value }),
    clearTxt: (host) => postJson(`${managementUrl}/clear-txt`, { host: fqdn(host) }),
    addA: (host, ip) => postJson(`${managementUrl}/add-a`, { host: fqdn(host), addresses: [ip] }),
  };
  return { proc, srv };
}

/** Pebble's listener certificate: a throwaway CA and a leaf for localhost and 127.0.0.1. */
async function listenerCertificate(dir: string): Promise<{ caFile: string; caPem: string }> {
  const day = 24 * 3600 * 1000;
  const ca = await rootCa('pebble listener test CA', 2 * day);
  const leaf = await signedLeaf(ca, ['localhost', '127.0.0.1'], 'P256', day);
  writeFileSync(path.join(dir, 'cert.pem'), leaf.cert);
  writeFileSync(path.join(dir, 'key.pem'), leaf.key, { mode: 0o600 });
  const caFile = path.join(dir, 'ca.pem');
  writeFileSync(caFile, ca.cert);
  return { caFile, caPem: ca.cert };
}

/** Starts Pebble (and challtestsrv with `dns: true`) and waits until its directory answers. */
export async function startPebble(opts: PebbleOptions): Promise<Pebble> {
  const { dir, cleanup } = tempDir('nodecaddy-pebble-');
  const procs: Proc[] = [];
  try {
    const { caFile, caPem } = await listenerCertificate(dir);
    const agent = new https.Agent({ ca: caPem, keepAlive: false });
    const [acmePort, mgmtPort] = [await freePort(), await freePort()];
    const challtestsrv = opts.dns ? await startChallTestSrv(dir) : undefined;
    if (challtestsrv) procs.push(challtestsrv.proc);
    const config = {
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: path.join(dir, 'cert.pem'),
        privateKey: path.join(dir, 'key.pem'),
        httpPort: opts.httpPort,
        tlsPort: opts.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(opts.certificateValidityPeriod === undefined
          ? {}
          : { certificateValidityPeriod: opts.certificateValidityPeriod }),
      },
    };
    const configFile = path.join(dir, 'pebble.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (opts.vaNoSleep ?? true) env.PEBBLE_VA_NOSLEEP = '1';
    else delete env.PEBBLE_VA_NOSLEEP;
    env.PEBBLE_WFE_NONCEREJECT = String(opts.nonceRejectPercent ?? 0);
    if (opts.authzReusePercent !== undefined) env.PEBBLE_AUTHZREUSE = String(opts.authzReusePercent);
    Object.assign(env, opts.env);
    const args = ['-config', configFile];
    if (challtestsrv) args.push('-dnsserver', challtestsrv.srv.dnsServer);

    const directoryUrl = `https://127.0.0.1:${acmePort}/dir`;
    let earlierLogs = '';
    let pebble: Proc | undefined;
    const startCa = async (): Promise<void> => {
      if (pebble) throw new Error('Pebble is running');
      const proc = run(PEBBLE, args, dir, env);
      pebble = proc;
      procs.push(proc);
      await waitReady(proc, 'pebble', () => httpsGet(directoryUrl, agent));
    };
    const stopCa = async (): Promise<void> => {
      if (!pebble) return;
      await pebble.kill();
      earlierLogs += pebble.output();
      procs.splice(procs.indexOf(pebble), 1);
      pebble = undefined;
    };
    const log = (): string => earlierLogs + (pebble?.output() ?? '');
    await startCa();
    return {
      directoryUrl,
      caFile,
      caPem,
      agent,
      dns: challtestsrv?.srv,
      root: () => httpsGet(`https://127.0.0.1:${mgmtPort}/roots/0`, agent),
      // Pebble 2.4.0 logs one `Added order "<id>" to the db` per newOrder request it accepts (read from its
      // output: a line may arrive a moment after the response to the order).
      orderCount: () => log().match(/Added order "[^"]*" to the db/g)?.length ?? 0,
      log,
      stopCa,
      startCa,
      async stop() {
        await Promise.all(procs.map((p) => p.kill()));
        agent.destroy();
        cleanup();
      },
    };
  } catch (err) {
    await Promise.all(procs.map((p) => p.kill()));
    cleanup();
    throw err;
  }
}
