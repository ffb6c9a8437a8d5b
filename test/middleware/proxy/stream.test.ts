// Bodies and connections through the proxy: big streams both ways, SSE, aborts, crashes, limits, timeouts,
// WebSockets and leaks.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pino } from 'pino';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { selfSigned } from '../../helpers/certs.js';
import { waitFor } from '../../helpers/http.js';
import { tempDir } from '../../helpers/process.js';
import { get, startBackend, startSite, type Backend, type Site } from './helpers.js';

const MB = 1024 * 1024;
const sites: Site[] = [];
const backends: Backend[] = [];
const site = async (body: string): Promise<Site> => {
  const s = await startSite(`127.0.0.1:0 {\n${body}\n}\n`);
  sites.push(s);
  return s;
};
const backend = async (...args: Parameters<typeof startBackend>) => {
  const b = await startBackend(...args);
  backends.push(b);
  return b;
};
after(async () => {
  await Promise.all(sites.map((s) => s.stop()));
  await Promise.all(backends.map((b) => b.close()));
});

/** `total` bytes of deterministic data in 64 KiB chunks, each chunk different. */
function source(total: number): Readable {
  let sent = 0;
  let n = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const size = Math.min(64 * 1024, total - sent);
      const chunk = Buffer.alloc(size, n++ & 0xff);
      chunk.writeUInt32BE(n, 0);
      sent += size;
      this.push(chunk);
    },
  });
}
async function sha256Of(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of stream) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Samples live Buffer memory while fn runs; returns the peak growth. */
async function peakBufferGrowth(fn: () => Promise<void>): Promise<number> {
  const base = process.memoryUsage().arrayBuffers;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers)), 20);
  try {
    await fn();
  } finally {
    clearInterval(timer);
  }
  return peak - base;
}

describe('proxy streaming', () => {
  let port = 0;
  before(async () => {
    const big = await backend('big', (req, res) => {
      if (req.method === 'POST') {
        void sha256Of(req).then((h) => res.end(h));
      } else {
        res.setHeader('Content-Length', 200 * MB);
        void pipeline(source(200 * MB), res).catch(() => {});
      }
    });
    port = (await site(`proxy / ${big.addr}`)).port;
  });

  test('200 MB upload and download arrive intact, without buffering', async () => {
    const expected = await sha256Of(source(200 * MB));
    let uploaded = '';
    let downloaded = '';
    const growth = await peakBufferGrowth(async () => {
      uploaded = await new Promise<string>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port, method: 'POST', path: '/up', agent: false },
          (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => (body += d));
            res.on('end', () => resolve(body));
          },
        );
        req.on('error', reject);
        source(200 * MB).pipe(req);
      });
      downloaded = await new Promise<string>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/down', agent: false }, (res) => {
            sha256Of(res).then(resolve, reject);
          })
          .on('error', reject);
      });
    });
    assert.equal(uploaded, expected, 'upload hash');
    assert.equal(downloaded, expected, 'download hash');
    assert.ok(growth < 100 * MB, `buffer memory grew by ${Math.round(growth / MB)} MB`);
  });
});

