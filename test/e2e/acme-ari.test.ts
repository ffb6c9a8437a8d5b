// Renewal by ACME Renewal Information (RFC 9773), end to end. Debian's Pebble 2.4.0 has no ARI, so a small
// HTTPS server stands in for the CA's directory: it serves Pebble's own directory plus a `renewalInfo` URL of
// its own (every other URL still points at Pebble), and answers renewalInfo as each test says. The real
// nodecaddy renews a 5-year certificate within seconds when the CA's window starts now, and renews nothing (and
// keeps serving) when renewalInfo answers 500 or garbage.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ariCertificateId } from '../../src/certs/acme/ari.js';
import { caKey } from '../../src/certs/acme/issuer.js';
import { safeKeyPart } from '../../src/certs/storage.js';
import { rootCa, signedLeaf } from '../../src/certs/x509.js';
import { waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';

const skip = pebbleSkip(true);
const DAY = 24 * 3600_000;

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly retryAfter?: string;
}

/** The directory in front of Pebble: Pebble's directory plus `renewalInfo`, answered by `answer`. */
interface AriDirectory {
  readonly url: string;
  /** Certificate identifiers asked about, in order. */
  readonly asked: string[];
  answer: (certId: string) => Promise<Answer>;
  close(): Promise<void>;
}

function getJson(url: string, agent: https.Agent): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => {
          try {
            resolve(JSON.parse(body) as Record<string, unknown>);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      })
      .on('error', reject);
  });
}

