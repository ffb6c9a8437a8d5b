// ACME Renewal Information (RFC 9773): the certificate identifier against the RFC's worked example, the choice
// of a time inside the suggested window, Retry-After's bounds, and RenewalTimes against a real HTTP "CA" (with
// and without `renewalInfo`, broken answers, the choice kept in storage across a restart).
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import {
  ariCertificateId,
  chooseRenewalTime,
  DEFAULT_RETRY_AFTER_MS,
  MAX_RETRY_AFTER_MS,
  MIN_RETRY_AFTER_MS,
  parseRenewalInfo,
  retryAfterMs,
  serialOctets,
} from '../../src/certs/acme/ari.js';
import type { Issued } from '../../src/certs/acme/issuer.js';
import { RenewalTimes } from '../../src/certs/acme/renewal-times.js';
import { loadRenewalInfo, renewalTime, saveIssued, saveRenewalInfo } from '../../src/certs/acme/stored.js';
import { FileStorage } from '../../src/certs/file-storage.js';
import { rootCa, signedLeaf } from '../../src/certs/x509.js';
import { tempDir } from '../helpers/process.js';

// RFC 9773 Appendix A: the end-entity certificate of §4.1's example.
const RFC_9773_EXAMPLE = `-----BEGIN CERTIFICATE-----
MIIBQzCB66ADAgECAgUAh2VDITAKBggqhkjOPQQDAjAVMRMwEQYDVQQDEwpFeGFt
cGxlIENBMCIYDzAwMDEwMTAxMDAwMDAwWhgPMDAwMTAxMDEwMDAwMDBaMBYxFDAS
BgNVBAMTC2V4YW1wbGUuY29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEeBZu
7cbpAYNXZLbbh8rNIzuOoqOOtmxA1v7cRm//AwyMwWxyHz4zfwmBhcSrf47NUAFf
qzLQ2PPQxdTXREYEnKMjMCEwHwYDVR0jBBgwFoAUaYhba4dGQEHhs3uEe6CuLN4B
yNQwCgYIKoZIzj0EAwIDRwAwRAIge09+S5TZAlw5tgtiVvuERV6cT4mfutXIlwTb
+FYN/8oCIClDsqBklhB9KAelFiYt9+6FDj3z4KGVelYM5MdsO3pK
-----END CERTIFICATE-----
`;

const HOUR = 3600_000;
const DAY = 24 * HOUR;

describe('the certificate identifier (RFC 9773 §4.1)', () => {
  test("the RFC's example certificate", () => {
    assert.equal(ariCertificateId(RFC_9773_EXAMPLE), 'aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE');
  });

  test('serial octets: a leading zero exactly when the high bit is set', () => {
    assert.equal(serialOctets('87654321').toString('hex'), '0087654321');
    assert.equal(serialOctets('7f').toString('hex'), '7f');
    assert.equal(serialOctets('80').toString('hex'), '0080');
    assert.equal(serialOctets('0087654321').toString('hex'), '0087654321');
    assert.equal(serialOctets('000102').toString('hex'), '0102');
    assert.equal(serialOctets('abc').toString('hex'), '0abc');
    assert.equal(serialOctets('00').toString('hex'), '00');
  });

  test("a leaf of a chain is named by its issuer's key and its own serial; no AKI, no identifier", async () => {
    const ca = await rootCa('ari test CA', DAY);
    const leaf = await signedLeaf(ca, ['ari.example.com'], 'P256', DAY);
    const id = ariCertificateId(leaf.cert + ca.cert);
    const serial = new X509Certificate(leaf.cert).serialNumber;
    assert.ok(id);
    const [aki, serialPart] = id.split('.');
    assert.equal(serialPart, serialOctets(serial).toString('base64url'));
    assert.doesNotMatch(id, /[=+/]/);
    assert.ok(Buffer.from(aki, 'base64url').length > 0);
    // The self-signed root has no Authority Key Identifier.
    assert.equal(ariCertificateId(ca.cert), undefined);
  });
});

