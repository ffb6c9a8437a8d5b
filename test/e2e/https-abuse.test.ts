// Abuse of an HTTPS listener must not starve other clients: connections that never finish their TLS
// handshake are closed after the handshake timeout, a flood of HTTP/2 stream resets (CVE-2023-44487, "rapid
// reset") ends the flooding connection, and the HTTP/2 limits are what we advertise.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { signedBy, testCa, type KeyPair } from '../helpers/certs.js';
import { waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let ca: KeyPair;
let port: number;

before(async () => {
  ({ dir, cleanup } = tempDir());
  ca = testCa(dir);
  signedBy(ca, dir, 'site', ['x.test']);
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'still here\n');
  port = await freePort();
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `https://x.test:${port} {\n  tls site.pem site.key\n  root www\n  timeouts {\n    header 1s\n  }\n}\n`,
  );
  nc = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1', '-http-port', String(await freePort())], {
    cwd: dir,
  });
});

after(async () => {
  await nc?.stop();
  cleanup();
});

const get = (http2 = false) => tlsRequest(port, { servername: 'x.test', ca: ca.cert, http2 });

describe('an HTTPS listener under abuse', () => {
  test('300 connections that never send a ClientHello: others are served, the 300 are closed', async () => {
    const idle: net.Socket[] = [];
    let closed = 0;
    await Promise.all(
      Array.from(
        { length: 300 },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1', () => resolve());
            s.on('error', () => {});
            s.once('close', () => closed++);
            s.once('error', reject);
            idle.push(s);
          }),
      ),
    );
    try {
      assert.equal((await get()).body.toString(), 'still here\n');
      assert.equal((await get(true)).body.toString(), 'still here\n');
      // `timeouts header 1s` bounds the handshake too.
      await waitFor(() => closed === 300, 10_000, 'the handshake timeout to close them all');
    } finally {
      for (const s of idle) s.destroy();
    }
  });

  test('a flood of HTTP/2 stream resets ends that connection; others are served meanwhile', async () => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'x.test',
      ca: ca.cert,
      ALPNProtocols: ['h2'],
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    assert.equal(socket.alpnProtocol, 'h2');
    let closed = false;
    socket.on('error', () => {});
    socket.once('close', () => (closed = true));
    socket.resume();
    // Preface, SETTINGS, then HEADERS + RST_STREAM(CANCEL) pairs: each stream opened and at once cancelled.
    const block = hpackGet('x.test');
    const frames: Buffer[] = [
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      frame(0x4, 0, 0, Buffer.alloc(0)),
    ];
    for (let id = 1; id < 2 * 20_000; id += 2) {
      frames.push(frame(0x1, 0x5, id, block)); // END_STREAM | END_HEADERS
      frames.push(frame(0x3, 0, id, Buffer.from([0, 0, 0, 8]))); // CANCEL
    }
    socket.write(Buffer.concat(frames));
    const others = await Promise.all([get(true), get(), get(true)]);
    for (const r of others) assert.equal(r.status, 200);
    await waitFor(() => closed, 10_000, 'the flooding connection to be ended');
    assert.equal((await get(true)).status, 200, 'the server is still serving');
  });

  test('a client that asks to renegotiate TLS 1.2 is refused (each would cost us a full handshake)', async () => {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      servername: 'x.test',
      ca: ca.cert,
      maxVersion: 'TLSv1.2',
    });
    socket.on('error', () => {});
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', () => resolve());
        socket.once('error', reject);
      });
      const refused = await new Promise<boolean>((resolve) => {
        const ok = socket.renegotiate({ rejectUnauthorized: true }, (err) => resolve(err !== null));
        if (!ok) resolve(true);
        socket.once('close', () => resolve(true));
        socket.write('GET / HTTP/1.1\r\nHost: x.test\r\n\r\n');
      });
      assert.ok(refused, 'the renegotiation succeeded');
    } finally {
      socket.destroy();
    }
    assert.equal((await get()).status, 200, 'the server is still serving');
  });

  test('HTTP/2 settings: at most 128 concurrent streams, no server push', async () => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { servername: 'x.test', ca: ca.cert });
    try {
      await new Promise<void>((resolve, reject) => {
        session.once('remoteSettings', () => resolve());
        session.once('error', reject);
      });
      assert.equal(session.remoteSettings.maxConcurrentStreams, 128);
      assert.equal(session.remoteSettings.enablePush, false);
    } finally {
      session.close();
    }
  });
});

/** An HTTP/2 frame: 24-bit length, type, flags, 31-bit stream id, payload. */
function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK for GET https://host/: static-table indexes for :method, :scheme, :path; :authority as a literal. */
function hpackGet(host: string): Buffer {
  const value = Buffer.from(host);
  return Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x01, value.length]), value]);
}
