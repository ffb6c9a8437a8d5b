// A request body nobody reads: after the response, only a little more of it is read, then the connection
// closes; small bodies keep their keep-alive connection.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startInProcess, type InProcess } from '../helpers/inprocess.js';
import { tempDir } from '../helpers/process.js';

/** What the client sends at most before it gives up on the server closing the connection. */
const CAP = 256 * 1024 * 1024;

interface Upload {
  /** The response head as received. */
  head: string;
  /** Body bytes written before the connection closed (or the cap). */
  sent: number;
  /** The server closed the connection before the client had sent CAP bytes. */
  closedByServer: boolean;
}

/** Sends `head` and then an endless body (raw bytes, or chunks) until the server closes or CAP is reached. */
function endlessUpload(port: number, head: string, chunked: boolean): Promise<Upload> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const data = Buffer.alloc(64 * 1024, 'a');
    const chunk = Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]);
    let received = '';
    let sent = 0;
    let closed = false;
    const pump = () => {
      while (!closed && sent < CAP) {
        sent += data.length;
        if (!socket.write(chunked ? chunk : data)) return;
      }
      if (sent >= CAP && !closed) {
        closed = true;
        socket.destroy();
        resolve({ head: received.split('\r\n\r\n')[0], sent, closedByServer: false });
      }
    };
    socket.on('connect', () => {
      socket.write(head);
      pump();
    });
    socket.on('drain', pump);
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      if (closed) return;
      closed = true;
      resolve({ head: received.split('\r\n\r\n')[0], sent, closedByServer: true });
    });
  });
}

let server: InProcess;
let cleanup: () => void;

before(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir());
  writeFileSync(path.join(dir, 'a.txt'), 'file a\n');
  server = await startInProcess(`127.0.0.1:0 {\n root ${dir}\n status 200 /ok\n}\n`, dir);
});

after(async () => {
  await server?.stop();
  cleanup?.();
});

const post = (target: string, framing: string, host = '127.0.0.1') =>
  `POST ${target} HTTP/1.1\r\nHost: ${host}\r\n${framing}\r\n\r\n`;

describe('an endless request body nobody reads', () => {
  test('405 from the file server (huge Content-Length): Connection: close, and the connection closes', async () => {
    const r = await endlessUpload(server.port, post('/a.txt', 'Content-Length: 100000000000'), false);
    assert.match(r.head, /^HTTP\/1\.1 405 /);
    assert.match(r.head, /^Connection: close$/im);
    assert.ok(r.closedByServer, `the server read on: ${r.sent} bytes sent`);
  });

  test('405 from the file server (chunked): the connection closes', async () => {
    const r = await endlessUpload(server.port, post('/a.txt', 'Transfer-Encoding: chunked'), true);
    assert.match(r.head, /^HTTP\/1\.1 405 /);
    assert.ok(r.closedByServer, `the server read on: ${r.sent} bytes sent`);
  });

  test('a success that ignores the body: a little more is read, then the connection closes', async () => {
    const r = await endlessUpload(server.port, post('/ok', 'Content-Length: 100000000000'), false);
    assert.match(r.head, /^HTTP\/1\.1 200 /);
    assert.ok(r.closedByServer, `the server read on: ${r.sent} bytes sent`);
  });

  test('a host that is not served: 404 with Connection: close, and the connection closes', async () => {
    const r = await endlessUpload(
      server.port,
      post('/a.txt', 'Content-Length: 100000000000', 'elsewhere.example'),
      false,
    );
    assert.match(r.head, /^HTTP\/1\.1 404 /);
    assert.match(r.head, /^Connection: close$/im);
    assert.ok(r.closedByServer, `the server read on: ${r.sent} bytes sent`);
  });
});

describe('small bodies keep the connection', () => {
  test('405 and 200 for small bodies, then more requests on the same keep-alive connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const send = (method: string, target: string, body?: string) =>
        new Promise<{ status: number; reused: boolean; close: boolean }>((resolve, reject) => {
          const req = http.request(
            { host: '127.0.0.1', port: server.port, method, path: target, agent },
            (res) => {
              res.resume();
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  reused: req.reusedSocket,
                  close: /close/i.test(res.headers.connection ?? ''),
                }),
              );
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      const first = await send('POST', '/a.txt', 'x'.repeat(1000));
      assert.equal(first.status, 405);
      assert.equal(first.close, false, 'the whole small body had arrived: no reason to close');
      const results = [
        await send('GET', '/a.txt'),
        await send('POST', '/ok', 'y'.repeat(10_000)),
        await send('GET', '/a.txt'),
      ];
      assert.deepEqual(
        results.map((r) => [r.status, r.reused]),
        [
          [200, true],
          [200, true],
          [200, true],
        ],
      );
    } finally {
      agent.destroy();
    }
  });

  test('a body still arriving after the response: read to its end, and the connection serves on', async () => {
    const socket = net.connect(server.port, '127.0.0.1');
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    const until = (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (pattern.test(received)) {
            socket.off('data', check);
            resolve();
          }
        };
        socket.on('data', check);
        socket.once('close', () => reject(new Error(`closed; received ${received}`)));
        check();
      });
    try {
      socket.write(post('/ok', 'Content-Length: 10') + 'hello');
      await until(/^HTTP\/1\.1 200 /);
      assert.doesNotMatch(received, /Connection: close/i);
      socket.write(`world${'GET /a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'}`);
      await until(/file a\n$/);
    } finally {
      socket.destroy();
    }
  });
});
