// limits (431, 413) and timeouts (header, idle, write) through the real nodecaddy process.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { rawRequest, request } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let limitsPort: number;
let timeoutsPort: number;
const BIG = 16 * 1024 * 1024;

before(async () => {
  ({ dir, cleanup } = tempDir());
  const www = path.join(dir, 'www');
  mkdirSync(www, { recursive: true });
  writeFileSync(path.join(www, 'index.html'), 'home');
  writeFileSync(path.join(www, 'page.html'), 'home');
  writeFileSync(path.join(www, 'big.bin'), Buffer.alloc(BIG, 7));
  limitsPort = await freePort();
  timeoutsPort = await freePort();
  const conf = path.join(dir, 'Caddyfile');
  writeFileSync(
    conf,
    `a.test:${limitsPort} {
	root ${www}
	limits {
		header 2KB
		body /upload 10
		body 1KB
	}
}
b.test:${limitsPort} {
	root ${www}
}
127.0.0.1:${timeoutsPort} {
	root ${www}
	timeouts {
		header 1s
		idle 1s
		write 1s
	}
}
`,
  );
  nc = await startNodecaddy(['-conf', conf], { listeners: 2 });
});

after(async () => {
  await nc?.stop();
  cleanup();
});

const padded = (host: string, bytes: number) => ({ Host: host, 'X-Pad': 'p'.repeat(bytes) });

test('limits header: a site with a smaller limit than its listener refuses with 431; the other site does not', async () => {
  const a = await request(limitsPort, '/page.html', { headers: padded('a.test', 3000) });
  assert.equal(a.status, 431);
  assert.equal(a.body, '431 Request Header Fields Too Large\n');
  assert.equal((await request(limitsPort, '/page.html', { headers: padded('a.test', 500) })).status, 200);
  const b = await request(limitsPort, '/page.html', { headers: padded('b.test', 3000) });
  assert.equal(b.status, 200);
  assert.equal(b.body, 'home');
  // Over the listener's limit (the largest: Node's default 16 KiB) Node's parser refuses it for every site.
  const huge = await rawRequest(
    limitsPort,
    `GET / HTTP/1.1\r\nHost: b.test\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n`,
  );
  assert.match(huge, /^HTTP\/1\.1 431 /);
});

test('limits body: the longest matching path sets the size; a declared length over it is 413 and closes', async () => {
  const post = (p: string, size: number) =>
    request(limitsPort, p, { method: 'POST', headers: { Host: 'a.test' }, body: 'x'.repeat(size) });
  const over = await post('/upload/file', 11);
  assert.equal(over.status, 413);
  assert.equal(over.body, '413 Payload Too Large\n');
  assert.equal(over.headers.connection, 'close');
  assert.equal((await post('/upload/file', 10)).status, 405, 'within the limit the file server answers');
  assert.equal((await post('/other', 1025)).status, 413);
  assert.equal((await post('/other', 1024)).status, 405);
  const unlimited = await request(limitsPort, '/', {
    method: 'POST',
    headers: { Host: 'b.test' },
    body: 'x'.repeat(256 * 1024),
  });
  assert.equal(unlimited.status, 405, 'a site without limits is not affected, and does not hang');
});

/** Connects, runs `drive`, and resolves with what the server sent once it closes the connection. */
function untilClosed(port: number, drive: (s: net.Socket) => void, deadlineMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `server kept the connection open for ${deadlineMs}ms; got ${JSON.stringify(out.slice(0, 200))}`,
        ),
      );
    }, deadlineMs);
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (out += d));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('connect', () => drive(socket));
  });
}

test('timeouts header: a client that trickles its headers is cut off with 408', async () => {
  let ticker: NodeJS.Timeout | undefined;
  const out = await untilClosed(timeoutsPort, (s) => {
    s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    ticker = setInterval(() => s.writable && s.write('X-Slow: 1\r\n'), 200);
  });
  clearInterval(ticker);
  assert.match(out, /^HTTP\/1\.1 408 /);
});

test('timeouts idle: a keep-alive connection with no next request is closed', async () => {
  const out = await untilClosed(timeoutsPort, (s) =>
    s.write('GET /page.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'),
  );
  assert.match(out, /^HTTP\/1\.1 200 /);
  assert.match(out, /\r\n\r\nhome$/);
});

test('timeouts write: a response the client reads too slowly is cut off', async () => {
  let got = 0;
  let reader: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect(timeoutsPort, '127.0.0.1', () => {
      socket.write('GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      socket.pause();
      // A slow client: 64 KiB every 100 ms would take 25 s for the whole file.
      reader = setInterval(() => {
        const chunk = socket.read(Math.min(64 * 1024, socket.readableLength || 1)) as Buffer | null;
        if (chunk) got += chunk.length;
      }, 100);
    });
    const timer = setTimeout(() => reject(new Error('the slow download was never cut off')), 15_000);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  clearInterval(reader);
  assert.ok(got < BIG, `cut before the end (${got} of ${BIG} bytes)`);
});
