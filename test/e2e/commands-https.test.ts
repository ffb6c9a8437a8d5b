// HTTPS in the one-line servers, through the real nodecaddy binary, as Caddy 2's `file-server --domain` and
// `reverse-proxy --from`: a host is served over HTTPS (localhost from the local CA in the -data folder, a public
// name from the ACME CA: Pebble here), plain HTTP redirects to it, `http://` and port-only addresses stay plain,
// and a public name without -agree fails with the main command's message.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { acmeFlags } from '../helpers/acme.js';
import { request, waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { freePort, runNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';

let dir: string;
let cleanup: () => void;
let backend: http.Server;
let backendPort: number;
const running: Nodecaddy[] = [];

before(async () => {
  ({ dir, cleanup } = tempDir('nodecaddy-quick-https-'));
  mkdirSync(path.join(dir, 'site'));
  writeFileSync(path.join(dir, 'site', 'hello.txt'), 'hello over HTTPS');
  backend = http.createServer((req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(
      JSON.stringify({ host: req.headers.host, url: req.url, proto: req.headers['x-forwarded-proto'] }),
    );
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendPort = (backend.address() as AddressInfo).port;
});
after(async () => {
  await Promise.all(running.map((nc) => nc.stop('SIGKILL')));
  backend.closeAllConnections();
  await new Promise((resolve) => backend.close(resolve));
  cleanup();
});

/** Starts a command in one process; `listeners` counts the redirect listener too. */
async function serve(args: string[], listeners: number): Promise<Nodecaddy> {
  const nc = await startNodecaddy([...args, '-workers', '1'], { cwd: dir, listeners });
  running.push(nc);
  return nc;
}

async function stop(nc: Nodecaddy): Promise<void> {
  assert.equal(await nc.stop(), 0);
}

/** The local CA's root in a -data folder: what a visitor would have to trust. */
function localRoot(data: string): Buffer {
  return readFileSync(path.join(data, 'pki', 'authorities', 'local', 'root.crt'));
}

describe('file-server -domain', () => {
  test('localhost with no -listen: HTTPS on the -https-port from the local CA; the HTTP port redirects', async () => {
    const httpsPort = await freePort();
    const httpPort = await freePort();
    const data = path.join(dir, 'data-fs-default');
    const root = path.join(dir, 'site');
    const nc = await serve(
      ['file-server', '-root', root, '-domain', 'localhost', '-https-port', String(httpsPort)].concat([
        '-http-port',
        String(httpPort),
        '-data',
        data,
      ]),
      2,
    );
    try {
      assert.match(nc.stdout(), new RegExp(`^Serving HTTPS on port ${httpsPort}$`, 'm'));
      assert.match(nc.stdout(), new RegExp(`^https://localhost:${httpsPort}$`, 'm'));
      const res = await tlsRequest(httpsPort, {
        servername: 'localhost',
        path: '/hello.txt',
        ca: localRoot(data),
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'hello over HTTPS');
      assert.match(res.peer.san, /DNS:localhost/);
      // Port forwarding from the HTTPS port is assumed: the Location names no port.
      const plain = await request(httpPort, '/hello.txt?x=1', { headers: { Host: 'localhost' } });
      assert.equal(plain.status, 301);
      assert.equal(plain.headers.location, 'https://localhost/hello.txt?x=1');
    } finally {
      await stop(nc);
    }
  });

  test('-listen host:port puts HTTPS there; -listen on the -http-port stays plain', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const data = path.join(dir, 'data-fs-listen');
    const root = path.join(dir, 'site');
    const nc = await serve(
      ['file-server', '-root', root, '-domain', 'files.localhost', '-listen', `127.0.0.1:${port}`].concat([
        '-http-port',
        String(httpPort),
        '-data',
        data,
      ]),
      2,
    );
    try {
      assert.match(nc.stdout(), new RegExp(`^Serving HTTPS on 127\\.0\\.0\\.1:${port}$`, 'm'));
      const res = await tlsRequest(port, {
        servername: 'files.localhost',
        path: '/hello.txt',
        ca: localRoot(data),
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'hello over HTTPS');
      // Only that host: another name gets no certificate.
      await assert.rejects(tlsRequest(port, { servername: 'other.localhost', ca: localRoot(data) }));
      const plain = await request(httpPort, '/hello.txt', { headers: { Host: 'files.localhost' } });
      assert.equal(plain.status, 301);
      assert.equal(plain.headers.location, `https://files.localhost:${port}/hello.txt`);
    } finally {
      await stop(nc);
    }

    const plainNc = await serve(
      ['file-server', '-root', root, '-domain', 'localhost', '-listen', `127.0.0.1:${httpPort}`].concat([
        '-http-port',
        String(httpPort),
        '-data',
        data,
      ]),
      1,
    );
    try {
      assert.match(plainNc.stdout(), new RegExp(`^Serving HTTP on 127\\.0\\.0\\.1:${httpPort}$`, 'm'));
      const res = await request(httpPort, '/hello.txt', { headers: { Host: 'localhost' } });
      assert.equal(res.status, 200);
      assert.equal(res.body, 'hello over HTTPS');
    } finally {
      await stop(plainNc);
    }
  });
});

describe('reverse-proxy -from', () => {
  test('https://localhost:<port>: HTTPS from the local CA, proxied, with a redirect on the HTTP port', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const data = path.join(dir, 'data-rp');
    const nc = await serve(
      ['reverse-proxy', '-from', `https://localhost:${port}`, '-to', `127.0.0.1:${backendPort}`].concat([
        '-http-port',
        String(httpPort),
        '-data',
        data,
      ]),
      2,
    );
    try {
      assert.match(nc.stdout(), new RegExp(`^Serving HTTPS on port ${port}$`, 'm'));
      const res = await tlsRequest(port, { servername: 'localhost', path: '/api?q=1', ca: localRoot(data) });
      assert.equal(res.status, 200);
      assert.deepEqual(JSON.parse(res.body.toString()), {
        host: 'localhost', // tlsRequest's Host is the SNI name
        url: '/api?q=1',
        proto: 'https',
      });
      const h2 = await tlsRequest(port, { servername: 'localhost', ca: localRoot(data), http2: true });
      assert.equal(h2.status, 200);
      assert.equal(h2.alpn, 'h2');
      const plain = await request(httpPort, '/api', { headers: { Host: 'localhost' } });
      assert.equal(plain.status, 301);
      assert.equal(plain.headers.location, `https://localhost:${port}/api`);
    } finally {
      await stop(nc);
    }
  });

  test('a host with a port and no scheme is HTTPS too; -internal-certs serves a public name from the local CA', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    const data = path.join(dir, 'data-rp-internal');
    const nc = await serve(
      [
        'reverse-proxy',
        '-from',
        `app.example.com:${port}`,
        '-to',
        String(backendPort),
        '-internal-certs',
      ].concat(['-http-port', String(httpPort), '-data', data]),
      2,
    );
    try {
      assert.match(nc.stdout(), new RegExp(`^https://app\\.example\\.com:${port}$`, 'm'));
      const res = await tlsRequest(port, { servername: 'app.example.com', ca: localRoot(data) });
      assert.equal(res.status, 200);
      assert.match(res.peer.san, /DNS:app\.example\.com/);
      assert.equal((JSON.parse(res.body.toString()) as { proto: string }).proto, 'https');
    } finally {
      await stop(nc);
    }
  });

  test('http://host:port and :port stay plain HTTP', async () => {
    const port = await freePort();
    const httpPort = await freePort();
    for (const from of [`http://localhost:${port}`, `:${port}`]) {
      const nc = await serve(
        ['reverse-proxy', '-from', from, '-to', String(backendPort), '-http-port', String(httpPort)],
        1,
      );
      try {
        assert.match(nc.stdout(), new RegExp(`^Serving HTTP on port ${port}$`, 'm'), from);
        assert.doesNotMatch(nc.stdout(), /Serving HTTPS/, from);
        const res = await request(port, '/', { headers: { Host: 'localhost' } });
        assert.equal(res.status, 200, from);
        assert.equal((JSON.parse(res.body) as { proto: string }).proto, 'http', from);
      } finally {
        await stop(nc);
      }
    }
  });
});

test('a public name without -agree fails with the main command’s message, in both commands', async () => {
  for (const args of [
    ['reverse-proxy', '-from', 'proxied.example.com', '-to', String(backendPort)],
    ['file-server', '-domain', 'files.example.com'],
  ]) {
    const r = await runNodecaddy([...args, '-workers', '1'], { cwd: dir });
    assert.equal(r.code, 1, args.join(' '));
    assert.match(
      r.stderr,
      /https:\/\/(proxied|files)\.example\.com gets its certificate from an ACME CA \(automatic HTTPS, https:\/\/acme-v02\.api\.letsencrypt\.org\/directory\): run with -agree/,
    );
    assert.equal(r.stdout, '', 'nothing served');
  }
});

describe('reverse-proxy -from a public name with an ACME CA', { skip: pebbleSkip(true) }, () => {
  let pebble: Pebble;
  let httpPort: number;
  let httpsPort: number;

  before(async () => {
    httpPort = await freePort();
    httpsPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: httpsPort, dns: true });
  });
  after(async () => {
    await pebble?.stop();
  });

  test('gets a certificate that verifies against the CA’s root, proxies, and redirects plain HTTP', async () => {
    const flags = acmeFlags({ pebble, httpPort, httpsPort, data: path.join(dir, 'data-acme') });
    const nc = await startNodecaddy(
      [
        'reverse-proxy',
        '-from',
        'proxied.example.com',
        '-to',
        `127.0.0.1:${backendPort}`,
        ...flags,
        '-email',
        'ops@example.com',
      ],
      { cwd: dir, listeners: 2, env: { NODE_EXTRA_CA_CERTS: pebble.caFile } },
    );
    running.push(nc);
    try {
      assert.match(nc.stdout(), new RegExp(`^https://proxied\\.example\\.com:${httpsPort}$`, 'm'));
      const root = await pebble.root();
      const res = await waitFor(
        () => tlsRequest(httpsPort, { servername: 'proxied.example.com', path: '/through', ca: root }),
        20_000,
        'a certificate for proxied.example.com',
      );
      assert.equal(res.status, 200);
      assert.match(res.peer.san, /DNS:proxied\.example\.com/);
      assert.deepEqual(JSON.parse(res.body.toString()), {
        host: 'proxied.example.com',
        url: '/through',
        proto: 'https',
      });
      assert.ok(pebble.orderCount() >= 1);
      const plain = await request(httpPort, '/x', { headers: { Host: 'proxied.example.com' } });
      assert.equal(plain.status, 301);
      assert.equal(plain.headers.location, 'https://proxied.example.com/x');
    } finally {
      await stop(nc);
    }
  });
});
