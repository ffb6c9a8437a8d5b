// HTTPS with several workers: TLS sessions resume whichever worker a connection lands on (the ticket keys are
// the same in every worker and survive a reload), over TLS 1.3 and TLS 1.2.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { signedBy, testCa, type KeyPair } from '../helpers/certs.js';
import { waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let ca: KeyPair;
let port: number;

before(async () => {
  ({ dir, cleanup } = tempDir());
  ca = testCa(dir);
  signedBy(ca, dir, 'site', ['w.test']);
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'hi\n');
  port = await freePort();
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `https://w.test:${port} {\n  tls site.pem site.key\n  root www\n}\n`,
  );
  nc = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '2', '-http-port', String(await freePort())], {
    cwd: dir,
  });
});

after(async () => {
  await nc?.stop();
  cleanup();
});

/** Connects (resuming `session` if given), sends one request, and reports whether the session was resumed. */
function connect(
  maxVersion: tls.SecureVersion,
  session: Buffer | undefined,
): Promise<{ resumed: boolean; session: Buffer | undefined }> {
  return new Promise((resolve, reject) => {
    let latest = session;
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'w.test',
      ca: ca.cert,
      maxVersion,
      session,
    });
    // TLS 1.3 tickets arrive after the handshake, with the first response.
    socket.on('session', (s: Buffer) => (latest = s));
    socket.once('secureConnect', () =>
      socket.write('GET / HTTP/1.1\r\nHost: w.test\r\nConnection: close\r\n\r\n'),
    );
    socket.resume();
    socket.once('end', () => resolve({ resumed: socket.isSessionReused(), session: latest }));
    socket.once('error', reject);
  });
}

for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
  test(`${version}: sessions resume on every connection, whichever worker takes it`, async () => {
    const first = await connect(version, undefined);
    assert.equal(first.resumed, false);
    assert.ok(first.session, 'a session ticket was issued');
    let resumed = 0;
    for (let i = 0; i < 24; i++) if ((await connect(version, first.session)).resumed) resumed++;
    assert.equal(resumed, 24, `${resumed} of 24 connections resumed`);
  });
}

test('a reload keeps the ticket keys: a session from before it still resumes', async () => {
  const first = await connect('TLSv1.3', undefined);
  const reloads = () => (nc.stderr().match(/config reloaded/g) ?? []).length;
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `https://w.test:${port} {\n  tls site.pem site.key\n  root www\n  header / X-After reload\n}\n`,
  );
  await waitFor(() => reloads() === 1, 15_000, 'the reload');
  let resumed = 0;
  for (let i = 0; i < 8; i++) if ((await connect('TLSv1.3', first.session)).resumed) resumed++;
  assert.equal(resumed, 8);
});
