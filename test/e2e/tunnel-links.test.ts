// A tunnel client keeps one link to each worker of a `-workers 2` server (the holder's and a join), so a
// visitor is served by whichever worker accepted it without the relay between workers: with the holder's
// unix socket gone, every request still gets through. The joined link's traffic shows in the holder's row,
// and a holder that dies takes the join with it; the client comes back with both links.
import assert from 'node:assert/strict';
import { readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { admin, adminPort } from '../helpers/admin.js';
import { waitFor } from '../helpers/http.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { startClient, startPublic, startTarget, text, viaTunnel, type Target } from '../helpers/tunnel.js';

interface TunnelRow {
  tunnel: string;
  links: number;
  requests: number;
}

describe('a link per worker', () => {
  let tmp: { dir: string; cleanup: () => void };
  let runDir: string;
  let target: Target;
  let server: Nodecaddy;
  let client: Nodecaddy;
  let port: number;
  let at: number;

  const rows = async () => JSON.parse((await admin(at, '/tunnels')).body) as TunnelRow[];
  const linked = (n: number) =>
    waitFor(async () => (await rows()).find((r) => r.links === n), 15_000, `${n} links`);

  before(async () => {
    tmp = tempDir();
    runDir = path.join(tmp.dir, 'run');
    target = await startTarget();
    port = await freePort();
    server = await startPublic(tmp.dir, port, {
      workers: 2,
      env: { NODECADDY_ADMIN: '127.0.0.1:0', NODECADDY_RUN_DIR: runDir },
    });
    at = await adminPort(server);
    client = await startClient(port, 'alice', target.port);
  });
  after(async () => {
    await client?.stop('SIGINT');
    await server?.stop();
    await target?.close();
    tmp?.cleanup();
  });

  test('every worker serves the tunnel over its own link, and the holder counts all of them', async () => {
    const before = (await linked(2)).requests;
    // Without its socket the holder cannot be reached by the other worker: only a link of its own serves it.
    for (const f of readdirSync(runDir).filter((f) => f.startsWith('tunnel-alice-'))) {
      unlinkSync(path.join(runDir, f));
    }
    const N = 40;
    for (let i = 0; i < N; i++) {
      // A new connection each: the kernel picks a worker for every one.
      const res = await viaTunnel(port, 'alice', `/echo?n=${i}`, { headers: { connection: 'close' } });
      assert.equal(res.statusCode, 200, await text(res));
      await text(res);
    }
    await waitFor(
      async () => (await rows())[0]?.requests >= before + N,
      10_000,
      'the joined link reported to the holder',
    );
  });

  test('a holder that dies takes the join along; the client comes back with a link to each worker', async () => {
    const holder = /"pid":(\d+),[^\n]*"msg":"tunnel connected"/.exec(server.stderr());
    assert.ok(holder, server.stderr());
    process.kill(Number(holder[1]), 'SIGKILL');
    await waitFor(() => client.stdout().includes('Reconnected'), 20_000, 'the client reconnected');
    await linked(2).catch(async (err: unknown) => {
      throw new Error(
        `${String(err)} ${JSON.stringify(await rows())}\n${server.stderr()}\n${client.stdout()}`,
      );
    });
    for (let i = 0; i < 10; i++) {
      const res = await viaTunnel(port, 'alice', '/echo', { headers: { connection: 'close' } });
      assert.equal(res.statusCode, 200);
      await text(res);
    }
  });
});
