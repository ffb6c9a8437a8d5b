// What the upstream receives and what the client gets back: paths, queries, headers, Host, rules, pools,
// TLS upstreams, unix sockets and the Caddyfile errors.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../../../src/app.js';
import { tempDir } from '../../helpers/process.js';
import { get, startBackend, startSite, type Backend, type Site } from './helpers.js';

/** A backend that echoes what it received as JSON. */
let echo: Backend;
const sites: Site[] = [];
const site = async (body: string): Promise<number> => {
  // Any Host: a catch-all site bound to loopback.
  const s = await startSite(`:0 {\nbind 127.0.0.1\n${body}\n}\n`);
  sites.push(s);
  return s.port;
};
const seen = async (port: number, p: string, headers: Record<string, string> = {}) => {
  const r = await get(port, p, headers);
  assert.equal(r.status, 200, r.body);
  return { ...r, got: JSON.parse(r.body) as { url: string; headers: http.IncomingHttpHeaders } };
};

before(async () => {
  echo = await startBackend('echo', (req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.setHeader('Connection', 'close, X-Hop');
    res.setHeader('X-Hop', 'secret');
    res.setHeader('Keep-Alive', 'timeout=1');
    res.setHeader('X-Upstream', 'yes');
    res.end(JSON.stringify({ url: req.url, headers: req.headers }));
  });
});
after(async () => {
  await Promise.all(sites.map((s) => s.stop()));
  await echo.close();
});

describe('proxy forwarding', () => {
  test('path prefix, query merge, without; longest from wins; except falls through', async () => {
    const port = await site(
      [
        `proxy / ${echo.addr}/root`,
        `proxy /api http://${echo.addr}/v1?key=k {\n without /api\n except /private\n}`,
        `proxy /api/long ${echo.addr}/long`,
      ].join('\n'),
    );
    assert.equal((await seen(port, '/x?y=1')).got.url, '/root/x?y=1');
    assert.equal((await seen(port, '/api/users?page=2')).got.url, '/v1/users?key=k&page=2');
    assert.equal((await seen(port, '/api')).got.url, '/v1/?key=k');
    assert.equal((await seen(port, '/api/long/z')).got.url, '/long/api/long/z');
    // except: this proxy ignores /api/private; the next-longest (/) takes it.
    assert.equal((await seen(port, '/api/private/a')).got.url, '/root/api/private/a');
  });

  test('X-Forwarded-For appended, hop-by-hop stripped both ways, Host is the upstream', async () => {
    const port = await site(`proxy / ${echo.addr}`);
    const r = await seen(port, '/', {
      'X-Forwarded-For': '10.0.0.1',
      Connection: 'keep-alive, X-Client-Hop',
      'X-Client-Hop': 'drop me',
      'Proxy-Authorization': 'x',
      TE: 'trailers',
      Host: 'front.example',
    });
    const h = r.got.headers;
    assert.equal(h['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-host'], 'front.example');
    assert.equal(h.host, echo.addr, 'Caddy sends the upstream host by default');
    for (const hop of ['x-client-hop', 'proxy-authorization', 'te']) assert.equal(h[hop], undefined, hop);
    assert.equal(r.headers['x-hop'], undefined, 'a header the upstream named in Connection is dropped');
    assert.equal(r.headers['x-upstream'], 'yes');
    assert.notEqual(r.headers['keep-alive'], 'timeout=1');
    assert.deepEqual(r.headers.server, 'nodecaddy');
  });

  test('transparent keeps the client Host and adds X-Real-IP & co.; {upstream} is set', async () => {
    const port = await site(
      `proxy / ${echo.addr} {\n transparent\n header_upstream X-Via {upstream}\n header_upstream X-Empty {>X-Missing}\n}`,
    );
    const h = (await seen(port, '/', { Host: 'front.example' })).got.headers;
    assert.equal(h.host, 'front.example');
    assert.equal(h['x-real-ip'], '127.0.0.1');
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.equal(h['x-forwarded-port'], '80', '{server_port} comes from the Host header, as in Caddy');
    assert.equal(h['x-via'], `http://${echo.addr}`);
    assert.equal(h['x-empty'], undefined, 'a value that renders empty is not sent');
  });

  test('header_upstream and header_downstream: set, add, remove, regex replace', async () => {
    const port = await site(
      [
        `proxy / ${echo.addr} {`,
        ' header_upstream X-Set one',
        ' header_upstream +X-Add two',
        ' header_upstream -User-Agent',
        ' header_upstream X-Client (\\d+) n$1',
        ' header_downstream X-Upstream "maybe"',
        ' header_downstream -Content-Type',
        ' header_downstream +X-Extra a',
        ' header_downstream X-Hop ^s sh',
        '}',
      ].join('\n'),
    );
    const r = await seen(port, '/', { 'X-Add': 'one', 'X-Client': 'id42', 'User-Agent': 'ua' });
    const h = r.got.headers;
    assert.equal(h['x-set'], 'one');
    assert.equal(h['x-add'], 'one, two');
    assert.equal(h['user-agent'], undefined);
    assert.equal(h['x-client'], 'idn42');
    assert.equal(r.headers['x-upstream'], 'maybe');
    assert.equal(r.headers['content-type'], undefined);
    assert.equal(r.headers['x-extra'], 'a');
  });

  test('by default 32 idle connections are kept: a second burst of 32 concurrent requests opens none', async () => {
    // The backend holds each request until 32 are waiting, so the first burst needs 32 connections.
    let held: (() => void)[] = [];
    const busy = await startBackend('busy', (_req, res) => {
      held.push(() => res.end('ok'));
      if (held.length === 32) {
        for (const release of held) release();
        held = [];
      }
    });
    try {
      const port = await site(`proxy / ${busy.addr}`);
      const burst = () => Promise.all(Array.from({ length: 32 }, () => get(port, '/')));
      for (const r of await burst()) assert.equal(r.status, 200);
      assert.equal(busy.connections, 32);
      for (const r of await burst()) assert.equal(r.status, 200);
      assert.equal(busy.connections, 32, 'the second burst reused every connection (Caddy v1 kept 2)');
    } finally {
      await busy.close();
    }
  });

  test('keep-alive pool: the upstream sees fewer connections than requests; keepalive 0 disables it', async () => {
    const pooled = await startBackend('pooled');
    const fresh = await startBackend('fresh');
    try {
      const p1 = await site(`proxy / ${pooled.addr}`);
      const p0 = await site(`proxy / ${fresh.addr} {\n keepalive 0\n}`);
      for (let i = 0; i < 20; i++) {
        await get(p1, '/');
        await get(p0, '/');
      }
      assert.equal(pooled.hits, 20);
      assert.ok(pooled.connections <= 2, `pooled: ${pooled.connections} connections for 20 requests`);
      assert.equal(fresh.connections, 20);
    } finally {
      await Promise.all([pooled.close(), fresh.close()]);
    }
  });

  test('unix socket upstream; upstream user:pass sets Basic auth only when the client sent none', async () => {
    const { dir, cleanup } = tempDir();
    const sock = path.join(dir, 'up.sock');
    const server = http.createServer((req, res) =>
      res.end(`${req.url} ${req.headers.host} ${req.headers.authorization ?? '-'}`),
    );
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const port = await site(`proxy /u unix:${sock}\nproxy /auth http://me:pw@${echo.addr}`);
      assert.equal((await get(port, '/u/x?q=1')).body, '/u/x?q=1 socket -');
      const basic = `Basic ${Buffer.from('me:pw').toString('base64')}`;
      assert.equal((await seen(port, '/auth')).got.headers.authorization, basic);
      const own = await seen(port, '/auth', { Authorization: 'Bearer t' });
      assert.equal(own.got.headers.authorization, 'Bearer t');
    } finally {
      server.close();
      cleanup();
    }
  });

  test('https upstream: verified with ca_certificates, or insecure_skip_verify; else 502', async () => {
    const { dir, cleanup } = tempDir();
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ], { stdio: 'ignore' }); // prettier-ignore
    const { readFileSync } = await import('node:fs');
    const server = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) =>
      res.end(`tls ${req.url}`),
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const verified = await site(`proxy / https://localhost:${port} {\n ca_certificates ${cert}\n}`);
      assert.equal((await get(verified, '/a')).body, 'tls /a');
      const skip = await site(`proxy / https://127.0.0.1:${port} {\n insecure_skip_verify\n}`);
      assert.equal((await get(skip, '/b')).body, 'tls /b');
      const strict = await site(`proxy / https://127.0.0.1:${port}`);
      assert.equal((await get(strict, '/c')).status, 502, 'an unknown CA is refused');
    } finally {
      server.closeAllConnections();
      server.close();
      cleanup();
    }
  });
});

