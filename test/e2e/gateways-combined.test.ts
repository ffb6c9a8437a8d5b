// proxy combined with the wrapping directives (gzip, log, header, basicauth, errors), through the real
// nodecaddy process (2 workers, the default) and a real backend. The directives were built on separate
// branches; these tests prove they compose.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { WebSocket, WebSocketServer } from 'ws';
import { waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

const JSON_BODY = JSON.stringify({
  items: Array.from({ length: 100 }, (_, i) => ({ id: i, name: `item ${i}` })),
});
const HTML = `<!doctype html><title>pre</title>${'<p>already compressed by the backend</p>'.repeat(50)}`;
const PAGE_502 = '<h1>custom bad gateway page</h1>\n';
const PAGE_413 = '<h1>custom too large page</h1>\n';

interface Backend {
  port: number;
  /** Requests seen per path. */
  hits: Map<string, number>;
  /** Releases the open SSE stream's second event (pushed when the stream opens). */
  sseRelease: (() => void)[];
  close(): Promise<void>;
}

async function startBackend(): Promise<Backend> {
  const hits = new Map<string, number>();
  const sseRelease: (() => void)[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    // A Server header of the backend's own, for `header / -Server` to remove.
    res.setHeader('server', 'backend/1.0');
    if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: one\n\n');
      sseRelease.push(() => res.end('data: two\n\n'));
      return;
    }
    if (url.pathname === '/pregz') {
      const gz = zlib.gzipSync(HTML);
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-encoding': 'gzip',
        'content-length': gz.length,
      });
      res.end(gz);
      return;
    }
    if (url.pathname === '/live/own502') {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('the backend says 502');
      return;
    }
    if (url.pathname === '/live/upload') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(`got ${n}`));
      return;
    }
    const body = url.pathname === '/private' ? `private for ${req.headers.authorization ?? ''}` : JSON_BODY;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  // Any path upgrades (/ws on one site, /live/ws on the other).
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    hits,
    sseRelease,
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** GET with the body as raw bytes (so a compressed body can be checked as such). */
function get(port: number, urlPath: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.setTimeout(15_000, () => req.destroy(new Error(`${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** POST with a Content-Length (or chunked) body; a server that answers early and closes is not an error. */
function post(port: number, urlPath: string, body: string, chunked = false): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = chunked ? { 'transfer-encoding': 'chunked' } : {};
    const req = http.request(
      { host: '127.0.0.1', port, path: urlPath, method: 'POST', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`${urlPath} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('proxy with gzip, log, header, basicauth and errors', () => {
  let tmp: { dir: string; cleanup: () => void };
  let backend: Backend;
  let nc: Nodecaddy;
  let port: number;
  let errPort: number;
  let deadPort: number;
  const logFile = () => path.join(tmp.dir, 'access.log');

  /** Waits for the access log line that starts with `prefix` (lines are written asynchronously). */
  const logLine = (prefix: string) =>
    waitFor(
      () =>
        readFileSync(logFile(), 'utf8')
          .split('\n')
          .find((l) => l.startsWith(prefix)),
      10_000,
      `log line '${prefix}'`,
    );

  before(async () => {
    tmp = tempDir();
    backend = await startBackend();
    [port, errPort, deadPort] = [await freePort(), await freePort(), await freePort()];
    writeFileSync(path.join(tmp.dir, '502.html'), PAGE_502);
    writeFileSync(path.join(tmp.dir, '413.html'), PAGE_413);
    const up = `127.0.0.1:${backend.port}`;
    const dead = `127.0.0.1:${deadPort}`;
    writeFileSync(
      path.join(tmp.dir, 'Caddyfile'),
      `127.0.0.1:${port} {
	root ${tmp.dir}
	gzip
	log / ${logFile()} "{method} {uri} {status} {size} {upstream}"
	header / -Server
	header / X-Added yes
	basicauth /private bob "s3cret pw"
	proxy / ${up}
	proxy /ws ${up} {
		websocket
	}
	proxy /dead ${dead}
}
127.0.0.1:${errPort} {
	root ${tmp.dir}
	gzip
	limits {
		body /live/upload 1KB
	}
	errors {
		502 502.html
		413 413.html
	}
	basicauth /live/ws bob "s3cret pw"
	proxy / ${dead}
	proxy /live ${up} {
		websocket
	}
}
`,
    );
    nc = await startNodecaddy(['-conf', path.join(tmp.dir, 'Caddyfile')], { cwd: tmp.dir, listeners: 2 });
  });
  after(async () => {
    await nc?.stop();
    await backend?.close();
    tmp?.cleanup();
  });

  test('proxy + gzip: each server-sent event arrives decompressed before the backend sends the next', async () => {
    const released = backend.sseRelease.length;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http
        .get(
          { host: '127.0.0.1', port, path: '/sse', headers: { 'accept-encoding': 'gzip' }, agent: false },
          resolve,
        )
        .on('error', reject),
    );
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers['content-length'], undefined);
    let decoded = '';
    const gunzip = res.pipe(zlib.createGunzip());
    gunzip.setEncoding('utf8').on('data', (d: string) => (decoded += d));
    const ended = new Promise((r) => gunzip.once('end', r));
    // The backend holds event 2 until released: event 1 must get through gzip on its own.
    await waitFor(() => decoded === 'data: one\n\n', 10_000, 'event 1 through gzip');
    assert.equal(backend.sseRelease.length, released + 1);
    backend.sseRelease[released]();
    await ended;
    assert.equal(decoded, 'data: one\n\ndata: two\n\n');
  });

  test('proxy + gzip: a proxied JSON response is compressed with the right headers', async () => {
    const res = await get(port, '/json', { 'accept-encoding': 'gzip' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'application/json');
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.match(String(res.headers.vary), /Accept-Encoding/i);
    assert.equal(res.headers['content-length'], undefined);
    assert.ok(res.body.length < JSON_BODY.length, 'compressed is smaller');
    assert.equal(zlib.gunzipSync(res.body).toString('utf8'), JSON_BODY);
    const plain = await get(port, '/json');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers['content-length'], String(JSON_BODY.length));
    assert.equal(plain.body.toString('utf8'), JSON_BODY);
  });

  test('proxy + gzip: a response the backend already gzipped is not compressed twice', async () => {
    const res = await get(port, '/pregz', { 'accept-encoding': 'gzip' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(res.body).toString('utf8'), HTML, 'one gunzip gives the page');
  });

  test('proxy + log: status, size and {upstream} of a proxied request; a dead upstream logs 502', async () => {
    const ok = await get(port, '/json?log=1');
    assert.equal(ok.status, 200);
    assert.equal(
      await logLine('GET /json?log=1 '),
      `GET /json?log=1 200 ${JSON_BODY.length} http://127.0.0.1:${backend.port}`,
    );
    // Compressed: {size} is what went on the wire.
    const gz = await get(port, '/json?log=2', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(
      await logLine('GET /json?log=2 '),
      `GET /json?log=2 200 ${gz.body.length} http://127.0.0.1:${backend.port}`,
    );
    const bad = await get(port, '/dead/x');
    assert.equal(bad.status, 502);
    assert.match(await logLine('GET /dead/x '), new RegExp(`^GET /dead/x 502 ${bad.body.length} `));
  });

  test('proxy + basicauth: 401 without credentials (backend never hit), 200 with', async () => {
    const before = backend.hits.get('/private') ?? 0;
    const denied = await get(port, '/private');
    assert.equal(denied.status, 401);
    assert.match(String(denied.headers['www-authenticate']), /^Basic realm=/);
    const wrong = await get(port, '/private', { authorization: basic('bob', 'nope') });
    assert.equal(wrong.status, 401);
    assert.equal(backend.hits.get('/private') ?? 0, before, 'the backend never saw a rejected request');
    const auth = basic('bob', 's3cret pw');
    const ok = await get(port, '/private', { authorization: auth });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString('utf8'), `private for ${auth}`);
    assert.equal(backend.hits.get('/private'), before + 1);
    assert.match(await logLine('GET /private 200 '), /^GET \/private 200 \d+ http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('proxy + header: -Server and X-Added apply to proxied responses', async () => {
    for (const ae of ['', 'gzip']) {
      const res = await get(port, '/json', ae ? { 'accept-encoding': ae } : {});
      assert.equal(res.status, 200);
      assert.equal(res.headers.server, undefined, `backend's Server removed (${ae || 'identity'})`);
      assert.equal(res.headers['x-added'], 'yes');
    }
    const denied = await get(port, '/private');
    assert.equal(denied.headers['x-added'], 'yes', 'also on the 401');
  });

  test('proxy websocket preset with gzip and log on the site: echo works, the log records 101', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?e=1`, {
      headers: { 'accept-encoding': 'gzip' },
      perMessageDeflate: false,
    });
    const messages: string[] = [];
    ws.on('message', (d: Buffer) => messages.push(d.toString('utf8')));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res: http.IncomingMessage) =>
        reject(new Error(`upgrade refused: ${res.statusCode}`)),
      );
    });
    const big = 'x'.repeat(100_000);
    for (const m of ['one', 'two', big]) ws.send(m);
    await waitFor(() => messages.length === 3, 10_000, 'echoes');
    assert.deepEqual(messages, ['one', 'two', big]);
    ws.close();
    await new Promise((r) => ws.once('close', r));
    assert.match(
      await logLine('GET /ws?e=1 '),
      new RegExp(`^GET /ws\\?e=1 101 \\d+ http://127\\.0\\.0\\.1:${backend.port}$`),
    );
  });

  test('errors + proxy: a dead upstream renders the custom 502 page', async () => {
    const res = await get(errPort, '/anything');
    assert.equal(res.status, 502);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(res.body.toString('utf8'), PAGE_502);
    // With gzip on the site the error page is compressed like any response.
    const gz = await get(errPort, '/anything', { 'accept-encoding': 'gzip' });
    assert.equal(gz.status, 502);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(zlib.gunzipSync(gz.body).toString('utf8'), PAGE_502);
  });

  test("errors + proxy: a backend's own 502 passes through unchanged (only the proxy's own errors get pages)", async () => {
    const res = await get(errPort, '/live/own502');
    assert.equal(res.status, 502);
    assert.equal(res.headers['content-type'], 'text/plain');
    assert.equal(res.body.toString('utf8'), 'the backend says 502');
  });

  test('limits + errors + proxy: a chunked body over the limit is 413 with the custom page', async () => {
    const small = await post(errPort, '/live/upload', 'x'.repeat(1000), true);
    assert.equal(small.status, 200);
    assert.equal(small.body.toString('utf8'), 'got 1000');
    const big = await post(errPort, '/live/upload', 'x'.repeat(5000), true);
    assert.equal(big.status, 413);
    assert.equal(big.body.toString('utf8'), PAGE_413);
  });

  test('limits + errors + proxy: a declared Content-Length over the limit is 413 with the page, backend not hit', async () => {
    const before = backend.hits.get('/live/upload') ?? 0;
    const big = await post(errPort, '/live/upload', 'x'.repeat(5000));
    assert.equal(big.status, 413);
    assert.equal(backend.hits.get('/live/upload') ?? 0, before, 'the backend never saw it');
    assert.equal(big.body.toString('utf8'), PAGE_413);
  });

  test('basicauth + proxy websocket: the upgrade is refused with 401 without credentials, echoes with', async () => {
    const denied = new WebSocket(`ws://127.0.0.1:${errPort}/live/ws`);
    const status = await new Promise<number>((resolve, reject) => {
      denied.once('unexpected-response', (_req, res: http.IncomingMessage) => resolve(res.statusCode ?? 0));
      denied.once('open', () => reject(new Error('opened without credentials')));
      denied.once('error', reject);
    });
    assert.equal(status, 401);
    const ws = new WebSocket(`ws://127.0.0.1:${errPort}/live/ws`, {
      headers: { authorization: basic('bob', 's3cret pw') },
    });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const echoed = new Promise<string>((r) => ws.once('message', (d: Buffer) => r(d.toString('utf8'))));
    ws.send('authorised');
    assert.equal(await echoed, 'authorised');
    ws.close();
    await new Promise((r) => ws.once('close', r));
  });
});
