// Tunnel problems found by trying it as a new user would: two sites with the same wildcard and their own
// secrets, a name that does not resolve, plain http to another machine, and the log of a name with no client.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { waitFor } from '../helpers/http.js';
import { freePort, spawnNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { startClient, startTarget, text, viaTunnel, type Target } from '../helpers/tunnel.js';

const SECRET_A = 'secret-of-site-a';
const SECRET_B = 'secret-of-site-b';

describe('tunnel fixes', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  const procs: Nodecaddy[] = [];
  const track = (p: Nodecaddy) => (procs.push(p), p);

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await target?.close();
    tmp?.cleanup();
  });

  test('two sites with the same wildcard on two ports: each secret opens its own site only', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const conf = path.join(tmp.dir, 'two-sites');
    const site = (port: number, secret: string) =>
      `*.tunnel.localhost:${port} {\n\ttunnel {\n\t\tsecret ${secret}\n\t}\n}\n`;
    writeFileSync(conf, site(portA, SECRET_A) + site(portB, SECRET_B));
    const server = track(
      await startNodecaddy(['-conf', conf, '-log-format', 'json'], { cwd: tmp.dir, listeners: 2 }),
    );

    // Secret A on site B (and B on A) is refused, whichever site started last.
    for (const [port, secret] of [
      [portB, SECRET_A],
      [portA, SECRET_B],
    ] as const) {
      const wrong = track(await startClient(port, 'alice', target.port, { secret, wait: false }));
      await waitFor(() => wrong.child.exitCode !== null, 10_000, `the client on ${port} to be refused`);
      assert.equal(wrong.child.exitCode, 1);
      assert.match(wrong.stdout(), /the tunnel secret is wrong/);
    }

    // The same name on both sites: two separate tunnels, each opened with its own site's secret.
    track(await startClient(portA, 'alice', target.port, { secret: SECRET_A, args: ['-host-header', 'a'] }));
    const onB = await viaTunnel(portB, 'alice', '/echo');
    assert.equal(onB.statusCode, 502, 'a tunnel of site A is not served on site B');
    await text(onB);
    track(await startClient(portB, 'alice', target.port, { secret: SECRET_B, args: ['-host-header', 'b'] }));
    for (const [port, host] of [
      [portA, 'a'],
      [portB, 'b'],
    ] as const) {
      const res = await viaTunnel(port, 'alice', '/echo');
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-seen-host'], host);
      await text(res);
    }
    await server.stop();
  });

  test('a name that does not resolve: the client says what to do, and warns about plain http', async () => {
    const client = track(
      spawnNodecaddy([
        'tunnel',
        '-server',
        'http://tunnel.nodecaddy-test.invalid',
        '-secret',
        'test-secret-123',
        '-name',
        'alice',
        '-to',
        String(target.port),
        '-max-backoff',
        '1s',
        '-inspect',
        'off',
      ]),
    );
    await waitFor(() => /does not resolve/.test(client.stdout()), 10_000, 'the DNS hint');
    assert.match(
      client.stdout(),
      /alice\.tunnel\.nodecaddy-test\.invalid does not resolve: add a wildcard DNS record \*\.tunnel\.nodecaddy-test\.invalid .*or connect to it directly with -dial host:port/,
    );
    assert.match(
      client.stderr(),
      /warning: -server http:\/\/tunnel\.nodecaddy-test\.invalid is not encrypted/,
    );
    // It keeps retrying (DNS may be fixed meanwhile), but says it once.
    await waitFor(() => (client.stdout().match(/reconnecting in/g) ?? []).length >= 2, 10_000, 'retries');
    assert.equal(client.stdout().match(/does not resolve/g)?.length, 1);
    await client.stop('SIGINT');
  });

  test('a client and a server of different protocol versions refuse each other, saying both versions', async () => {
    const port = await freePort();
    const conf = path.join(tmp.dir, 'versions');
    writeFileSync(conf, `*.tunnel.localhost:${port} {\n\ttunnel {\n\t\tsecret test-secret-123\n\t}\n}\n`);
    const server = track(await startNodecaddy(['-conf', conf, '-log-format', 'json'], { cwd: tmp.dir }));
    // An older client (protocol 2, HTTP/2 inside the WebSocket) at this server.
    const old = new WebSocket(`ws://127.0.0.1:${port}/_nodecaddy/tunnel`, {
      headers: {
        host: `alice.tunnel.localhost:${port}`,
        'x-nodecaddy-tunnel-version': '2',
        'x-nodecaddy-tunnel-secret': 'test-secret-123',
        'x-nodecaddy-tunnel-token': 'a'.repeat(32),
      },
    });
    const refusal = await new Promise<http.IncomingMessage>((resolve, reject) => {
      old.once('unexpected-response', (_req, res: http.IncomingMessage) => resolve(res));
      old.once('open', () => reject(new Error('an old client was accepted')));
      old.once('error', reject);
    });
    refusal.resume();
    assert.equal(refusal.statusCode, 400);
    assert.equal(refusal.headers['x-nodecaddy-tunnel-error'], 'bad-version');
    assert.equal(
      refusal.headers['x-nodecaddy-tunnel-detail'],
      'this server speaks tunnel protocol 3 and the client speaks 2: run the same nodecaddy version on both ends',
    );
    await server.stop();

    // This client at an older server, which answers as protocol 2 servers do.
    const oldServer = http.createServer((_req, res) =>
      res
        .writeHead(400, {
          'x-nodecaddy-tunnel-error': 'bad-version',
          'x-nodecaddy-tunnel-detail': 'tunnel protocol version 2 required',
        })
        .end(),
    );
    await new Promise<void>((resolve) => oldServer.listen(0, '127.0.0.1', resolve));
    try {
      const client = track(
        await startClient((oldServer.address() as AddressInfo).port, 'alice', target.port, { wait: false }),
      );
      await waitFor(() => client.child.exitCode !== null, 10_000, 'the client to give up');
      assert.equal(client.child.exitCode, 1);
      assert.match(
        client.stdout(),
        /tunnel refused by tunnel\.localhost:\d+: tunnel protocol version 2 required \(this client speaks tunnel protocol 3: run the same nodecaddy version on both ends\)/,
      );
    } finally {
      oldServer.close();
    }
  });

  test('plain http to this machine gives no warning', async () => {
    const port = await freePort();
    const conf = path.join(tmp.dir, 'local');
    writeFileSync(conf, `*.tunnel.localhost:${port} {\n\ttunnel {\n\t\tsecret test-secret-123\n\t}\n}\n`);
    const server = track(await startNodecaddy(['-conf', conf, '-log-format', 'json'], { cwd: tmp.dir }));
    const client = track(await startClient(port, 'local', target.port));
    assert.doesNotMatch(client.stderr(), /warning/);

    // A name with no client: one info line per request, no error, no stack trace.
    for (let i = 0; i < 3; i++) {
      const res = await viaTunnel(port, 'nobody', '/favicon.ico');
      assert.equal(res.statusCode, 502);
      await text(res);
    }
    const lines = () =>
      server
        .stderr()
        .split('\n')
        .filter((l) => l.includes('nobody.tunnel.localhost'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor(() => lines().length >= 3, 5000, 'three log lines');
    for (const line of lines()) {
      assert.equal(line.level, 'info', JSON.stringify(line));
      assert.equal(line.err, undefined, 'no error object, no stack');
      assert.match(String(line.msg), /^no tunnel client is connected for nobody\.tunnel\.localhost/);
    }
    await client.stop('SIGINT');
    await server.stop();
  });
});
