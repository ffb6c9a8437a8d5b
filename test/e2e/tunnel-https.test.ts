// The tunnel behind HTTPS: a public server whose tunnel site is served over TLS (from the local CA), a real
// `nodecaddy tunnel` client that trusts that CA and keeps its secret off the wire, and visitors over HTTP/2
// and HTTP/1.1.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { freePort, spawnNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';
import { SECRET, startTarget, type Target } from '../helpers/tunnel.js';
import { readFileSync, writeFileSync } from 'node:fs';

let tmp: { dir: string; cleanup: () => void };
let server: Nodecaddy;
let client: Nodecaddy;
let target: Target;
let port: number;
let root: Buffer;

before(async () => {
  tmp = tempDir();
  target = await startTarget();
  port = await freePort();
  const data = path.join(tmp.dir, 'data');
  writeFileSync(
    path.join(tmp.dir, 'Caddyfile'),
    `https://*.tunnel.localhost:${port} {\n\ttunnel {\n\t\tsecret ${SECRET}\n\t}\n}\n`,
  );
  server = await startNodecaddy(
    ['-conf', 'Caddyfile', '-workers', '2', '-data', data, '-http-port', String(await freePort())],
    { cwd: tmp.dir },
  );
  const rootFile = path.join(data, 'pki', 'authorities', 'local', 'root.crt');
  root = readFileSync(rootFile);
  client = spawnNodecaddy(
    [
      'tunnel',
      '-server',
      `https://tunnel.localhost:${port}`,
      '-dial',
      `127.0.0.1:${port}`,
      '-secret',
      SECRET,
      '-name',
      'alice',
      '-to',
      `127.0.0.1:${target.port}`,
      '-inspect',
      'off',
    ],
    { env: { NODE_EXTRA_CA_CERTS: rootFile } },
  );
  await waitFor(() => client.stdout().includes('Forwarding'), 15_000, 'the tunnel client').catch((err) => {
    throw new Error(`${(err as Error).message}\n${client.stdout()}${client.stderr()}`);
  });
});

after(async () => {
  await client?.stop('SIGINT');
  await server?.stop();
  await target?.close();
  tmp.cleanup();
});

test('the client connects over TLS, says https, and gives no clear-text warning', () => {
  assert.match(client.stdout(), new RegExp(`Forwarding https://alice\\.tunnel\\.localhost:${port} ->`));
  assert.doesNotMatch(client.stdout() + client.stderr(), /clear text|cleartext/i);
});

test('visitors over HTTP/2 and HTTP/1.1 reach the laptop, which sees X-Forwarded-Proto https', async () => {
  for (const http2 of [true, false]) {
    const r = await tlsRequest(port, {
      servername: 'alice.tunnel.localhost',
      ca: root,
      http2,
      method: 'POST',
      path: '/echo',
      body: `over ${http2 ? 'h2' : 'h1'}`,
    });
    assert.equal(r.status, 200);
    assert.equal(r.alpn, http2 ? 'h2' : 'http/1.1');
    assert.equal(r.body.toString(), `over ${http2 ? 'h2' : 'h1'}`);
    assert.equal(r.headers['x-seen-xfp'], 'https');
    assert.equal(r.headers['x-seen-method'], 'POST');
  }
});
