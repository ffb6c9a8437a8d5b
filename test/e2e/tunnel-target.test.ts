// The tunnel client's HTTP/1.1 to its target (src/tunnel/target-h1.ts), end to end: real nodecaddy, real
// `nodecaddy tunnel`, and a raw TCP target that writes exactly the bytes a test needs.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { startClient, startPublic, text, viaTunnel } from '../helpers/tunnel.js';

/** A raw target: `answer` is called for each request head on a connection (its index on that connection). */
interface RawTarget {
  port: number;
  connections: number;
  heads: string[];
  close(): Promise<void>;
}

function startRawTarget(answer: (socket: net.Socket, head: string, nth: number) => void): Promise<RawTarget> {
  const t = { port: 0, connections: 0, heads: [] as string[] } as RawTarget;
  const server = net.createServer((socket) => {
    t.connections++;
    let nth = 0;
    let buffered = '';
    socket.on('error', () => undefined);
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        const head = buffered.slice(0, end);
        // Only bodies announced by Content-Length are sent by these tests.
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.slice(end + 4 + length);
        t.heads.push(head);
        answer(socket, head, nth++);
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      t.port = (server.address() as net.AddressInfo).port;
      t.close = () => new Promise((r) => server.close(() => r()));
      resolve(t);
    });
  });
}

describe('tunnel client to its target', () => {
  let tmp: { dir: string; cleanup: () => void };
  let server: Nodecaddy;
  let port: number;
  const clients: Nodecaddy[] = [];
  const targets: RawTarget[] = [];

  before(async () => {
    tmp = tempDir();
    port = await freePort();
    server = await startPublic(tmp.dir, port);
  });
  after(async () => {
    for (const c of clients) await c.stop('SIGINT');
    for (const t of targets) await t.close();
    await server?.stop();
    tmp?.cleanup();
  });

  async function tunnelTo(name: string, answer: Parameters<typeof startRawTarget>[0]): Promise<RawTarget> {
    const target = await startRawTarget(answer);
    targets.push(target);
    clients.push(await startClient(port, name, target.port));
    return target;
  }

  test('a kept connection the target drops when reused is retried on a new one, unless the request may not run twice', async () => {
    // The target answers the first request of a connection and closes it when a second comes (as a server
    // whose keep-alive timeout ran out just then).
    const target = await tunnelTo('retry', (socket, _head, nth) => {
      if (nth === 0) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else socket.destroy();
    });
    for (let i = 0; i < 3; i++) {
      const res = await viaTunnel(port, 'retry', `/n${i}`);
      assert.equal(res.statusCode, 200);
      assert.equal(await text(res), 'ok');
    }
    // Each request after the first tried the kept connection, then a new one.
    assert.equal(target.connections, 3);
    // A POST must not run twice (as the proxy decides): it gets the 502.
    const post = await viaTunnel(port, 'retry', '/once', { method: 'POST' });
    assert.equal(post.statusCode, 502);
    assert.match(await text(post), /could not reach .*: socket hang up/);
    assert.equal(target.heads.filter((h) => h.startsWith('POST /once ')).length, 1);
    assert.equal(target.connections, 3);
  });

  test('answers without a body (HEAD, 204, 304) leave the connection fit for the next request', async () => {
    const target = await tunnelTo('nobody', (socket, head) => {
      const path = head.split(' ')[1];
      if (head.startsWith('HEAD ')) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n');
      else if (path === '/204') socket.write('HTTP/1.1 204 No Content\r\n\r\n');
      else if (path === '/304') socket.write('HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
    });
    const seen: string[] = [];
    for (const [method, path] of [
      ['HEAD', '/'],
      ['GET', '/204'],
      ['GET', '/304'],
      ['GET', '/'],
      ['HEAD', '/'],
      ['GET', '/'],
    ]) {
      const res = await viaTunnel(port, 'nobody', path, { method });
      seen.push(`${method} ${path} ${res.statusCode} ${await text(res)}`);
    }
    assert.deepEqual(seen, [
      'HEAD / 200 ',
      'GET /204 204 ',
      'GET /304 304 ',
      'GET / 200 hello',
      'HEAD / 200 ',
      'GET / 200 hello',
    ]);
    assert.equal(target.connections, 1);
  });

  test('a malformed answer is a 502 that says so', async () => {
    await tunnelTo('garbled', (socket) => socket.end('HTTP/1.1 abc\r\n\r\n'));
    const res = await viaTunnel(port, 'garbled', '/');
    assert.equal(res.statusCode, 502);
    assert.match(await text(res), /could not reach http:\/\/127\.0\.0\.1:\d+: malformed answer/);
  });

  test('a whole body is announced by its length; an empty POST as 0, a GET with none', async () => {
    const target = await tunnelTo('lengths', (socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    );
    await text(await viaTunnel(port, 'lengths', '/get'));
    // Written by hand: Node's client would add Content-Length: 0 itself.
    assert.match(
      await rawRequest(port, 'POST /post HTTP/1.1\r\nHost: lengths.tunnel.localhost\r\n'),
      /^HTTP\/1.1 200/,
    );
    await text(await viaTunnel(port, 'lengths', '/body', { method: 'PUT', body: 'abc' }));
    const lengths = target.heads.map((h) => /\r\ncontent-length: *(\d+)/i.exec(h)?.[1] ?? 'none');
    assert.deepEqual(lengths, ['none', '0', '3']);
    assert.ok(target.heads.every((h) => !/transfer-encoding/i.test(h)));
  });
});

/** Sends a request head as written (closing the connection after it) and gives back the whole answer. */
function rawRequest(port: number, head: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${head}Connection: close\r\n\r\n`));
    let answer = '';
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
  });
}
