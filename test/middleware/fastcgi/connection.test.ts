// One FastCGI connection on a real socket: what a request puts on the wire, and in how many writes (each
// write to a php-fpm worker waiting for more of the request wakes it once more).
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { FcgiConnection } from '../../../src/middleware/fastcgi/connection.js';
import { encodeRequest, RecordParser, RecordType } from '../../../src/middleware/fastcgi/protocol.js';
import { waitFor } from '../../helpers/http.js';

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
