// The tunnel directive's WebSocket endpoint, through the real server: a raw TCP client does the tunnel
// handshake by hand, then breaks the WebSocket protocol (or the tunnel's) and is told how, with a close code
// and reason; a refused WebSocket handshake gives the name back at once.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { frameHeader } from '../../src/tunnel/frames.js';
import { H_SECRET, H_TOKEN, H_VERSION, PROTOCOL_VERSION, TUNNEL_PATH } from '../../src/tunnel/protocol.js';
import { waitFor } from '../helpers/http.js';
import { startInProcess, type InProcess } from '../helpers/inprocess.js';
import { freePort, tempDir } from '../helpers/process.js';
import { SECRET } from '../helpers/tunnel.js';
import { clientFrame, rawClient, type RawClient } from '../tunnel/ws-peers.js';

let tmp: { dir: string; cleanup: () => void };
let server: InProcess;
let port: number;

before(async () => {
  tmp = tempDir();
  port = await freePort();
  server = await startInProcess(
    `*.tunnel.localhost:${port} {\n\ttunnel {\n\t\tsecret ${SECRET}\n\t}\n}\n`,
    tmp.dir,
  );
});

after(async () => {
  await server?.stop();
  tmp?.cleanup();
});

/** A tunnel handshake for `name` by hand (a fresh client token unless given). */
function handshake(name: string, headers: Record<string, string | undefined> = {}): Promise<RawClient> {
  return rawClient(
    port,
    {
      Host: `${name}.tunnel.localhost:${port}`,
      [H_VERSION]: PROTOCOL_VERSION,
      [H_SECRET]: SECRET,
      [H_TOKEN]: randomBytes(16).toString('hex'),
      ...headers,
    },
    'GET',
    TUNNEL_PATH,
  );
}

/** The server's close frame (frames before it, such as the online message, pass), then the connection's end. */
async function closeOf(client: RawClient): Promise<{ code: number; reason: string }> {
  const deadline = setTimeout(() => client.close(), 5000);
  try {
    for (;;) {
      const f = await client.frame();
      if (f.opcode !== 0x8) continue;
      await client.ended;
      return { code: f.payload.readUInt16BE(0), reason: f.payload.subarray(2).toString() };
    }
  } finally {
    clearTimeout(deadline);
  }
}

test('a WebSocket version other than 13 is refused with 426, and the name is free again at once', async () => {
  const refused = await handshake('alice', { 'Sec-WebSocket-Version': '8' });
  assert.equal(refused.status, 426);
  assert.match(refused.head, /\r\nSec-WebSocket-Version: 13(\r\n|$)/);
  await refused.ended;
  await freed('alice');
});

/** Waits until a handshake for `name` is accepted (the last holder gave it back), and lets go of it. */
async function freed(name: string): Promise<void> {
  await waitFor(
    async () => {
      const next = await handshake(name);
      next.close();
      return next.status === 101;
    },
    5000,
    `${name} free again`,
  );
}

const broken: [string, Buffer, number, RegExp][] = [
  ['an unmasked frame', clientFrame(0x2, Buffer.from('x'), { mask: false }), 1002, /^unmasked frame/],
  ['a text frame', clientFrame(0x1, Buffer.from('{}')), 1003, /^text frame/],
  [
    'a frame over 64 MiB',
    clientFrame(0x2, Buffer.alloc(0), { length: 64 * 1024 * 1024 + 1 }),
    1009,
    /^frame longer/,
  ],
  [
    'a tunnel frame of an unknown type',
    clientFrame(0x2, Buffer.concat([frameHeader(9, 0, 1, 1), Buffer.from('?')])),
    1002,
    /^protocol error: unknown frame type 9$/,
  ],
];
for (const [what, bytes, code, reason] of broken) {
  test(`a tunnel client sending ${what} is closed with ${code} and told why; the name is freed`, async () => {
    const name = `bob${code}${what.length}`;
    const client = await handshake(name);
    assert.equal(client.status, 101);
    client.socket.write(bytes);
    const closed = await closeOf(client);
    assert.equal(closed.code, code);
    assert.match(closed.reason, reason);
    // The session is over: another client can have the name.
    await freed(name);
  });
}
