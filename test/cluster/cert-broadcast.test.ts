// The certificate plumbing between the cluster primary (where the certificate manager runs) and real worker
// processes: challenges and certificates reach every worker before a put resolves, a new worker gets them
// before it serves, and workers' on-demand requests and tunnel claims reach the primary's handler.
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { selfSignedLeaf } from '../../src/certs/x509.js';
import type { AcmeChallenge, PemPair } from '../../src/core/tls/managed.js';
import { selfSigned } from '../helpers/certs.js';
import type { HarnessCommand, HarnessReply, WorkerNeedResult } from '../helpers/cluster-certs-main.js';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir } from '../helpers/process.js';
import { getOnNewConnection, servingPid } from '../helpers/workers.js';

const HARNESS = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../helpers/cluster-certs-main.js',
);
/** Short, so that the test of a worker that never answers does not wait the production 10 s. */
const ACK_TIMEOUT_MS = 3000;

let dir: string;
let cleanup: () => void;
let primary: ChildProcess;
let httpPort: number;
let httpsPort: number;
let pids: number[];
const events: HarnessReply[] = [];
const replies = new Map<number, (r: HarnessReply) => void>();
let ids = 0;

type Command = HarnessCommand extends infer C ? (C extends unknown ? Omit<C, 'id'> : never) : never;

/** Sends a command to the harness; resolves with its reply (ok or not). */
function call(command: Command): Promise<HarnessReply & { id: number }> {
  const id = ++ids;
  return new Promise((resolve) => {
    replies.set(id, resolve as (r: HarnessReply) => void);
    primary.send({ ...command, id });
  });
}

async function ok(command: Command): Promise<WorkerNeedResult | number[] | undefined> {
  const r = await call(command);
  if ('ok' in r && r.ok) return r.result;
  throw new Error('error' in r ? r.error : 'no answer');
}

const pem = async (name: string): Promise<PemPair> => selfSignedLeaf([name], 'P256', 86_400_000);

before(async () => {
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'site\n');
  selfSigned(dir, 'site', ['site.test']);
  httpPort = await freePort();
  httpsPort = await freePort();
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `http://127.0.0.1:${httpPort} {\n  root www\n}\n` +
      `https://site.test:${httpsPort} {\n  tls site.pem site.key\n  root www\n}\n`,
  );
  primary = fork(HARNESS, [dir, String(httpPort), String(ACK_TIMEOUT_MS)], { stdio: 'inherit' });
  primary.on('message', (r: HarnessReply) => {
    if ('id' in r) {
      replies.get(r.id)?.(r);
      replies.delete(r.id);
    } else events.push(r);
  });
  const ready = await waitFor(
    () => events.find((e) => 'event' in e && e.event === 'ready'),
    20_000,
    'the cluster harness',
  );
  if ('pids' in ready) pids = ready.pids;
  assert.equal(pids.length, 2);
});

