// ALPN with nothing in common: a client that offers only protocols the listener does not speak gets a clean
// no_application_protocol alert (RFC 7301), the server logs no uncaught exception and goes on serving.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { handshake, tlsRequest } from '../helpers/tls.js';

let cleanup: (() => void) | undefined;
let nc: Nodecaddy;
let root: Buffer;

before(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'still here\n');
  // Two listeners: the default ALPN (h2, http/1.1), and one that speaks HTTP/1.1 only.
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    `https://:${await freePort()} {\n  bind 127.0.0.1\n  tls internal\n  root www\n}\n` +
      `https://:${await freePort()} {\n  bind 127.0.0.1\n  tls internal {\n    alpn http/1.1\n  }\n  root www\n}\n`,
  );
  nc = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1', '-data', path.join(dir, 'data')], {
    cwd: dir,
    listeners: 2,
  });
  root = readFileSync(path.join(dir, 'data', 'pki', 'authorities', 'local', 'root.crt'));
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

const refused = (port: number, protocols: string[]) =>
  assert.rejects(
    handshake(port, { ALPNProtocols: protocols, rejectUnauthorized: false }),
    (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL', String(err));
      return true;
    },
  );

test('a client offering only unknown protocols gets no_application_protocol', async () => {
  await refused(nc.ports[0], ['spdy/3', 'foo']);
  // A listener limited to HTTP/1.1 refuses an h2-only client the same way.
  await refused(nc.ports[1], ['h2']);
  const { socket } = await handshake(nc.ports[1], {
    ALPNProtocols: ['h2', 'http/1.1'],
    rejectUnauthorized: false,
  });
  assert.equal(socket.alpnProtocol, 'http/1.1');
  socket.destroy();
  // The server goes on serving, and said nothing of an uncaught exception.
  const res = await tlsRequest(nc.ports[0], { servername: 'localhost', http2: true, ca: root });
  assert.equal(res.body.toString(), 'still here\n');
  assert.doesNotMatch(nc.stderr() + nc.stdout(), /uncaught|ERR_TLS_ALPN_CALLBACK_INVALID_RESULT/);
});
