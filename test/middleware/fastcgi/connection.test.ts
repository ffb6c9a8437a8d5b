// One FastCGI connection on a real socket: what a request puts on the wire, and in how many writes (each
// write to a php-fpm worker waiting for more of the request wakes it once more).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { FcgiConnection } from '../../../src/middleware/fastcgi/connection.js';
import { encodeRequest, RecordParser, RecordType } from '../../../src/middleware/fastcgi/protocol.js';
import { waitFor } from '../../helpers/http.js';
import { FakeFpm } from './fake-fpm.js';

let server: net.Server;
let port = 0;
const received: Buffer[] = [];

before(async () => {
  server = net.createServer((s) => s.on('data', (d: Buffer) => received.push(d)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

function types(chunks: Buffer[]): [number, number][] {
  const out: [number, number][] = [];
  const parser = new RecordParser();
  for (const c of chunks) parser.push(c, (r) => out.push([r.type, r.content.length]));
  return out;
}

test('a request without a body is one write: BEGIN_REQUEST, PARAMS and the ends of PARAMS and STDIN', async () => {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const conn = new FcgiConnection(socket);
  const writes: Buffer[] = [];
  // Counts the writes the connection makes (each one is a send on the socket).
  const write = socket.write.bind(socket);
  socket.write = (chunk: Buffer) => {
    writes.push(Buffer.from(chunk));
    return write(chunk);
  };
  try {
    const head = encodeRequest(1, [['SCRIPT_FILENAME', '/srv/index.php']], true);
    conn.begin(head, { onStdout() {}, onReadEnd() {}, onStderr() {}, onEnd() {}, onError() {} });
    assert.equal(writes.length, 1);
    const expected: [number, number][] = [
      [RecordType.BeginRequest, 8],
      [RecordType.Params, 2 + 'SCRIPT_FILENAME/srv/index.php'.length],
      [RecordType.Params, 0],
      [RecordType.Stdin, 0],
    ];
    assert.deepEqual(types(writes), expected);
    const total = writes[0].length;
    await waitFor(() => received.reduce((n, b) => n + b.length, 0) >= total, 5000, 'the request to arrive');
    assert.deepEqual(types(received), expected);
  } finally {
    conn.destroy();
  }
});

test('the read deadline is armed again for each request, also after it fired on the idle connection', async () => {
  const fpm = await FakeFpm.start({ children: 1, hold: true });
  const socket = net.connect(fpm.port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  const conn = new FcgiConnection(socket);
  const head = encodeRequest(1, [['SCRIPT_FILENAME', '/srv/index.php']], true);
  /** Runs one request; `late` says whether its answer is held until its deadline has passed. */
  const run = async (late: boolean) => {
    let timedOut = 0;
    let ended = false;
    conn.begin(head, {
      onStdout() {},
      onReadEnd() {},
      onStderr() {},
      onEnd: () => (ended = true),
      onError() {},
      onReadTimeout: () => timedOut++,
    });
    conn.armRead(400);
    await waitFor(() => fpm.heldCount === 1, 5000, 'the request at the application');
    if (late) await waitFor(() => timedOut > 0, 5000, 'the read timeout');
    fpm.releaseOne();
    await waitFor(() => ended, 5000, 'the answer');
    return timedOut;
  };
  try {
    assert.equal(await run(false), 0);
    // The condition under test: the connection sits idle past its deadline, so the timer fires unused.
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(await run(true), 1, 'the next request has its deadline');
    assert.equal(await run(false), 0, 'an answer in time is not a timeout');
  } finally {
    conn.destroy();
    await fpm.close();
  }
});
