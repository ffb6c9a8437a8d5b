// A cluster primary for tests of the certificate plumbing, standing in for the certificate manager (which this
// harness plays by hand): a real ClusterEngine with real worker processes serving a Caddyfile. The test forks
// this file with an IPC channel and drives it with HarnessCommand messages; the engine's workers run this same
// file (node:cluster forks process.argv[1]) and serve with the real runWorker, plus one test-only message that
// asks a worker for a certificate the way a handshake would (CertificateRequests.need).
// Arguments: <dir with the Caddyfile> <http port> <how long the engine waits for acknowledgements, ms>.
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type LoadOptions } from '../../src/app.js';
import { ClusterEngine } from '../../src/cluster/primary.js';
import { runWorker } from '../../src/cluster/worker.js';
import { silentLogger } from '../../src/core/logger.js';
import {
  certificateRequests,
  managedCertificates,
  type AcmeChallenge,
  type PemPair,
} from '../../src/core/tls/managed.js';

export type HarnessCommand =
  | { cmd: 'putChallenge' | 'dropChallenge'; id: number; challenge: AcmeChallenge }
  | { cmd: 'putCertificate'; id: number; subject: string; pem: PemPair }
  /** What the primary's request handler answers for a name (true: it first puts `pem`). */
  | { cmd: 'onNeed'; id: number; name: string; pem: PemPair | null }
  /** Ask worker `pid` to need(name), as a handshake would; answers with its result and what it then has. */
  | { cmd: 'workerNeed'; id: number; pid: number; name: string }
  /** Worker `pid` reports a tunnel claim of `name` (CertificateRequests.claimed). */
  | { cmd: 'workerClaim'; id: number; pid: number; name: string }
  /** The live workers' pids. */
  | { cmd: 'pids'; id: number }
  | { cmd: 'stop'; id: number };

export type HarnessReply =
  | { id: number; ok: true; result?: WorkerNeedResult | number[] }
  | { id: number; ok: false; error: string }
  | { event: 'ready'; pids: number[]; ports: [string, number][] }
  | { event: 'need' | 'claimed'; name: string };

export interface WorkerNeedResult {
  ok: boolean;
  /** The certificate the worker holds for the name right after its need() resolved. */
  cert: string | null;
}

/** Test-only messages between this primary and its workers (not the engine's own: no `nc`). */
type ProbeToWorker = { probe: 'need' | 'claim'; id: number; name: string };
type ProbeToPrimary = { probe: 'needResult'; id: number; result: WorkerNeedResult };

const [dir, httpPort, ackTimeoutMs] = process.argv.slice(2);
const log = silentLogger();
const options: LoadOptions = { root: '.', host: '', port: '2015', cwd: dir, env: {}, log, httpPort };

if (cluster.isWorker) {
  runWorker(options, log, 1000);
  process.on('message', (msg: ProbeToWorker) => {
    if (typeof msg !== 'object' || msg === null) return;
    if (msg.probe === 'claim') certificateRequests()?.claimed(msg.name);
    if (msg.probe !== 'need') return;
    void certificateRequests()
      ?.need(msg.name)
      .then((ok) => {
        const result = { ok, cert: managedCertificates.get(msg.name)?.pem.cert ?? null };
        process.send?.({ probe: 'needResult', id: msg.id, result } satisfies ProbeToPrimary);
      });
  });
} else {
  await runPrimary();
}

async function runPrimary(): Promise<void> {
  const reply = (r: HarnessReply) => process.send?.(r);
  const engine = new ClusterEngine({
    workers: 2,
    log,
    scheduling: 'none',
    certificateAckTimeoutMs: Number(ackTimeoutMs),
  });
  const answers = new Map<string, PemPair | null>();
  engine.setCertificateRequests({
    async need(name) {
      reply({ event: 'need', name });
      const pem = answers.get(name);
      if (!pem) return false;
      await engine.certificates.putCertificate(name, pem, Date.now() + 86_400_000);
      return true;
    },
    claimed(name) {
      reply({ event: 'claimed', name });
    },
  });
  const caddyfile = path.join(dir, 'Caddyfile');
  const input = { text: readFileSync(caddyfile, 'utf8'), name: 'Caddyfile', path: caddyfile };
  await engine.apply(loadConfig(input, options));

  let probes = 0;
  const workerOf = (pid: number) => {
    const worker = Object.values(cluster.workers ?? {}).find((w) => w?.process.pid === pid);
    if (!worker) throw new Error(`no worker ${pid}`);
    return worker;
  };
  const askWorker = (pid: number, name: string) =>
    new Promise<WorkerNeedResult>((resolve) => {
      const worker = workerOf(pid);
      const id = ++probes;
      const onMessage = (msg: ProbeToPrimary) => {
        if (msg.probe !== 'needResult' || msg.id !== id) return;
        worker.off('message', onMessage);
        resolve(msg.result);
      };
      worker.on('message', onMessage);
      worker.send({ probe: 'need', id, name } satisfies ProbeToWorker);
    });

  const run = async (c: HarnessCommand): Promise<WorkerNeedResult | number[] | undefined> => {
    switch (c.cmd) {
      case 'putChallenge':
        return engine.certificates.putChallenge(c.challenge).then(() => undefined);
      case 'dropChallenge':
        return engine.certificates.dropChallenge(c.challenge).then(() => undefined);
      case 'putCertificate':
        return engine.certificates
          .putCertificate(c.subject, c.pem, Date.now() + 86_400_000)
          .then(() => undefined);
      case 'onNeed':
        answers.set(c.name, c.pem);
        return undefined;
      case 'workerNeed':
        return askWorker(c.pid, c.name);
      case 'workerClaim':
        workerOf(c.pid).send({ probe: 'claim', id: 0, name: c.name } satisfies ProbeToWorker);
        return undefined;
      case 'pids':
        return engine.workerPids();
      case 'stop':
        await engine.stop(1000);
        reply({ id: c.id, ok: true });
        process.exit(0);
    }
  };
  process.on('message', (c: HarnessCommand) => {
    run(c).then(
      (result) => reply({ id: c.id, ok: true, ...(result && { result }) }),
      (err: unknown) => reply({ id: c.id, ok: false, error: (err as Error).message }),
    );
  });
  // The test goes away without a word: take the workers along.
  process.on('disconnect', () => {
    engine.kill();
    process.exit(1);
  });
  reply({ event: 'ready', pids: engine.workerPids(), ports: [...engine.boundPorts()] });
}