describe('proxy Caddyfile', () => {
  const { dir, cleanup } = tempDir();
  after(cleanup);
  const load = (body: string) =>
    loadConfig(
      { text: `localhost {\n${body}\n}\n`, name: 'Caddyfile', baseDir: dir },
      { root: dir, host: '', port: '2015', cwd: dir, env: {} },
    );
  const fails = (body: string, message: RegExp) => assert.throws(() => load(body), message);

  test('port ranges expand; their mistakes are errors with file:line', () => {
    assert.doesNotThrow(() => load('proxy / localhost:8080-8082/a--b'));
    fails('proxy / localhost:8082-8080', /Caddyfile:2.*port range \[8082-8080\] is invalid/);
    fails('proxy / localhost:1-2-3', /has 2 separators/);
    fails('proxy / localhost:80x', /invalid port/);
  });

  test('bad options are rejected', () => {
    fails('proxy /', /Caddyfile:2/);
    fails('proxy / a:1 {\n max_fails 0\n}', /max_fails must be at least 1/);
    fails('proxy / a:1 {\n keepalive -1\n}', /keepalive must be at least 0/);
    fails('proxy / a:1 {\n policy nope\n}', /unknown policy 'nope'/);
    fails('proxy / a:1 {\n bogus\n}', /Unknown subdirective 'bogus'/);
    fails('proxy / a:1 {\n header_upstream +X a(b c\n}', /prefixes cannot be used/);
    fails('proxy / srv://svc', /not supported/);
    writeFileSync(path.join(dir, 'empty.pem'), 'nothing here');
    fails('proxy / https://a:1 {\n ca_certificates empty.pem\n}', /no certificates were successfully parsed/);
    fails('proxy / https://a:1 {\n ca_certificates missing.pem\n}', /reading 'missing.pem'/);
  });
});