after(async () => {
  if (primary && primary.exitCode === null) {
    const exited = new Promise((r) => primary.once('exit', r));
    primary.send({ cmd: 'stop', id: 0 });
    const timer = setTimeout(() => primary.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
  cleanup();
});

/**
 * GETs `path` on new connections until every worker in `workers` has answered (held open, so each is a new
 * accept); returns `status body` per worker pid.
 */
async function answersPerWorker(url: string, workers: readonly number[]): Promise<Map<number, string>> {
  const seen = new Map<number, string>();
  const open: net.Socket[] = [];
  try {
    for (let i = 0; i < 200 && seen.size < workers.length; i++) {
      const { socket, body, status } = await getOnNewConnection(httpPort, url);
      open.push(socket);
      const pid = servingPid(socket, httpPort, workers);
      if (pid !== undefined) seen.set(pid, `${status} ${body}`);
    }
  } finally {
    for (const s of open) s.destroy();
  }
  return seen;
}

test('an HTTP-01 challenge is answered by every worker once put resolves, and by none once dropped', async () => {
  const challenge: AcmeChallenge = { type: 'http-01', token: 'tok-1', keyAuthorization: 'tok-1.thumb' };
  await ok({ cmd: 'putChallenge', challenge });
  const answered = await answersPerWorker('/.well-known/acme-challenge/tok-1', pids);
  assert.deepEqual([...answered.keys()].sort(), [...pids].sort());
  for (const answer of answered.values()) assert.equal(answer, '200 tok-1.thumb');

  await ok({ cmd: 'dropChallenge', challenge });
  const dropped = await answersPerWorker('/.well-known/acme-challenge/tok-1', pids);
  assert.equal(dropped.size, 2);
  for (const answer of dropped.values()) assert.match(answer, /^404 /);
});

test('a TLS-ALPN-01 challenge certificate is served by every worker to acme-tls/1 handshakes', async () => {
  const cert = await pem('alpn.test');
  const expected = new X509Certificate(cert.cert).fingerprint256;
  const challenge: AcmeChallenge = { type: 'tls-alpn-01', name: 'alpn.test', ...cert };
  await ok({ cmd: 'putChallenge', challenge });
  const seen = new Map<number, string>();
  for (let i = 0; i < 200 && seen.size < 2; i++) {
    // The TCP connection first, to see which worker accepted it (the server ends validation handshakes).
    const raw = net.connect(httpsPort, '127.0.0.1');
    await new Promise((resolve, reject) => raw.once('connect', resolve).once('error', reject));
    const pid = await waitFor(() => servingPid(raw, httpsPort, pids), 5000, 'the accepting worker');
    const socket = tls.connect({
      socket: raw,
      servername: 'alpn.test',
      ALPNProtocols: ['acme-tls/1'],
      rejectUnauthorized: false,
    });
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    assert.equal(socket.alpnProtocol, 'acme-tls/1');
    seen.set(pid, socket.getPeerX509Certificate()?.fingerprint256 ?? '');
    socket.destroy();
  }
  assert.equal(seen.size, 2);
  for (const fingerprint of seen.values()) assert.equal(fingerprint, expected);
  await ok({ cmd: 'dropChallenge', challenge });
});

test('putCertificate reaches every worker; need() from a worker is answered by the primary', async () => {
  // Every worker has a certificate the primary pushed (their need() is refused: nothing new to obtain).
  const pushed = await pem('pushed.test');
  await ok({ cmd: 'putCertificate', subject: 'pushed.test', pem: pushed });
  for (const pid of pids)
    assert.deepEqual(await ok({ cmd: 'workerNeed', pid, name: 'pushed.test' }), {
      ok: false,
      cert: pushed.cert,
    });

  // On demand: the handler puts the certificate, then says yes; the worker has it when its need() resolves.
  const onDemand = await pem('ondemand.test');
  await ok({ cmd: 'onNeed', name: 'ondemand.test', pem: onDemand });
  assert.deepEqual(await ok({ cmd: 'workerNeed', pid: pids[0], name: 'ondemand.test' }), {
    ok: true,
    cert: onDemand.cert,
  });
  assert.deepEqual(await ok({ cmd: 'workerNeed', pid: pids[1], name: 'refused.test' }), {
    ok: false,
    cert: null,
  });
  const asked = events.filter((e) => 'event' in e && e.event === 'need').map((e) => 'name' in e && e.name);
  assert.deepEqual(asked, ['pushed.test', 'pushed.test', 'ondemand.test', 'refused.test']);

  await ok({ cmd: 'workerClaim', pid: pids[1], name: 'alice.tunnel.test' });
  await waitFor(() => events.some((e) => 'event' in e && e.event === 'claimed'), 5000, 'the claim');
});

test('a worker that cannot apply an update fails the put with its error', async () => {
  const bad: AcmeChallenge = { type: 'tls-alpn-01', name: 'bad.test', key: 'no key', cert: 'no cert' };
  const r = await call({ cmd: 'putChallenge', challenge: bad });
  assert.ok('ok' in r && !r.ok);
  for (const pid of pids) assert.match(r.error, new RegExp(`worker ${pid}: `));
});

test('a put waits for every worker; one that never answers fails it; one that exits counts as done', async () => {
  const [running, stopped] = pids;
  process.kill(stopped, 'SIGSTOP');
  let settled = false;
  try {
    // Never answered: rejected after the bound, naming the worker.
    const lost = await call({
      cmd: 'putChallenge',
      challenge: { type: 'http-01', token: 'tok-lost', keyAuthorization: 'lost' },
    });
    assert.ok('ok' in lost && !lost.ok);
    assert.match(lost.error, new RegExp(`worker\\(s\\) ${stopped} did not acknowledge`));

    const challenge: AcmeChallenge = { type: 'http-01', token: 'tok-2', keyAuthorization: 'tok-2.thumb' };
    const put = call({ cmd: 'putChallenge', challenge }).then((r) => {
      settled = true;
      return r;
    });
    // The running worker serves it (the stopped one accepts nothing), yet the put is still waiting.
    await waitFor(
      async () => {
        const { socket, body } = await getOnNewConnection(httpPort, '/.well-known/acme-challenge/tok-2');
        socket.destroy();
        return body === 'tok-2.thumb';
      },
      5000,
      'the running worker to answer',
    );
    assert.equal(settled, false, 'put resolved before the stopped worker acknowledged');
    process.kill(stopped, 'SIGKILL');
    const r = await put;
    assert.ok('ok' in r && r.ok, JSON.stringify(r));
  } finally {
    if (!settled) process.kill(stopped, 'SIGKILL');
  }

  // Its replacement got the pending challenge before it served.
  const now = await waitFor(
    async () => {
      const p = (await ok({ cmd: 'pids' })) as number[];
      return p.length === 2 && !p.includes(stopped) && p;
    },
    15_000,
    'a replacement worker',
  );
  assert.ok(now.includes(running));
  const answered = await answersPerWorker('/.well-known/acme-challenge/tok-2', now);
  assert.equal(answered.size, 2);
  for (const answer of answered.values()) assert.equal(answer, '200 tok-2.thumb');
  pids = now;
});
