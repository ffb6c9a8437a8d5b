// The proxy's own HTTP/1.1 client and its connection pool, against upstreams written here on raw sockets
// (so the test decides exactly what the upstream sends and when it closes), through the real proxy.
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { rawRequest, waitFor } from '../../helpers/http.js';
import { InvalidRequestHeadError, serializeHead } from '../../../src/core/h1/request.js';
import { get, startSite, type Site } from './helpers.js';

interface RawUpstream {
  addr: string;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections closed so far (by either side). */
  closed: number;
  /** Every request head received, in order. */
  heads: string[];
  /** Everything received, as latin1. */
  received: string;
  close(): Promise<void>;
}

/** Answers `ok` to each request by default; `answer` may do anything else with the socket instead. */
type Answer = (socket: Socket, head: string, nthOnConnection: number) => void;

const ok = (socket: Socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');

const upstreams: RawUpstream[] = [];
const sites: Site[] = [];
after(async () => {
  await Promise.all(sites.map((s) => s.stop()));
  await Promise.all(upstreams.map((u) => u.close()));
});

async function rawUpstream(answer: Answer = ok): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const u = { accepted: 0, closed: 0, heads: [] as string[], received: '' } as RawUpstream;
  const server = net.createServer((socket) => {
    u.accepted++;
    sockets.add(socket);
    socket.on('close', () => {
      u.closed++;
      sockets.delete(socket);
    });
    socket.on('error', () => {});
    let pending = '';
    let n = 0;
    socket.on('data', (chunk: Buffer) => {
      u.received += chunk.toString('latin1');
      pending += chunk.toString('latin1');
      for (let end = pending.indexOf('\r\n\r\n'); end >= 0; end = pending.indexOf('\r\n\r\n')) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        u.heads.push(head);
        answer(socket, head, ++n);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  u.addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  u.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  upstreams.push(u);
  return u;
}

async function site(body: string, log?: pino.Logger): Promise<number> {
  const s = await startSite(`127.0.0.1:0 {\n${body}\n}\n`, log);
  sites.push(s);
  return s.port;
}

describe('proxy h1 client and pool', () => {
  test('sequential requests share one upstream connection', async () => {
    const up = await rawUpstream();
    const port = await site(`proxy / ${up.addr}`);
    for (let i = 0; i < 10; i++) {
      const r = await get(port, `/n${i}`);
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
    }
    assert.equal(up.heads.length, 10);
    assert.equal(up.accepted, 1, `${up.accepted} connections for 10 requests`);
    assert.match(up.heads[3], /^GET \/n3 HTTP\/1\.1\r\n/);
    assert.doesNotMatch(up.heads[3], /^connection:/im, 'HTTP/1.1 is persistent without saying so');
  });

  test('keepalive 0: a new connection per request, each asking the upstream to close', async () => {
    const up = await rawUpstream((socket) => ok(socket)); // the upstream does not close: we must
    const port = await site(`proxy / ${up.addr} {\n keepalive 0\n}`);
    for (let i = 0; i < 5; i++) assert.equal((await get(port, '/')).body, 'ok');
    assert.equal(up.accepted, 5);
    for (const head of up.heads) assert.match(head, /^Connection: close$/im);
    await waitFor(() => up.closed === 5, 5000, 'every upstream connection closed by the proxy');
  });

  test('an idle connection the upstream closes is dropped; the next request gets a fresh one', async () => {
    // Answers, then closes the connection without announcing it (as a keep-alive timeout does).
    const up = await rawUpstream((socket) => ok(socket).valueOf() && socket.end());
    const port = await site(`proxy / ${up.addr}`);
    assert.equal((await get(port, '/')).body, 'ok');
    await waitFor(() => up.closed === 1, 5000, 'the first connection to close');
    const second = await get(port, '/');
    assert.equal(second.status, 200, second.body);
    assert.equal(up.accepted, 2);
    assert.equal(up.heads.length, 2, 'no request was lost on the closed connection');
  });

  test('a pooled connection reset on reuse is retried once, at once, on a fresh connection', async () => {
    // The second request on any connection is met with a reset: the race of a keep-alive timeout.
    const up = await rawUpstream((socket, _head, n) => (n === 1 ? ok(socket) : socket.resetAndDestroy()));
    const port = await site(`proxy / ${up.addr} {\n max_fails 1\n fail_timeout 10s\n}`);
    assert.equal((await get(port, '/a')).body, 'ok');
    const r = await get(port, '/b');
    assert.equal(r.status, 200, r.body);
    assert.equal(up.accepted, 2);
    // Not counted as a failure of the host: with max_fails 1 it would now be down.
    assert.equal((await get(port, '/c')).status, 200);
  });

  test('a pooled connection reset on reuse: a POST is not sent again (502) unless it has an Idempotency-Key', async () => {
    const up = await rawUpstream((socket, _head, n) => (n === 1 ? ok(socket) : socket.resetAndDestroy()));
    const port = await site(`proxy / ${up.addr}`);
    const post = (path: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        http
          .request({ host: '127.0.0.1', port, method: 'POST', path, headers, agent: false }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          })
          .on('error', reject)
          .end();
      });
    assert.equal((await get(port, '/seed')).body, 'ok');
    assert.equal(await post('/once'), 502);
    assert.equal(up.heads.filter((h) => h.startsWith('POST /once ')).length, 1, 'the POST went out once');
    assert.equal((await get(port, '/seed2')).body, 'ok');
    assert.equal(await post('/keyed', { 'Idempotency-Key': 'k1' }), 200);
    assert.equal(up.heads.filter((h) => h.startsWith('POST /keyed ')).length, 2, 'retried on a fresh one');
  });

  test('a transfer coding other than chunked (gzip, chunked) is a 502, never raw bytes under a wrong label', async () => {
    const up = await rawUpstream((socket) =>
      socket.write(
        'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: gzip, chunked\r\n\r\n' +
          '3\r\n\x1f\x8b\x08\r\n0\r\n\r\n',
      ),
    );
    const port = await site(`proxy / ${up.addr}`);
    const r = await get(port, '/');
    assert.equal(r.status, 502);
    assert.ok(!r.body.includes('\u001f'), 'no gzip bytes reach the client');
  });

  test('bytes after the end of a response: that connection is not reused', async () => {
    const up = await rawUpstream((socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n'),
    );
    const port = await site(`proxy / ${up.addr}`);
    assert.equal((await get(port, '/')).body, 'ok');
    assert.equal((await get(port, '/')).body, 'ok');
    assert.equal(up.accepted, 2);
  });

  test('a malformed response is a 502 and its connection is dropped', async () => {
    const up = await rawUpstream((socket, _head, n) =>
      socket.write(n === 1 ? 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok' : ''),
    );
    const port = await site(`proxy / ${up.addr}`);
    assert.equal((await get(port, '/')).status, 502);
    await waitFor(() => up.closed === 1, 5000, 'the connection to be closed');
  });

  test('chunked with trailers, and a close-delimited HTTP/1.0 body, reach the client whole', async () => {
    const up = await rawUpstream((socket, head) => {
      if (head.startsWith('GET /trailers'))
        socket.write(
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n' +
            '5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: abc\r\n\r\n',
        );
      else socket.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end');
    });
    const port = await site(`proxy / ${up.addr}`);
    const got = await new Promise<{ body: string; trailers: NodeJS.Dict<string> }>((resolve, reject) => {
      http
        .get(
          { host: '127.0.0.1', port, path: '/trailers', agent: false, headers: { TE: 'trailers' } },
          (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ body, trailers: res.trailers }));
            res.on('error', reject);
          },
        )
        .on('error', reject);
    });
    assert.equal(got.body, 'hello world');
    assert.equal(got.trailers['x-sum'], 'abc');
    const old = await get(port, '/old');
    assert.equal(old.status, 200);
    assert.equal(old.body, 'until the end');
  });

  test('a streamed upload of unknown length goes out chunked', async () => {
    // The helper splits what it receives at blank lines: the last chunk of the body ends such a "head".
    const up = await rawUpstream((socket, head) => {
      if (/(^|\r\n)0$/.test(head)) ok(socket);
    });
    const port = await site(`proxy / ${up.addr}`);
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, method: 'POST', path: '/up', agent: false },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('first ');
      setImmediate(() => req.end('second'));
    });
    assert.equal(status, 200);
    assert.match(up.heads[0], /^Transfer-Encoding: chunked$/im);
    await waitFor(() => up.received.endsWith('0\r\n\r\n'), 5000, 'the last chunk');
    const body = up.received.slice(up.received.indexOf('\r\n\r\n') + 4);
    const decoded = body.replace(/([0-9a-f]+)\r\n([^]*?)\r\n/g, (_m, _n: string, data: string) => data);
    assert.equal(decoded, 'first second');
  });

  test('response headers named after inherited properties pass as they are', async () => {
    const up = await rawUpstream((socket) =>
      socket.write(
        'HTTP/1.1 200 OK\r\nConstructor: c\r\n__proto__: p\r\nToString: t\r\nContent-Length: 2\r\n\r\nok',
      ),
    );
    const port = await site(`proxy / ${up.addr}`);
    const answer = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 200 /);
    assert.match(answer, /^constructor: c\r$/im);
    assert.match(answer, /^__proto__: p\r$/im);
    assert.match(answer, /^tostring: t\r$/im);
    assert.doesNotMatch(answer, /native code|object Object/);
  });

  test('CR or LF from a placeholder never reaches the upstream as a line of its own', async () => {
    const up = await rawUpstream();
    const port = await site(`proxy / ${up.addr} {\n header_upstream X-Q {?q}\n}`);
    const r = await get(port, '/?q=a%0d%0aX-Evil:%201%00');
    assert.equal(r.status, 200);
    // The header rule turned CR and LF into spaces and dropped the NUL (core/headerrules.ts).
    assert.match(up.heads[0], /^x-q: a {2}X-Evil: 1$/m);
    assert.doesNotMatch(up.received, /^X-Evil/im);
    assert.equal((await get(port, '/?q=fine')).status, 200);
    assert.match(up.heads[1], /^x-q: fine$/m);
  });

  test('a head with CR, LF or NUL in a value is refused before anything is written', () => {
    for (const value of ['a\r\nX-Evil: 1', 'a\nb', 'a\0b'])
      assert.throws(() => serializeHead('GET', '/', { 'x-q': value }, false, true), InvalidRequestHeadError);
    assert.match(serializeHead('GET', '/', { 'x-q': 'fine' }, false, true).text, /^x-q: fine\r$/m);
  });
});
