// Upgrade requests run through the site's chain: unclaimed, they get an ordinary response and the connection
// closes after it; a directive may claim the socket (the tunnel tests cover claiming).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { rawRequest } from '../helpers/http.js';
import { startNodecaddy, tempDir } from '../helpers/process.js';

test('an upgrade nobody claims is answered like any request, then the connection closes', async () => {
  const tmp = tempDir();
  writeFileSync(path.join(tmp.dir, 'index.html'), 'static');
  writeFileSync(path.join(tmp.dir, 'Caddyfile'), `localhost:0 {\n\troot ${tmp.dir}\n}\n`);
  const nc = await startNodecaddy(['-conf', path.join(tmp.dir, 'Caddyfile')], { cwd: tmp.dir });
  try {
    const port = nc.ports[0];
    const upgrade =
      'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const served = await rawRequest(port, `GET / HTTP/1.1\r\nHost: localhost\r\n${upgrade}\r\n`);
    assert.match(served, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(served, /\r\nServer: nodecaddy\r\n/);
    assert.match(served, /\r\nConnection: close\r\n/);
    assert.ok(served.endsWith('static'), 'the body, then the server closed');
    const missing = await rawRequest(port, `GET /nope HTTP/1.1\r\nHost: localhost\r\n${upgrade}\r\n`);
    assert.match(missing, /^HTTP\/1\.1 404 Not Found\r\n/);
    const otherHost = await rawRequest(port, `GET / HTTP/1.1\r\nHost: other.example\r\n${upgrade}\r\n`);
    assert.match(otherHost, /^HTTP\/1\.1 404 Not Found\r\n/);
  } finally {
    await nc.stop();
    tmp.cleanup();
  }
});
