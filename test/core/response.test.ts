// The response-wrapping mechanism (core/response.ts), on real HTTP/1.1 and HTTP/2 servers.
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import {
  addResponseFilter,
  bodyBytesSent,
  HOLD,
  HookedHttp2Response,
  HookedResponse,
  releaseHeld,
  type BodyOut,
  type HttpResponse,
  type ResponseFilter,
} from '../../src/core/response.js';
import { request } from '../helpers/http.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function withServer(handler: Handler, fn: (port: number) => Promise<void>): Promise<void> {
  const server = http.createServer({ ServerResponse: HookedResponse }, handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn((server.address() as AddressInfo).port);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

/** A body filter that upper-cases what passes and tags the head with its name. */
function upper(name: string, seen: string[]): ResponseFilter {
  return {
    head(res) {
      seen.push(name);
      res.setHeader('x-order', [...[res.getHeader('x-order') ?? []].flat().map(String), name]);
    },
    write: (chunk, done, out) => out.write(Buffer.from(chunk.toString().toUpperCase()), done),
    end: (chunk, out) => out.end(chunk && Buffer.from(chunk.toString().toUpperCase())),
  };
}

/** A body filter that doubles every chunk (so byte counting after filters can be seen). */
const doubler: ResponseFilter = {
  write: (chunk, done, out) => out.write(Buffer.concat([chunk, chunk]), done),
  end: (chunk, out) => out.end(chunk && Buffer.concat([chunk, chunk])),
};

describe('response filters', () => {
  test('head hooks see writeHead headers and implicit heads; inner (later) filters run first', async () => {
    await withServer(
      (req, res) => {
        const seen: string[] = [];
        addResponseFilter(res, {
          head: (r) => void r.setHeader('x-outer-saw', String(r.getHeader('x-remove-me'))),
        });
        addResponseFilter(res, {
          head(r) {
            seen.push('inner');
            r.removeHeader('x-remove-me');
          },
        });
        if (req.url === '/explicit') res.writeHead(201, { 'x-remove-me': '1', 'x-keep': 'k' }).end('a');
        else {
          res.setHeader('x-remove-me', '1');
          res.end('b');
        }
      },
      async (port) => {
        const a = await request(port, '/explicit');
        assert.equal(a.status, 201);
        assert.equal(a.headers['x-keep'], 'k');
        assert.equal(a.headers['x-remove-me'], undefined);
        assert.equal(a.headers['x-outer-saw'], 'undefined', 'the outer hook runs after the inner one');
        const b = await request(port, '/implicit');
        assert.equal(b.status, 200);
        assert.equal(b.headers['x-remove-me'], undefined);
        assert.equal(b.body, 'b');
      },
    );
  });

  test('bodies pass the innermost filter first; strings become Buffers; bytes are counted on the wire', async () => {
    const counted: number[] = [];
    await withServer(
      (_req, res) => {
        const seen: string[] = [];
        addResponseFilter(res, doubler); // outermost: sees the upper-cased bytes, the wire sees twice as many
        addResponseFilter(res, upper('inner', seen));
        res.once('finish', () => counted.push(bodyBytesSent(res)));
        res.write('ab');
        res.write(Buffer.from('c'));
        res.end('d', 'utf8');
      },
      async (port) => {
        const r = await request(port, '/');
        assert.equal(r.body, 'ABABCCDD');
        assert.equal(r.headers['x-order'], 'inner');
        assert.deepEqual(counted, [8]);
        const head = await request(port, '/', { method: 'HEAD' });
        assert.equal(head.body, '');
        assert.deepEqual(counted, [8, 0], 'a HEAD response sends no body bytes');
      },
    );
  });

  test('bytes are counted without any filter too', async () => {
    let counted = -1;
    await withServer(
      (_req, res) => {
        res.once('finish', () => (counted = bodyBytesSent(res)));
        res.write('héllo'); // 6 bytes in UTF-8
        res.end(Buffer.from('!!'));
      },
      async (port) => {
        assert.equal((await request(port, '/')).body, 'héllo!!');
        assert.equal(counted, 8);
      },
    );
  });

  test('a string ended without any filter is counted in its encoding and leaves with its head in one write', async () => {
    const counted: number[] = [];
    const writes: number[] = [];
    await withServer(
      (req, res) => {
        // Counts the non-empty writes to the socket (Node's end adds an empty one).
        const socket = res.socket!;
        const write = socket.write.bind(socket) as (chunk: string | Buffer, ...a: unknown[]) => boolean;
        let n = 0;
        socket.write = (chunk: string | Buffer, ...a: unknown[]) => {
          if (chunk.length > 0) n++;
          return write(chunk, ...a);
        };
        res.once('finish', () => {
          counted.push(bodyBytesSent(res));
          writes.push(n);
        });
        res.setHeader('Content-Type', 'application/octet-stream');
        if (req.url === '/latin1')
          res.end('\u00e9\u00ff\u0000a', 'latin1'); // 4 bytes
        else res.end('h\u00e9llo', () => undefined); // 6 bytes in UTF-8, with a callback
      },
      async (port) => {
        const bytes = await new Promise<Buffer>((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port, path: '/latin1' }, (r) => {
              const chunks: Buffer[] = [];
              r.on('data', (c: Buffer) => chunks.push(c));
              r.on('end', () => resolve(Buffer.concat(chunks)));
            })
            .on('error', reject);
        });
        assert.deepEqual([...bytes], [0xe9, 0xff, 0x00, 0x61]);
        assert.equal((await request(port, '/utf8')).body, 'h\u00e9llo');
        assert.deepEqual(counted, [4, 6]);
        assert.deepEqual(writes, [1, 1]);
      },
    );
  });

  test('write callbacks pass through; the end callback comes once the filters have finished', async () => {
    const events: string[] = [];
    await withServer(
      (_req, res) => {
        // A filter that ends late (as a compressor does).
        addResponseFilter(res, {
          end: (chunk, out) => setTimeout(() => (events.push('filter-end'), out.end(chunk)), 20),
        });
        res.write('x', () => events.push('write-done'));
        res.end('y', () => events.push('end-done'));
      },
      async (port) => {
        assert.equal((await request(port, '/')).body, 'xy');
        assert.deepEqual(events, ['write-done', 'filter-end', 'end-done']);
      },
    );
  });

  test('HOLD keeps head and body back from the filters below; after releaseHeld the next attempt goes out', async () => {
    const belowSaw: string[] = [];
    await withServer(
      (_req, res) => {
        addResponseFilter(res, { head: (r) => void belowSaw.push(String(r.statusCode)) });
        let holding = false;
        const gate: ResponseFilter = {
          head(r) {
            if (!r.getHeader('x-hold')) return undefined;
            holding = true;
            return HOLD;
          },
          write: (chunk, done, out: BodyOut) => (holding ? (done?.(), true) : out.write(chunk, done)),
          end: (chunk, out) => (holding ? undefined : out.end(chunk)),
        };
        addResponseFilter(res, gate);
        res.writeHead(302, { 'x-hold': '1' });
        res.write('swallowed');
        res.end('!');
        assert.equal(res.headersSent, false);
        holding = false;
        res.removeHeader('x-hold');
        releaseHeld(res, gate);
        res.statusCode = 200;
        res.end('second attempt');
      },
      async (port) => {
        const r = await request(port, '/');
        assert.equal(r.status, 200);
        assert.equal(r.body, 'second attempt');
        assert.deepEqual(belowSaw, ['200']);
      },
    );
  });

  test('a response not made by a nodecaddy server cannot take filters', async () => {
    const server = http.createServer((_req, res) => {
      assert.throws(() => addResponseFilter(res, {}), /made by a nodecaddy server/);
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      assert.equal((await request((server.address() as AddressInfo).port, '/')).body, 'ok');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  test('the same filters work on HTTP/2 responses', async () => {
    let counted = -1;
    const server = http2.createServer({ Http2ServerResponse: HookedHttp2Response }, (_req, res) => {
      const r = res as HttpResponse;
      addResponseFilter(r, doubler);
      addResponseFilter(r, upper('h2', []));
      addResponseFilter(r, { head: (x) => void x.removeHeader('x-secret') });
      res.once('finish', () => (counted = bodyBytesSent(r)));
      res.writeHead(200, { 'x-secret': 's', 'content-type': 'text/plain' });
      res.write('ab');
      res.end('c');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const stream = client.request({ ':path': '/' });
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
        stream.once('response', resolve),
      );
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (body += d));
      await new Promise((r) => stream.once('end', r));
      assert.equal(headers[':status'], 200);
      assert.equal(headers['x-secret'], undefined);
      assert.equal(headers['x-order'], 'h2');
      assert.equal(body, 'ABABCC');
      assert.equal(counted, 6);
    } finally {
      client.close();
      await new Promise((r) => server.close(r));
    }
  });
});
