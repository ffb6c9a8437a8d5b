// What the listener refuses or orders before a request reaches a site (issue 16): CONNECT, Host values RFC 9112
// forbids, and pipelined unsafe requests, which must not reach an upstream side by side.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { rawRequest } from '../helpers/http.js';
import { startSite, type Site } from '../middleware/proxy/helpers.js';

let site: Site;
let backend: http.Server;
/** Requests the backend is answering right now, and the most at once. */
let running = 0;
let most = 0;
const order: string[] = [];

before(async () => {
  backend = http.createServer((req, res) => {
    running++;
    most = Math.max(most, running);
    order.push(`start ${req.method} ${req.url}`);
    req.resume();
    // Each answer takes a moment, so that two requests run side by side if nothing orders them.
    setTimeout(() => {
      running--;
      order.push(`end ${req.method} ${req.url}`);
      res.end(`${req.method} ${req.url}`);
    }, 50);
  });
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  site = await startSite(`:0 {\nproxy / 127.0.0.1:${(backend.address() as AddressInfo).port}\n}\n`);
});

after(async () => {
  await site.stop();
  backend.close();
});

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);

describe('request heads', () => {
  test('CONNECT gets a 405 with Allow and the connection closed, not a dropped connection', async () => {
    const answer = await rawRequest(
      site.port,
      'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n',
    );
    assert.equal(statusOf(answer), 405);
    assert.match(answer, /^Allow: GET, HEAD, POST/m);
    assert.match(answer, /^Connection: close/m);
  });

  test('Host values RFC 9112 forbids, and two Host fields, are a 400', async () => {
    for (const host of ['a/b', 'a b', 'user@host', 'x\\y']) {
      const answer = await rawRequest(
        site.port,
        `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(statusOf(answer), 400, host);
    }
    const two = await rawRequest(
      site.port,
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(two), 400);
    for (const host of [
      'example.com',
      'example.com:8080',
      '[::1]:80',
      '127.0.0.1',
      'xn--bcher-kva.example',
    ]) {
      const answer = await rawRequest(
        site.port,
        `GET /ok HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(statusOf(answer), 200, host);
    }
  });

  test('pipelined POSTs reach the upstream one after the other; pipelined GETs may overlap', async () => {
    order.length = 0;
    most = 0;
    const posts =
      'POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na' +
      'POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nb' +
      'GET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n';
    const answer = await rawRequest(site.port, posts);
    assert.deepEqual(
      answer.match(/(?:POST|GET) \/(?:one|two|three)/g),
      ['POST /one', 'POST /two', 'GET /three'],
      'answered in order',
    );
    assert.equal(most, 1, order.join('\n'));
    assert.deepEqual(order, [
      'start POST /one',
      'end POST /one',
      'start POST /two',
      'end POST /two',
      'start GET /three',
      'end GET /three',
    ]);
    most = 0;
    const gets = ['/a', '/b', '/c'].map(
      (p, i) => `GET ${p} HTTP/1.1\r\nHost: x\r\n${i === 2 ? 'Connection: close\r\n' : ''}\r\n`,
    );
    await rawRequest(site.port, gets.join(''));
    assert.ok(most > 1, 'safe requests still run side by side');
  });
});
