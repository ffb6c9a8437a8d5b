// The Pebble harness works on this machine: Pebble starts, its directory answers, acme-client orders a
// certificate for `localhost` by HTTP-01 from a plain node:http challenge server, the chain verifies against
// Pebble's root, the order is counted, and the CA can be taken down and brought back on the same ports.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as acme from 'acme-client';
import { freePort } from '../helpers/process.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';

const skip = pebbleSkip();

interface AcmeDefaults {
  acmeSettings: { httpChallengePort: number };
}

describe('pebble harness', { skip }, () => {
  let pebble: Pebble;
  let challenges: http.Server;
  const tokens = new Map<string, string>();

  before(async () => {
    // Dual-stack: Pebble resolves `localhost` with the system resolver and may dial ::1.
    challenges = http.createServer((req, res) => {
      const prefix = '/.well-known/acme-challenge/';
      const body = req.url?.startsWith(prefix) ? tokens.get(req.url.slice(prefix.length)) : undefined;
      res.writeHead(body ? 200 : 404, { 'content-type': 'text/plain' }).end(body ?? 'not found');
    });
    const httpPort = await freePort();
    await new Promise<void>((resolve) => challenges.listen(httpPort, '::', resolve));
    pebble = await startPebble({ httpPort, tlsPort: await freePort() });
  });
  after(async () => {
    challenges?.close();
    await pebble?.stop();
  });

  async function order(): Promise<string> {
    const port = (challenges.address() as AddressInfo).port;
    // acme-client checks the challenge itself before it tells Pebble (its settings are untyped).
    (acme.axios.defaults as unknown as AcmeDefaults).acmeSettings.httpChallengePort = port;
    acme.axios.defaults.httpsAgent = pebble.agent;
    const client = new acme.Client({
      directoryUrl: pebble.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey('P-256'),
      backoffMin: 100,
      backoffMax: 1000,
    });
    const [, csr] = await acme.crypto.createCsr({ altNames: ['localhost'] });
    return client.auto({
      csr,
      email: 'test@example.com',
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        tokens.set(challenge.token, keyAuthorization);
      },
      challengeRemoveFn: async (_authz, challenge) => {
        tokens.delete(challenge.token);
      },
    });
  }

  test('the directory answers', async () => {
    const res = await fetchJson(pebble.directoryUrl, pebble);
    assert.match(String(res.newOrder), /^https:\/\/127\.0\.0\.1:\d+\//);
    assert.match(pebble.log(), /Disabling random VA sleeps/);
    assert.match(pebble.log(), /reject 0% of good nonces/);
  });

  test('an HTTP-01 order for localhost; the chain verifies against Pebble root; the order is counted', async () => {
    assert.equal(pebble.orderCount(), 0);
    const chain = acme.crypto.splitPemChain(await order());
    assert.equal(pebble.orderCount(), 1);
    const [leaf, intermediate] = chain.map((pem) => new X509Certificate(pem));
    assert.ok(leaf && intermediate, `a chain of 2, got ${chain.length}`);
    assert.equal(leaf.subjectAltName, 'DNS:localhost');
    const root = new X509Certificate(await pebble.root());
    assert.ok(leaf.verify(intermediate.publicKey));
    assert.ok(intermediate.verify(root.publicKey));
  });

  test('the CA taken down and brought back on the same ports', async () => {
    const url = pebble.directoryUrl;
    await pebble.stopCa();
    await assert.rejects(fetchJson(url, pebble), /ECONNREFUSED/);
    await pebble.startCa();
    assert.equal(pebble.directoryUrl, url);
    await order();
    assert.equal(pebble.orderCount(), 2);
  });
});

async function fetchJson(url: string, pebble: Pebble): Promise<Record<string, unknown>> {
  const https = await import('node:https');
  return new Promise((resolve, reject) => {
    https
      .get(url, { agent: pebble.agent }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (d: string) => (body += d));
        res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
      })
      .on('error', reject);
  });
}