async function startAriDirectory(pebble: Pebble, tls: { cert: string; key: string }): Promise<AriDirectory> {
  const asked: string[] = [];
  let base = '';
  const directory: AriDirectory = {
    get url() {
      return `${base}/dir`;
    },
    asked,
    answer: () => Promise.resolve({ status: 500, body: 'not set' }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    void (async () => {
      if (req.url === '/dir') {
        const dir = await getJson(pebble.directoryUrl, pebble.agent);
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ...dir, renewalInfo: `${base}/renewal-info` }));
        return;
      }
      const m = /^\/renewal-info\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/.exec(req.url ?? '');
      if (!m) {
        res.statusCode = 404;
        res.end();
        return;
      }
      asked.push(m[1]);
      const a = await directory.answer(m[1]);
      res.statusCode = a.status;
      res.setHeader('content-type', 'application/json');
      if (a.retryAfter) res.setHeader('retry-after', a.retryAfter);
      res.end(a.body);
    })().catch((err: unknown) => {
      res.statusCode = 502;
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return directory;
}

const windowFrom = (start: number, end: number): string =>
  JSON.stringify({
    suggestedWindow: { start: new Date(start).toISOString(), end: new Date(end).toISOString() },
    explanationURL: 'https://ca.example/ari-test',
  });

/** The JSON log lines of a process's stderr. */
function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('renewal by the CA’s ARI window', { skip }, () => {
  const { dir, cleanup } = tempDir('nodecaddy-acme-ari-');
  let pebble: Pebble;
  let ari: AriDirectory;
  let httpPort: number;
  let httpsPort: number;
  let caFile: string;
  const running: Nodecaddy[] = [];

  before(async () => {
    httpPort = await freePort();
    httpsPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: httpsPort, dns: true });
    const ca = await rootCa('ari directory test CA', DAY);
    ari = await startAriDirectory(pebble, await signedLeaf(ca, ['127.0.0.1'], 'P256', DAY));
    // Node trusts both: Pebble's listener and the directory in front of it.
    caFile = path.join(dir, 'cas.pem');
    writeFileSync(caFile, `${pebble.caPem}\n${ca.cert}\n`);
    writeFileSync(path.join(dir, 'index.html'), 'served\n');
  });
  after(async () => {
    await Promise.all(running.map((nc) => nc.stop('SIGKILL')));
    await ari?.close();
    await pebble?.stop();
    cleanup();
  });

  async function serve(names: string[], data: string): Promise<Nodecaddy> {
    const file = path.join(dir, `${data}.Caddyfile`);
    writeFileSync(file, names.map((n) => `${n} {\n\troot ${dir}\n}\n`).join(''));
    const nc = await startNodecaddy(
      ['-conf', file, '-agree', '-ca', ari.url, '-http-port', String(httpPort), '-https-port',
        String(httpsPort), '-data', path.join(dir, data), '-workers', '1'], // prettier-ignore
      { cwd: dir, env: { NODE_EXTRA_CA_CERTS: caFile }, listeners: 2 },
    );
    running.push(nc);
    return nc;
  }

  /** The certificate stored for the name (what nodecaddy serves once it is published), if any. */
  function stored(data: string, name: string): X509Certificate | undefined {
    const n = safeKeyPart(name);
    const file = path.join(dir, data, 'acme', caKey(ari.url), 'sites', n, `${n}.crt`);
    return existsSync(file) ? new X509Certificate(readFileSync(file)) : undefined;
  }

  /** The name whose stored certificate has this identifier (nodecaddy stores a certificate before asking). */
  function nameOf(data: string, names: string[], certId: string): string | undefined {
    return names.find((n) => {
      const cert = stored(data, n);
      return cert !== undefined && ariCertificateId(cert.toString()) === certId;
    });
  }

  async function served(name: string, root: string): Promise<string> {
    const res = await waitFor(
      () => tlsRequest(httpsPort, { servername: name, ca: root }),
      20_000,
      `a certificate for ${name}`,
    );
    assert.equal(res.status, 200);
    return res.peer.fingerprint256;
  }

  test('a window that starts now renews a 5-year certificate within seconds, once', async () => {
    const name = 'ari.example.com';
    const orders = pebble.orderCount();
    let first: string | undefined;
    const firstAsked: { fingerprint: string | undefined } = { fingerprint: undefined };
    ari.answer = (certId) => {
      first ??= certId;
      const now = Date.now();
      if (certId !== first)
        return Promise.resolve({ status: 200, body: windowFrom(now + 365 * DAY, now + 366 * DAY) });
      // The identifier asked about is the one of the certificate nodecaddy stored (and serves).
      const cert = stored('renew', name);
      if (cert && ariCertificateId(cert.toString()) === certId) firstAsked.fingerprint = cert.fingerprint256;
      return Promise.resolve({ status: 200, body: windowFrom(now, now + 2000), retryAfter: '21600' });
    };
    const nc = await serve([name], 'renew');
    const root = await pebble.root();
    const before = await served(name, root);
    const after = await waitFor(
      async () => {
        const fp = (await tlsRequest(httpsPort, { servername: name, ca: root })).peer.fingerprint256;
        return fp !== before && fp;
      },
      30_000,
      'the renewed certificate',
    );
    assert.notEqual(after, before);
    assert.equal(firstAsked.fingerprint, before);
    // Pebble's certificates live 5 years: a third of the lifetime was years away.
    const renewedCert = stored('renew', name);
    assert.ok(renewedCert && Date.parse(renewedCert.validTo) - Date.now() > 4 * 365 * DAY);
    await waitFor(() => /certificate renewed/.test(nc.stderr()), 5000, 'the renewal in the log');
    const lines = logLines(nc.stderr());
    const renewing = lines.find((l) => l.msg === 'renewing certificate');
    assert.equal(renewing?.due, 'ARI');
    const fromAri = lines.find((l) => l.msg === 'renewal time from the CA (ARI)');
    assert.equal(fromAri?.explanation, 'https://ca.example/ari-test');
    // The new certificate is asked about too (right after it was obtained), and its window is far away.
    await waitFor(() => ari.asked.some((id) => id !== first), 10_000, 'ARI for the new certificate');
    const second = ari.asked.find((id) => id !== first);
    assert.equal(second, ariCertificateId(stored('renew', name)?.toString() ?? ''));
    await waitFor(
      () => {
        const n = safeKeyPart(name);
        const meta = path.join(dir, 'renew', 'acme', caKey(ari.url), 'sites', n, `${n}.json`);
        const saved = JSON.parse(readFileSync(meta, 'utf8')) as { ari?: { certId: string; renewAt: string } };
        return saved.ari?.certId === second && Date.parse(saved.ari?.renewAt ?? '') > Date.now() + 300 * DAY;
      },
      10_000,
      'the new choice saved with the certificate',
    );
    assert.equal(pebble.orderCount(), orders + 2, 'one order, one renewal');
    await nc.stop();
  });

  test('renewalInfo answering 500 or garbage renews nothing, and the server keeps serving', async () => {
    const names = ['good.example.com', 'fail.example.com', 'junk.example.com'];
    const orders = pebble.orderCount();
    const answered = new Set<string>();
    const firstIds = new Map<string, string>();
    ari.answer = async (certId) => {
      const name = await waitFor(() => nameOf('errors', names, certId), 20_000, `the name of ${certId}`);
      const known = firstIds.get(name);
      if (known === undefined) firstIds.set(name, certId);
      const now = Date.now();
      try {
        if (name === 'fail.example.com') return { status: 500, body: '{"type":"serverInternal"}' };
        if (name === 'junk.example.com') return { status: 200, body: '<html>not renewal information' };
        if (known !== undefined && known !== certId)
          return { status: 200, body: windowFrom(now + 365 * DAY, now + 366 * DAY) };
        // The control: renewed by its window, answered only after the broken answers went out, so that its
        // renewal is proof that the broken ones had their chance to (wrongly) cause one.
        await waitFor(
          () => answered.has('fail.example.com') && answered.has('junk.example.com'),
          20_000,
          'the broken answers',
        );
        return { status: 200, body: windowFrom(Date.now(), Date.now() + 1000) };
      } finally {
        setImmediate(() => answered.add(name));
      }
    };
    const nc = await serve(names, 'errors');
    const root = await pebble.root();
    const before = new Map<string, string>();
    for (const name of names) before.set(name, await served(name, root));
    await waitFor(() => /certificate renewed/.test(nc.stderr()), 30_000, 'the control renewed');
    const lines = logLines(nc.stderr());
    const renewed = lines.filter((l) => l.msg === 'certificate renewed').map((l) => l.subject);
    assert.deepEqual(renewed, ['good.example.com']);
    for (const name of ['fail.example.com', 'junk.example.com']) {
      assert.ok(!lines.some((l) => l.msg === 'renewing certificate' && l.subject === name), name);
      const res = await tlsRequest(httpsPort, { servername: name, ca: root });
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'served\n');
      assert.equal(res.peer.fingerprint256, before.get(name), `${name} keeps its certificate`);
      const failures = lines.filter(
        (l) => l.subject === name && String(l.msg).startsWith('asking the CA when to renew (ARI) failed'),
      );
      assert.equal(failures.length, 1, `${name}: one log line`);
    }
    assert.equal(pebble.orderCount(), orders + 4, 'three orders, one renewal');
    await nc.stop();
  });
});