describe('the renewal window and Retry-After (RFC 9773 §4.2, §4.3)', () => {
  const now = Date.parse('2026-12-06T12:00:00Z');

  test('a uniformly random time inside the window; a window already past means now', () => {
    const window = { start: now + DAY, end: now + 3 * DAY };
    assert.equal(
      chooseRenewalTime(window, now, () => 0),
      window.start,
    );
    assert.equal(
      chooseRenewalTime(window, now, () => 0.5),
      now + 2 * DAY,
    );
    const last = chooseRenewalTime(window, now, () => 0.999999);
    assert.ok(last < window.end && last > window.start);
    for (let i = 0; i < 100; i++) {
      const t = chooseRenewalTime(window, now);
      assert.ok(t >= window.start && t < window.end, `${t} inside the window`);
    }
    assert.equal(
      chooseRenewalTime({ start: now - 3 * DAY, end: now - DAY }, now, () => 0.5),
      now,
    );
    // Open now: a time drawn before now is now.
    assert.equal(
      chooseRenewalTime({ start: now - DAY, end: now + DAY }, now, () => 0.25),
      now,
    );
    assert.equal(
      chooseRenewalTime({ start: now - DAY, end: now + DAY }, now, () => 0.75),
      now + DAY / 2,
    );
  });

  test('Retry-After: seconds or a date, six hours without one, clamped to a minute .. a day', () => {
    assert.equal(retryAfterMs('21600', now), 6 * HOUR);
    assert.equal(retryAfterMs(undefined, now), DEFAULT_RETRY_AFTER_MS);
    assert.equal(retryAfterMs('soon', now), DEFAULT_RETRY_AFTER_MS);
    assert.equal(retryAfterMs('-5', now), DEFAULT_RETRY_AFTER_MS);
    assert.equal(retryAfterMs('0', now), MIN_RETRY_AFTER_MS);
    assert.equal(retryAfterMs('10', now), MIN_RETRY_AFTER_MS);
    assert.equal(retryAfterMs('999999', now), MAX_RETRY_AFTER_MS);
    assert.equal(retryAfterMs(new Date(now + 2 * HOUR).toUTCString(), now), 2 * HOUR);
    assert.equal(retryAfterMs(new Date(now - HOUR).toUTCString(), now), MIN_RETRY_AFTER_MS);
    assert.equal(MIN_RETRY_AFTER_MS, 60_000);
    assert.equal(MAX_RETRY_AFTER_MS, DAY);
  });

  test('a valid answer is read; an invalid one is an error', () => {
    const info = parseRenewalInfo(
      JSON.stringify({
        suggestedWindow: { start: '2021-01-03T00:00:00Z', end: '2021-01-07T00:00:00Z' },
        explanationURL: 'https://example.com/docs/ari',
      }),
      '21600',
      now,
    );
    assert.deepEqual(info, {
      window: { start: Date.parse('2021-01-03T00:00:00Z'), end: Date.parse('2021-01-07T00:00:00Z') },
      retryAfterMs: 6 * HOUR,
      explanationUrl: 'https://example.com/docs/ari',
    });
    const bad = [
      'not json',
      'null',
      '{}',
      JSON.stringify({ suggestedWindow: { start: '2021-01-07T00:00:00Z', end: '2021-01-03T00:00:00Z' } }),
      JSON.stringify({ suggestedWindow: { start: '2021-01-03T00:00:00Z', end: '2021-01-03T00:00:00Z' } }),
      JSON.stringify({ suggestedWindow: { start: '2021-01-03', end: '2021-01-07' } }),
      JSON.stringify({ suggestedWindow: { start: 1, end: 2 } }),
      JSON.stringify({ suggestedWindow: { start: '2021-13-45T99:00:00Z', end: '2021-01-07T00:00:00Z' } }),
    ];
    for (const body of bad) assert.throws(() => parseRenewalInfo(body, undefined, now), body);
  });
});

/** A small "CA": a directory (with or without renewalInfo) and the renewalInfo answers a test sets. */
interface FakeCa {
  readonly url: string;
  directoryRequests: number;
  readonly infoRequests: string[];
  offerAri: boolean;
  answer: (certId: string) => { status: number; body: string; retryAfter?: string };
}

