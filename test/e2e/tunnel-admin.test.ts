// Tunnel sessions seen through the admin endpoint (two workers, a real `nodecaddy tunnel` client): /tunnels
// lists the session with its traffic, the metrics count it, and its end is logged with its totals while the
// bytes counter keeps what the session carried.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { admin, adminPort, sample, scrape } from '../helpers/admin.js';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import {
  patternStream,
  sha256Of,
  startClient,
  startPublic,
  startTarget,
  viaTunnel,
  type Target,
} from '../helpers/tunnel.js';

interface TunnelRow {
  tunnel: string;
  links: number;
  remote: string;
  connected: string;
  streams: number;
  bytes_in: number;
  bytes_out: number;
  worker: string;
}

describe('tunnels on the admin endpoint', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  let server: Nodecaddy;
  let client: Nodecaddy | undefined;

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
  });
  after(async () => {
    await client?.stop('SIGINT');
    await server?.stop();
    await target?.close();
    tmp?.cleanup();
  });

  test('/tunnels and the tunnel metrics follow a session; its end is logged with its totals', async () => {
    const port = await freePort();
    server = await startPublic(tmp.dir, port, { workers: 2, env: { NODECADDY_ADMIN: '127.0.0.1:0' } });
    const at = await adminPort(server);
    client = await startClient(port, 'alice', target.port);
    const name = 'alice.tunnel.localhost';
    const rows = async () => JSON.parse((await admin(at, '/tunnels')).body) as TunnelRow[];
    await waitFor(async () => (await rows()).length === 1, 10_000, 'the session listed');

    // 1 MiB up through the tunnel and echoed back down.
    const MIB = 1024 * 1024;
    const res = await viaTunnel(port, 'alice', '/echo', { method: 'POST', body: patternStream(MIB) });
    assert.equal(res.statusCode, 200);
    assert.equal(await sha256Of(res), await sha256Of(patternStream(MIB)));

    // The client keeps a link to each worker; a link's traffic reaches the holder's row within a second.
    const row = await waitFor(
      async () => (await rows()).find((r) => r.links === 2 && r.bytes_out > MIB && r.bytes_in > MIB),
      10_000,
      'both links, and the traffic of every link in the row',
    );
    assert.equal(row.tunnel, name);
    assert.equal(row.remote, '127.0.0.1');
    assert.equal(row.streams, 0);
    assert.match(row.worker, /^[12]$/);
    assert.ok(Math.abs(Date.parse(row.connected) - Date.now()) < 60_000, row.connected);
    assert.ok(row.bytes_out > MIB && row.bytes_in > MIB, JSON.stringify(row));
    const during = await scrape(at);
    assert.equal(during.get(sample('nodecaddy_tunnel_sessions')), 1);
    const out = during.get(sample('nodecaddy_tunnel_bytes_total', { tunnel: name, direction: 'out' }))!;
    assert.ok(out >= row.bytes_out, `${out} >= ${row.bytes_out}`);

    await client.stop('SIGINT');
    client = undefined;
    const line = await waitFor(
      () =>
        server
          .stderr()
          .split('\n')
          .find((l) => l.includes('"msg":"tunnel disconnected"')),
      10_000,
      'the end of the session logged',
    );
    const entry = JSON.parse(line) as { host: string; seconds: number; bytesIn: number; bytesOut: number };
    assert.equal(entry.host, name);
    assert.ok(entry.bytesIn > MIB && entry.bytesOut > MIB, line);
    assert.ok(entry.seconds >= 0);
    await waitFor(async () => (await rows()).length === 0, 10_000, 'the session gone from /tunnels');
    const afterEnd = await scrape(at);
    assert.equal(afterEnd.get(sample('nodecaddy_tunnel_sessions')), 0);
    const kept = afterEnd.get(sample('nodecaddy_tunnel_bytes_total', { tunnel: name, direction: 'out' }))!;
    assert.ok(kept >= out, `the counter keeps the ended session's bytes: ${kept} >= ${out}`);
  });
});
