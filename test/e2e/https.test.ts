// HTTPS through the real nodecaddy process: certificates by SNI among three sites on one port (two from files,
// one from the local CA), HTTP/2 and HTTP/1.1 by ALPN, the TLS placeholders, HTTP → HTTPS redirects, and a
// certificate swapped on disk while a long download goes on.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { signedBy, testCa, type KeyPair } from '../helpers/certs.js';
import { request, waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { handshake, tlsRequest } from '../helpers/tls.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let ca: KeyPair;
let httpsPort: number;
let httpPort: number;
let localRoot: Buffer;

const BIG = Buffer.alloc(24 * 1024 * 1024, 'x');
const run = promisify(execFile);

before(async () => {
  ({ dir, cleanup } = tempDir());
  ca = testCa(dir);
  signedBy(ca, dir, 'a', ['a.test']);
  signedBy(ca, dir, 'b', ['b.test', 'alias.test']);
  mkdirSync(path.join(dir, 'www'));
  mkdirSync(path.join(dir, 'www-b'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'site a\n');
  writeFileSync(path.join(dir, 'www', 'big.bin'), BIG);
  writeFileSync(path.join(dir, 'www-b', 'index.html'), 'site b\n');
  httpsPort = await freePort();
  httpPort = await freePort();
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `https://a.test:${httpsPort} {
  tls a.pem a.key
  root www
  header / X-Seen "{scheme} {tls_protocol}"
}
https://b.test:${httpsPort} {
  tls b.pem b.key
  root www-b
}
https://c.test:${httpsPort} {
  tls internal
  root www
}
http://b.test:${httpPort} {
  root www-b
}
`,
  );
  nc = await startNodecaddy(
    ['-conf', 'Caddyfile', '-workers', '1', '-http-port', String(httpPort), '-data', path.join(dir, 'data')],
    { cwd: dir, listeners: 2 },
  );
  localRoot = readFileSync(path.join(dir, 'data', 'pki', 'authorities', 'local', 'root.crt'));
});

after(async () => {
  await nc?.stop();
  cleanup();
});

describe('HTTPS sites', () => {
  test('the startup listing says HTTPS and where the local root certificate is', () => {
    const out = nc.stdout();
    assert.match(out, new RegExp(`^Serving HTTPS on port ${httpsPort}$`, 'm'));
    assert.match(out, new RegExp(`^https://a\\.test:${httpsPort}$`, 'm'));
    assert.match(out, /^Local CA root certificate .*pki\/authorities\/local\/root\.crt$/m);
  });

  test('SNI picks each site its own certificate; the names a certificate carries count too', async () => {
    const a = await handshake(httpsPort, { servername: 'a.test', ca: ca.cert });
    assert.match(a.cert!.subjectAltName!, /DNS:a\.test/);
    a.socket.destroy();
    const b = await handshake(httpsPort, { servername: 'alias.test', ca: ca.cert });
    assert.match(b.cert!.subjectAltName!, /DNS:b\.test/);
    b.socket.destroy();
    const c = await handshake(httpsPort, { servername: 'c.test', ca: localRoot });
    assert.match(c.cert!.subjectAltName!, /DNS:c\.test/);
    assert.ok(c.socket.authorized, 'signed by the local CA in the data folder');
    c.socket.destroy();
  });

  test('a name no site has, or no SNI at all, fails the handshake: never another site’s certificate', async () => {
    await assert.rejects(
      handshake(httpsPort, { servername: 'unknown.test', rejectUnauthorized: false }),
      /handshake failure/,
    );
    await assert.rejects(handshake(httpsPort, { rejectUnauthorized: false }), /handshake failure/);
    await waitFor(() => /no certificate for that name/.test(nc.stderr()), 5000, 'the log line');
  });

  test('HTTP/2 and HTTP/1.1 by ALPN; the TLS placeholders; TLS 1.0 and 1.1 refused', async () => {
    const h2 = await tlsRequest(httpsPort, { servername: 'a.test', ca: ca.cert, http2: true });
    assert.equal(h2.status, 200);
    assert.equal(h2.alpn, 'h2');
    assert.equal(h2.body.toString(), 'site a\n');
    assert.equal(h2.headers['x-seen'], 'https tls1.3'); // Caddy v1's names
    const h1 = await tlsRequest(httpsPort, { servername: 'b.test', ca: ca.cert });
    assert.equal(h1.status, 200);
    assert.equal(h1.alpn, 'http/1.1');
    assert.equal(h1.body.toString(), 'site b\n');
    for (const version of ['TLSv1', 'TLSv1.1'] as const)
      await assert.rejects(
        handshake(httpsPort, {
          servername: 'a.test',
          ca: ca.cert,
          minVersion: version,
          maxVersion: version,
          ciphers: 'DEFAULT@SECLEVEL=0',
        }),
      );
    const tls12 = await handshake(httpsPort, { servername: 'a.test', ca: ca.cert, maxVersion: 'TLSv1.2' });
    assert.equal(tls12.socket.getProtocol(), 'TLSv1.2');
    tls12.socket.destroy();
  });

  test('curl --http2 and --http1.1 verify the chain and get each protocol', async () => {
    for (const [flag, version] of [
      ['--http2', '2'],
      ['--http1.1', '1.1'],
    ]) {
      const { stdout } = await run('curl', [
        '-sS',
        flag,
        '--cacert',
        ca.certFile,
        '--resolve',
        `a.test:${httpsPort}:127.0.0.1`,
        '-w',
        '\n%{http_version} %{http_code} %{ssl_verify_result}',
        `https://a.test:${httpsPort}/`,
      ]);
      assert.equal(stdout, `site a\n\n${version} 200 0`);
    }
  });

  test('HTTP on the HTTP port redirects to HTTPS, unless the Caddyfile serves that host over HTTP itself', async () => {
    const r = await request(httpPort, '/some/page?q=1', { headers: { Host: 'a.test' } });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, `https://a.test:${httpsPort}/some/page?q=1`);
    assert.equal(r.headers.connection, 'close');
    const c = await request(httpPort, '/', { headers: { Host: `c.test:${httpPort}` } });
    assert.equal(c.headers.location, `https://c.test:${httpsPort}/`);
    const b = await request(httpPort, '/', { headers: { Host: 'b.test' } });
    assert.equal(b.status, 200);
    assert.equal(b.body, 'site b\n');
  });

  test('a certificate replaced on disk is served to new connections while a long download goes on', async () => {
    const before = await handshake(httpsPort, { servername: 'a.test', ca: ca.cert });
    const oldPrint = before.cert!.fingerprint256;
    before.socket.destroy();
    // A download of 24 MB that stops reading after its first bytes and goes on only once the certificate has
    // changed: it is surely still running across the reload.
    let goOn: () => void = () => {};
    const download = new Promise<{ sha: string; fingerprint: string }>((resolve, reject) => {
      const req = https.get(
        {
          host: '127.0.0.1',
          port: httpsPort,
          path: '/big.bin',
          servername: 'a.test',
          headers: { host: 'a.test' },
          ca: ca.cert,
          agent: false,
        },
        (res) => {
          const fingerprint = (res.socket as TLSSocket).getPeerX509Certificate()!.fingerprint256;
          const hash = createHash('sha256');
          res.once('data', () => res.pause());
          goOn = () => res.resume();
          res.on('data', (chunk: Buffer) => hash.update(chunk));
          res.on('end', () => resolve({ sha: hash.digest('hex'), fingerprint }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
    });
    const reloads = () => (nc.stderr().match(/config reloaded/g) ?? []).length;
    const reloadsBefore = reloads();
    const fresh = signedBy(ca, path.join(dir), 'a2', ['a.test']);
    copyFileSync(fresh.keyFile, path.join(dir, 'a.key'));
    copyFileSync(fresh.certFile, path.join(dir, 'a.pem'));
    await waitFor(() => reloads() > reloadsBefore, 15_000, 'the reload after the certificate change');
    await waitFor(
      async () => {
        const after = await handshake(httpsPort, { servername: 'a.test', ca: ca.cert });
        after.socket.destroy();
        return after.cert!.fingerprint256 !== oldPrint;
      },
      10_000,
      'the new certificate',
    );
    goOn();
    const done = await download;
    assert.equal(done.fingerprint, oldPrint, 'the download kept its connection and certificate');
    assert.equal(done.sha, createHash('sha256').update(BIG).digest('hex'));
  });

  test('a key that does not belong to its certificate is a reload error with file:line, and changes nothing', async () => {
    const serving = await handshake(httpsPort, { servername: 'a.test', ca: ca.cert });
    const print = serving.cert!.fingerprint256;
    serving.socket.destroy();
    const other = signedBy(ca, dir, 'other', ['a.test']);
    copyFileSync(other.keyFile, path.join(dir, 'a.key'));
    await waitFor(() => /reload failed/.test(nc.stderr()), 15_000, 'the failed reload');
    const line = nc
      .stderr()
      .split('\n')
      .find((l) => l.includes('reload failed'))!;
    assert.match(
      line,
      /Caddyfile:2 - Error during parsing: Unable to load certificate and key files for 'a\.test'/,
    );
    assert.match(line, /does not belong to the certificate/);
    const still = await handshake(httpsPort, { servername: 'a.test', ca: ca.cert });
    assert.equal(still.cert!.fingerprint256, print);
    still.socket.destroy();
  });
});