describe('proxy events and failures', () => {
  test('SSE: event 1 arrives before event 2 is sent', async () => {
    let clientGotFirst: () => void = () => {};
    const firstSeen = new Promise<void>((r) => (clientGotFirst = r));
    const sse = await backend('sse', (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      res.write('data: one\n\n');
      void firstSeen.then(() => res.end('data: two\n\n'));
    });
    const { port } = await site(`proxy / ${sse.addr}`);
    const text = await new Promise<string>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/events', agent: false }, (res) => {
        let all = '';
        res.setEncoding('utf8').on('data', (d: string) => {
          all += d;
          if (all.includes('data: one') && !all.includes('two')) clientGotFirst();
        });
        res.on('end', () => resolve(all));
        res.on('error', reject);
      });
    });
    assert.equal(text, 'data: one\n\ndata: two\n\n');
  });

  test('a client abort aborts the upstream request', async () => {
    let upstreamClosed = false;
    let arrived = false;
    const slow = await backend('slow', (_req, res) => {
      arrived = true;
      res.on('close', () => (upstreamClosed = !res.writableFinished));
    });
    const { port } = await site(`proxy / ${slow.addr}`);
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false });
    req.on('error', () => {});
    await waitFor(() => arrived, 10_000, 'request at the backend');
    req.destroy();
    await waitFor(() => upstreamClosed, 10_000, 'the backend to see the close');
  });

  // A body of known length up to 256 KB is collected before anything goes to the client (h1/client.ts), so
  // there the client gets no response at all; a longer one is streamed, so the head arrives, then the cut.
  const dyingModes = [
    { mode: 'content-length', length: 1000, outcome: 'no response' },
    { mode: 'long content-length', length: 1024 * 1024, outcome: 'cut off' },
    { mode: 'chunked', length: undefined, outcome: 'cut off' },
  ];
  for (const { mode, length, outcome: expected } of dyingModes) {
    test(`an upstream dying mid-response (${mode}) cuts the client off, not a clean end`, async () => {
      const dying = await backend('dying', (_req, res) => {
        if (length !== undefined) res.setHeader('Content-Length', length);
        res.write('x'.repeat(100));
        setImmediate(() => res.socket?.destroy());
      });
      const { port } = await site(`proxy / ${dying.addr}`);
      const outcome = await new Promise<string>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve('clean end'));
          res.on('error', () => resolve('cut off'));
          res.on('aborted', () => resolve('cut off'));
        });
        req.on('error', () => resolve('no response'));
      });
      assert.equal(outcome, expected);
    });
  }

  test('limits: an oversized body is a 413, declared or chunked', async () => {
    const sink = await backend('sink', (req, res) => {
      req.resume();
      req.on('end', () => res.end('took it'));
    });
    const { port } = await site(`bodylimit 1000\nproxy / ${sink.addr}`);
    const post = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request({
          host: '127.0.0.1',
          port,
          method: 'POST',
          path: '/',
          headers,
          agent: false,
        });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end('y'.repeat(5000));
      });
    assert.equal(await post({ 'Content-Length': '5000' }), 413);
    assert.equal(await post({}), 413, 'chunked body over the limit');
  });

  test('response_timeout: a silent upstream is a 504; refused is a 502; both logged with the address', async () => {
    const silent = await backend('silent', () => {});
    const gone = await startBackend('gone');
    const deadAddr = gone.addr;
    await gone.close();
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const s = await startSite(
      `127.0.0.1:0 {\nproxy /slow ${silent.addr} {\n response_timeout 200ms\n}\nproxy /dead ${deadAddr}\n}\n`,
      pino(sink),
    );
    sites.push(s);
    const t0 = Date.now();
    assert.equal((await get(s.port, '/slow')).status, 504);
    assert.ok(Date.now() - t0 < 5000);
    assert.equal((await get(s.port, '/dead')).status, 502);
    await waitFor(() => lines.length >= 2, 5000, 'two log lines');
    assert.match(lines.join(''), new RegExp(`upstream http://${silent.addr}: no response within 200ms`));
    assert.match(lines.join(''), new RegExp(`upstream http://${deadAddr}: connect ECONNREFUSED`));
  });

  test('try_duration replays a buffered body on the next host', async () => {
    const gone = await startBackend('gone');
    const deadAddr = gone.addr;
    await gone.close();
    const live = await backend('live', (req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (d: string) => (body += d));
      req.on('end', () => res.end(`got ${body}`));
    });
    const { port } = await site(
      `proxy / ${deadAddr} ${live.addr} {\n policy first\n fail_timeout 10s\n try_duration 2s\n try_interval 10ms\n}`,
    );
    const reply = await new Promise<string>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path: '/', agent: false },
        (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (d: string) => (body += d));
          res.on('end', () => resolve(body));
        },
      );
      req.on('error', reject);
      req.end('payload');
    });
    assert.equal(reply, 'got payload');
  });
});