describe('RenewalTimes', () => {
  let server: http.Server;
  let ca: FakeCa;
  let dir: string;
  let cleanup: () => void;
  let issuerCa: { cert: string; key: string };
  const logLines: string[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(chunk.toString());
        done();
      },
    }),
  );

  before(async () => {
    ({ dir, cleanup } = tempDir('nodecaddy-ari-'));
    issuerCa = await rootCa('ari test CA', 400 * DAY);
    server = http.createServer((req, res) => {
      if (req.url?.split('?')[0] === '/dir') {
        ca.directoryRequests++;
        const directory: Record<string, string> = {
          newNonce: `${ca.url}/nonce`,
          newOrder: `${ca.url}/order`,
        };
        if (ca.offerAri) directory.renewalInfo = `${ca.url}/renewal-info/`;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(directory));
        return;
      }
      const m = /^\/renewal-info\/([^/]+)$/.exec(req.url ?? '');
      if (!m) {
        res.statusCode = 404;
        res.end();
        return;
      }
      ca.infoRequests.push(m[1]);
      const a = ca.answer(m[1]);
      res.statusCode = a.status;
      if (a.retryAfter !== undefined) res.setHeader('retry-after', a.retryAfter);
      res.end(a.body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    ca = {
      url: `http://127.0.0.1:${port}`,
      directoryRequests: 0,
      infoRequests: [],
      offerAri: true,
      answer: () => ({ status: 500, body: '' }),
    };
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    cleanup();
  });

  async function issued(name: string, lifetimeMs = 90 * DAY): Promise<Issued> {
    const leaf = await signedLeaf(issuerCa, [name], 'P256', lifetimeMs);
    const x = new X509Certificate(leaf.cert);
    return { ...leaf, notBefore: Date.parse(x.validFrom), notAfter: Date.parse(x.validTo) };
  }

  /** A RenewalTimes whose `changed` calls are counted; settled() waits for the next one. */
  function renewalTimes(storage: FileStorage, random?: () => number) {
    let waiting: (() => void) | undefined;
    const times = new RenewalTimes({
      storage,
      caTimeoutMs: 5000,
      log,
      random,
      changed: () => waiting?.(),
    });
    const settled = () => new Promise<void>((resolve) => (waiting = resolve));
    return { times, settled };
  }

  const window = (start: number, end: number) =>
    JSON.stringify({
      suggestedWindow: { start: new Date(start).toISOString(), end: new Date(end).toISOString() },
    });

  test('the CA offers ARI: a time inside its window, asked again after Retry-After, kept across a restart', async () => {
    const storage = new FileStorage(`${dir}/a`);
    const directory = `${ca.url}/dir`;
    const cert = await issued('a.example.com');
    await saveIssued(storage, directory, 'a.example.com', cert);
    const start = Date.now() + 10 * DAY;
    const end = start + 2 * DAY;
    ca.offerAri = true;
    ca.answer = () => ({ status: 200, body: window(start, end), retryAfter: '7200' });
    const { times, settled } = renewalTimes(storage, () => 0.5);
    const done = settled();
    const before = Date.now();
    times.track('a.example.com', directory, cert);
    await done;
    assert.equal(ca.infoRequests.at(-1), ariCertificateId(cert.cert));
    assert.equal(times.renewAt('a.example.com', cert), start + DAY);
    assert.ok(times.byAri('a.example.com', cert));
    const next = times.nextFetch('a.example.com') ?? 0;
    assert.ok(next >= before + 2 * HOUR && next <= Date.now() + 2 * HOUR, 'asked again after Retry-After');
    const saved = await loadRenewalInfo(storage, directory, 'a.example.com');
    assert.equal(saved?.renewAt, start + DAY);
    assert.equal(saved?.certId, ariCertificateId(cert.cert));
    times.stop();

    // A restart before Retry-After: the saved choice, and the CA is not asked.
    const asked = ca.infoRequests.length;
    const restarted = renewalTimes(storage, () => 0.9);
    const loaded = restarted.settled();
    restarted.times.track('a.example.com', directory, cert);
    await loaded;
    assert.equal(restarted.times.renewAt('a.example.com', cert), start + DAY);
    assert.equal(ca.infoRequests.length, asked);
    restarted.times.stop();

    // Retry-After has passed: asked again; the same window keeps the time, another draws a new one.
    if (!saved) throw new Error('nothing saved');
    await saveRenewalInfo(storage, directory, 'a.example.com', { ...saved, nextFetch: Date.now() - 1 });
    const again = renewalTimes(storage, () => 0.9);
    let fetched = again.settled();
    again.times.track('a.example.com', directory, cert);
    await fetched;
    assert.equal(ca.infoRequests.length, asked + 1);
    assert.equal(again.times.renewAt('a.example.com', cert), start + DAY);
    ca.answer = () => ({ status: 200, body: window(start + DAY, end + DAY) });
    again.times.fetchDue(); // not due: nothing asked
    assert.equal(ca.infoRequests.length, asked + 1);
    await saveRenewalInfo(storage, directory, 'a.example.com', { ...saved, nextFetch: Date.now() - 1 });
    const third = renewalTimes(storage, () => 0.9);
    fetched = third.settled();
    third.times.track('a.example.com', directory, cert);
    await fetched;
    assert.equal(third.times.renewAt('a.example.com', cert), start + DAY + 0.9 * 2 * DAY);
    again.times.stop();
    third.times.stop();
  });

  test('no renewalInfo in the directory: a third of the lifetime, and the directory is read once', async () => {
    const storage = new FileStorage(`${dir}/b`);
    const directory = `${ca.url}/dir?b`;
    ca.offerAri = false;
    const requests = ca.directoryRequests;
    const asked = ca.infoRequests.length;
    const { times, settled } = renewalTimes(storage);
    const certs = [await issued('b1.example.com'), await issued('b2.example.com')];
    let done = settled();
    times.track('b1.example.com', directory, certs[0]);
    await done;
    done = settled();
    times.track('b2.example.com', directory, certs[1]);
    await done;
    for (const [i, name] of ['b1.example.com', 'b2.example.com'].entries()) {
      assert.equal(times.renewAt(name, certs[i]), renewalTime(certs[i]));
      assert.equal(times.byAri(name, certs[i]), false);
    }
    assert.equal(ca.directoryRequests, requests + 1);
    assert.equal(ca.infoRequests.length, asked);
    times.stop();
  });

  test('errors and invalid windows: a third of the lifetime, logged once, asked again in a minute', async () => {
    const storage = new FileStorage(`${dir}/c`);
    const directory = `${ca.url}/dir?c`;
    ca.offerAri = true;
    const answers = [
      { status: 500, body: 'oops' },
      { status: 200, body: 'garbage' },
      { status: 200, body: window(Date.now() + 2 * DAY, Date.now() + DAY) },
    ];
    for (const [i, answer] of answers.entries()) {
      ca.answer = () => answer;
      const name = `c${i}.example.com`;
      const cert = await issued(name);
      const { times, settled } = renewalTimes(storage);
      const done = settled();
      const before = Date.now();
      times.track(name, directory, cert);
      await done;
      assert.equal(times.renewAt(name, cert), renewalTime(cert), answer.body);
      assert.equal(times.byAri(name, cert), false);
      const next = times.nextFetch(name) ?? 0;
      assert.ok(next >= before + 60_000 && next <= Date.now() + 60_000, 'asked again in a minute');
      const failures = logLines.filter((l) => l.includes(name) && l.includes('asking the CA when to renew'));
      assert.equal(failures.length, 1);
      assert.match(failures[0], /"level":30/);
      times.stop();
    }
  });

  test('a window at the very end of the lifetime is followed no later than with a tenth left', async () => {
    const storage = new FileStorage(`${dir}/d`);
    const directory = `${ca.url}/dir?d`;
    const cert = await issued('d.example.com', 10 * DAY);
    ca.offerAri = true;
    ca.answer = () => ({ status: 200, body: window(cert.notAfter - HOUR, cert.notAfter + DAY) });
    const { times, settled } = renewalTimes(storage, () => 0.5);
    const done = settled();
    times.track('d.example.com', directory, cert);
    await done;
    assert.equal(times.renewAt('d.example.com', cert), cert.notAfter - (cert.notAfter - cert.notBefore) / 10);
    times.stop();
  });
});
