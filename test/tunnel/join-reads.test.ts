// A TCP tunnel joins a TCP connection with a tunnel stream (joinHalfOpen): the connection's reads are fresh
// buffers and count towards the next minor collection (src/core/read-gc.ts); the stream's bytes do not
// (they are the link's, counted where the link receives them).
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import { test } from 'node:test';
import { READ_GC_BYTES } from '../../src/core/read-gc.js';
import { joinHalfOpen } from '../../src/tunnel/transport.js';
import { withCountingGc } from '../helpers/gc.js';

const SIZE = 3 * READ_GC_BYTES;

test("a joined TCP connection's reads bring a minor collection every READ_GC_BYTES", async () => {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => accepted.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  const from = net.connect(port, '127.0.0.1');
  const to = net.connect(port, '127.0.0.1');
  try {
    while (accepted.length < 2) await new Promise((r) => setTimeout(r, 10));
    await withCountingGc(async (calls) => {
      joinHalfOpen(accepted[0], accepted[1]);
      let got = 0;
      const all = new Promise<void>((resolve) =>
        to.on('data', (c: Buffer) => {
          got += c.length;
          if (got === SIZE) resolve();
        }),
      );
      from.write(Buffer.alloc(SIZE, 'x'));
      await all;
      assert.ok(calls.length >= 2, `${calls.length} collections`);
    });
  } finally {
    from.destroy();
    to.destroy();
    server.close();
  }
});

test("a stream's bytes (not a TCP connection's) are not counted", () =>
  withCountingGc(async (calls) => {
    let got = 0;
    const all = new Promise<void>((resolve) => {
      const sink = new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, done) {
          got += chunk.length;
          if (got === SIZE) resolve();
          done();
        },
      });
      const source = new Duplex({ read() {}, write: (_chunk, _encoding, done) => done() });
      joinHalfOpen(source, sink);
      source.push(Buffer.alloc(SIZE, 'x'));
    });
    await all;
    assert.equal(calls.length, 0);
  }));
