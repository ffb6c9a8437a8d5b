// The connection pool against a small FastCGI peer on a real socket (php-fpm cannot be made to show these
// states on demand): a connection given back while paused by backpressure must read its next answer.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  FcgiPool,
  type ExchangeHandlers,
  type FcgiConnection,
} from '../../../src/middleware/fastcgi/connection.js';
import {
  encodeRecord,
  encodeStream,
  RecordParser,
  RecordType,
} from '../../../src/middleware/fastcgi/protocol.js';

/** END_REQUEST content: appStatus 0, FCGI_REQUEST_COMPLETE. */
const END_OK = Buffer.alloc(8);

/** Answers every request (on the end of its STDIN) with `body` on STDOUT, keeping the connection. */
function startPeer(body: string): Promise<{ server: net.Server; port: number; accepted: () => number }> {
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    const parser = new RecordParser();
    socket.on('data', (chunk: Buffer) =>
      parser.push(chunk, (rec) => {
        if ((rec.type as RecordType) !== RecordType.Stdin || rec.content.length > 0) return;
        socket.write(
          Buffer.concat([
            encodeStream(RecordType.Stdout, rec.requestId, Buffer.from(body)),
            encodeRecord(RecordType.EndRequest, rec.requestId, END_OK),
          ]),
        );
      }),
    );
    socket.on('error', () => {});
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as net.AddressInfo).port, accepted: () => accepted }),
    ),
  );
}

/** One request on `conn`; resolves with its STDOUT, rejects when no END_REQUEST comes within 2 s. */
function roundTrip(conn: FcgiConnection) {
  return new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('no answer within 2 s')), 2000);
    const handlers: ExchangeHandlers = {
      onStdout: (d) => (out += d.toString()),
      onStderr: () => {},
      onEnd: () => {
        clearTimeout(timer);
        resolve(out);
      },
      onError: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    };
    conn.begin(Buffer.alloc(0), handlers);
    conn.endStdin();
  });
}

describe('FastCGI connection pool', () => {
  let peer: Awaited<ReturnType<typeof startPeer>>;
  before(async () => {
    peer = await startPeer('hello');
  });
  after(() => peer.server.close());

  test('a connection given back while paused (slow client at the end) reads its next answer', async () => {
    const pool = new FcgiPool(
      { network: 'tcp', host: '127.0.0.1', port: peer.port },
      { idleTimeoutMs: 5000, maxIdle: 4 },
    );
    const used: FcgiConnection[] = [];
    try {
      const first = await pool.acquire(1000);
      used.push(first);
      assert.equal(await roundTrip(first), 'hello');
      first.pause(); // the exchange paused it for a slow client and the response ended before 'drain'
      pool.release(first, true);
      assert.equal(pool.idleCount, 1);
      const again = await pool.acquire(1000);
      assert.equal(again, first, 'the idle connection is reused');
      assert.equal(await roundTrip(again), 'hello');
      assert.equal(pool.dialed, 1);
      pool.release(again, true);
    } finally {
      pool.close();
      for (const conn of used) conn.destroy();
    }
  });
});