describe('proxy WebSockets', () => {
  test('echo through the websocket preset; without it the backend sees no upgrade', async () => {
    const ws = await backend('ws-http');
    const wss = new WebSocketServer({ server: ws.server });
    wss.on('connection', (sock) => sock.on('message', (m, binary) => sock.send(m, { binary })));
    const { port } = await site(`proxy /ws ${ws.addr} {\n websocket\n}\nproxy /plain ${ws.addr}`);
    const client = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const echoed = await new Promise<string>((resolve, reject) => {
      client.on('open', () => client.send('hello through the proxy'));
      client.on('message', (m: Buffer) => resolve(m.toString()));
      client.on('error', reject);
    });
    assert.equal(echoed, 'hello through the proxy');
    const closed = new Promise((r) => client.on('close', r));
    client.close();
    await closed;

    const plain = new WebSocket(`ws://127.0.0.1:${port}/plain`);
    const err = await new Promise<Error>((resolve) => plain.on('error', resolve));
    assert.match(err.message, /Unexpected server response: 200/);
    // An upgrade no directive takes gets an ordinary answer (here the static 404), then the connection closes.
    const stray = new WebSocket(`ws://127.0.0.1:${port}/nothing-here`);
    const strayErr = await new Promise<Error>((resolve) => stray.on('error', resolve));
    assert.match(strayErr.message, /Unexpected server response: 404/);
    wss.close();
  });

  test('a WebSocket to an https upstream (wss) goes through the same client; big messages both ways', async () => {
    const { dir, cleanup } = tempDir();
    const pair = selfSigned(dir, 'wss', ['127.0.0.1']);
    const server = https.createServer({ key: pair.key, cert: pair.cert });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (sock) => sock.on('message', (m, binary) => sock.send(m, { binary })));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const upstreamPort = (server.address() as AddressInfo).port;
    try {
      const { port } = await site(
        `proxy /ws https://127.0.0.1:${upstreamPort} {\n websocket\n ca_certificates ${pair.certFile}\n}`,
      );
      const client = new WebSocket(`ws://127.0.0.1:${port}/ws`);
      const big = Buffer.alloc(3_000_000, 7);
      const echoed = await new Promise<Buffer>((resolve, reject) => {
        client.on('open', () => client.send(big));
        client.on('message', (m: Buffer) => resolve(m));
        client.on('error', reject);
      });
      assert.equal(echoed.length, big.length);
      assert.ok(echoed.equals(big));
      const closed = new Promise((r) => client.on('close', r));
      client.close();
      await closed;
    } finally {
      wss.close();
      server.closeAllConnections();
      server.close();
      cleanup();
    }
  });
});

describe('proxy leaks', () => {
  test('after 1500 aborted requests, sockets return to baseline', async () => {
    const hanging = await backend('hanging', (req, res) => {
      // Half answer with a head and a first chunk, half never answer.
      if (req.url === '/partial') {
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        res.write('start');
      }
    });
    const s = await site(`proxy / ${hanging.addr}`);
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    const baseline = sockets();
    const one = (i: number) =>
      new Promise<void>((resolve) => {
        const partial = i % 2 === 0;
        const req = http.get({
          host: '127.0.0.1',
          port: s.port,
          path: partial ? '/partial' : '/',
          agent: false,
        });
        req.on('error', () => resolve());
        req.on('close', () => resolve());
        if (partial) req.on('response', () => req.destroy());
        else req.on('socket', (sock) => sock.once('connect', () => setImmediate(() => req.destroy())));
      });
    for (let batch = 0; batch < 1500; batch += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => one(batch + i)));
    }
    const open = () => new Promise<number>((r) => hanging.server.getConnections((_e, n) => r(n)));
    await waitFor(async () => (await open()) === 0, 20_000, 'backend connections to close');
    await waitFor(() => sockets() <= baseline, 20_000, `sockets back to ${baseline} (now ${sockets()})`);
    assert.ok(hanging.hits > 500, `the backend saw ${hanging.hits} requests`);
  });
});
