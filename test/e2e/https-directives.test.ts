// Every directive works the same over HTTP/2 as over HTTP/1.1 (the compatibility API differs from node:http in
// Host, response classes, forbidden connection headers and pseudo-headers): each request below goes both ways.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import WebSocket, { WebSocketServer } from 'ws';
import { signedBy, testCa, type KeyPair } from '../helpers/certs.js';
import { waitFor } from '../helpers/http.js';
import { phpFpmSkip, startPhpFpm, type PhpFpm } from '../helpers/phpfpm.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest, type TlsRequest, type TlsResponse } from '../helpers/tls.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let ca: KeyPair;
let port: number;
let fpm: PhpFpm;
let backend: http.Server;
const seenByBackend: http.IncomingHttpHeaders[] = [];

const PAGE = `<!doctype html><p>${'compress me please '.repeat(200)}</p>\n`;

before(async () => {
  ({ dir, cleanup } = tempDir());
  ca = testCa(dir);
  signedBy(ca, dir, 'site', ['h2.test']);
  const www = path.join(dir, 'www');
  mkdirSync(path.join(www, 'files'), { recursive: true });
  mkdirSync(path.join(www, 'php'), { recursive: true });
  writeFileSync(path.join(www, 'index.html'), PAGE);
  writeFileSync(path.join(www, 'range.txt'), '0123456789abcdefghij');
  writeFileSync(path.join(www, 'files', 'one.txt'), '1');
  writeFileSync(path.join(www, '404.html'), 'custom not found\n');
  writeFileSync(
    path.join(www, 'php', 'index.php'),
    '<?php header("X-Php: " . ($_SERVER["HTTPS"] ?? "off") . " " . $_SERVER["HTTP_HOST"]); echo "php says hi";',
  );
  fpm = await startPhpFpm({ children: 2 });
  backend = http.createServer((req, res) => {
    seenByBackend.push(req.headers);
    req.resume();
    // Connection-specific headers that HTTP/2 forbids: they must be dropped, never make a 500.
    res.writeHead(200, { 'Content-Type': 'text/plain', Connection: 'keep-alive', 'Keep-Alive': 'timeout=5' });
    res.end(`backend saw ${req.method} ${req.url}`);
  });
  const wss = new WebSocketServer({ server: backend, path: '/ws' });
  wss.on('connection', (sock) => sock.on('message', (m, binary) => sock.send(m, { binary })));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const backendPort = (backend.address() as AddressInfo).port;
  port = await freePort();
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `https://h2.test:${port} {
  tls site.pem site.key
  root www
  log / access.log "{method} {uri} {proto} {status} {size}"
  gzip
  header / X-Hdr "{host} {scheme}"
  rewrite /old /range.txt
  redir /go /range.txt 302
  basicauth /private alice secret
  browse /files
  errors {
    404 404.html
  }
  limits {
    body /upload 10
  }
  proxy /api 127.0.0.1:${backendPort}
  proxy /ws 127.0.0.1:${backendPort} {
    websocket
  }
  fastcgi /php 127.0.0.1:${fpm.port} php
}
`,
  );
  nc = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1', '-http-port', String(await freePort())], {
    cwd: dir,
  });
});

after(async () => {
  await nc?.stop();
  await fpm?.stop();
  backend?.close();
  cleanup();
});

function both(r: Omit<TlsRequest, 'servername' | 'ca'>): Promise<[TlsResponse, TlsResponse]> {
  const base = { servername: 'h2.test', ca: ca.cert, ...r };
  return Promise.all([tlsRequest(port, { ...base, http2: true }), tlsRequest(port, base)]);
}

describe('every directive over HTTP/2 and HTTP/1.1', { skip: phpFpmSkip() }, () => {
  test('static, gzip, header (Host from :authority), log', async () => {
    for (const r of await both({ headers: { 'accept-encoding': 'gzip' } })) {
      assert.equal(r.status, 200);
      assert.equal(r.headers['content-encoding'], 'gzip');
      assert.equal(zlib.gunzipSync(r.body).toString(), PAGE);
      assert.equal(r.headers['x-hdr'], 'h2.test https');
    }
    await waitFor(() => /GET \/ HTTP\/2\.0 200 \d+/.test(readAccessLog()), 5000, 'the HTTP/2 log line');
    assert.match(readAccessLog(), /GET \/ HTTP\/1\.1 200 \d+/);
  });

  test('ranges, rewrite, redir', async () => {
    for (const r of await both({ path: '/range.txt', headers: { range: 'bytes=2-4' } })) {
      assert.equal(r.status, 206);
      assert.equal(r.body.toString(), '234');
    }
    for (const r of await both({ path: '/old' })) assert.equal(r.body.toString(), '0123456789abcdefghij');
    for (const r of await both({ path: '/go' })) {
      assert.equal(r.status, 302);
      assert.equal(r.headers.location, '/range.txt');
    }
  });

  test('basicauth, browse, errors, limits', async () => {
    for (const r of await both({ path: '/private/x' })) {
      assert.equal(r.status, 401);
      assert.match(String(r.headers['www-authenticate']), /Basic/);
    }
    const auth = { authorization: `Basic ${Buffer.from('alice:secret').toString('base64')}` };
    for (const r of await both({ path: '/private/x', headers: auth })) assert.equal(r.status, 404);
    for (const r of await both({ path: '/files/', headers: { accept: 'application/json' } }))
      assert.equal((JSON.parse(r.body.toString()) as { Name: string }[])[0].Name, 'one.txt');
    for (const r of await both({ path: '/nothing' })) {
      assert.equal(r.status, 404);
      assert.equal(r.body.toString(), 'custom not found\n');
    }
    for (const r of await both({ path: '/upload', method: 'POST', body: 'more than ten bytes' }))
      assert.equal(r.status, 413);
  });

  test('proxy: no pseudo-headers upstream, X-Forwarded-Proto https, connection headers dropped on HTTP/2', async () => {
    seenByBackend.length = 0;
    for (const r of await both({ path: '/api/x?y=1' })) {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'backend saw GET /api/x?y=1');
    }
    for (const h of seenByBackend) {
      assert.equal(h['x-forwarded-proto'], 'https');
      assert.equal(h.host, '127.0.0.1:' + String((backend.address() as AddressInfo).port));
      assert.ok(!Object.keys(h).some((k) => k.startsWith(':')), JSON.stringify(h));
    }
  });

  test('WebSockets over HTTPS (an HTTP/1.1 upgrade on the TLS listener) through proxy', async () => {
    // ws passes TLS options on to tls.connect; its types leave servername out.
    const tlsOptions = { servername: 'h2.test', ca: ca.cert, headers: { host: 'h2.test' } };
    const client = new WebSocket(`wss://127.0.0.1:${port}/ws`, tlsOptions);
    const echoed = await new Promise<string>((resolve, reject) => {
      client.on('open', () => client.send('over wss'));
      client.on('message', (m: Buffer) => resolve(m.toString()));
      client.on('error', reject);
    });
    assert.equal(echoed, 'over wss');
    client.close();
  });

  test('fastcgi: HTTPS=on, HTTP_HOST from :authority', async () => {
    for (const r of await both({ path: '/php/' })) {
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), 'php says hi');
      assert.equal(r.headers['x-php'], 'on h2.test');
    }
  });
});

function readAccessLog(): string {
  try {
    return readFileSync(path.join(dir, 'access.log'), 'utf8');
  } catch {
    return '';
  }
}
