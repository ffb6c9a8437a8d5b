// TCP tunnels end to end: the real nodecaddy (two workers) with `tcp_ports`, the real `nodecaddy tunnel -tcp`,
// and real programs through it: redis-cli against a real redis-server (50 at once, 100 MB in and out,
// checked by sha256), and a TCP service that checks half-close both ways.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { REDIS_CLI, redisCli, startRedis, type Redis } from '../helpers/redis.js';
import { patternStream, SECRET, sha256Of, startClient, text, viaTunnel } from '../helpers/tunnel.js';

/**
 * A contiguous range of ports (taken ones are skipped by the server anyway), below Linux's ephemeral range
 * (32768 and up), where the outgoing connections and port-0 servers of the other tests running meanwhile land.
 */
async function portRange(size: number): Promise<{ from: number; to: number }> {
  const base = 20_000 + Math.floor(Math.random() * (12_000 - size));
  return { from: base, to: base + size - 1 };
}

function tcpCaddyfile(port: number, range: { from: number; to: number } | undefined): string {
  const ports = range ? `\t\ttcp_ports ${range.from}-${range.to}\n` : '';
  return `*.tunnel.localhost:${port} {\n\ttunnel {\n\t\tsecret ${SECRET}\n\t\tping_interval 2s\n${ports}\t}\n}\n`;
}

/** The public port from the client's `Forwarding tcp://tunnel.localhost:N -> …` line. */
async function publicPort(client: Nodecaddy, nth = 1): Promise<number> {
  const ports = await waitFor(
    () => {
      const all = [
        ...client.stdout().matchAll(/^(?:Forwarding|Reconnected:) tcp:\/\/tunnel\.localhost:(\d+) -> /gm),
      ];
      return all.length >= nth ? all.map((m) => Number(m[1])) : undefined;
    },
    15_000,
    `the tunnel's public port in:\n${client.stdout()}`,
  );
  return ports[nth - 1];
}

/**
 * A TCP service for half-close: a connection that starts with `U` is hashed until the visitor's FIN, then
 * answered with the sha256 and closed; one that starts with `D` gets 1 MB and the service's FIN, and what
 * the visitor sends after that is still read and recorded in `afterFin`.
 */
async function startHalfCloseService(): Promise<{
  port: number;
  afterFin: string[];
  close(): Promise<void>;
}> {
  const afterFin: string[] = [];
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.once('readable', () => {
      const mode = (socket.read(1) as Buffer | null)?.toString();
      if (mode === 'U') {
        const hash = createHash('sha256');
        socket.on('data', (d: Buffer) => hash.update(d));
        socket.on('end', () => socket.end(hash.digest('hex')));
      } else {
        let late = '';
        socket.on('data', (d: Buffer) => (late += d.toString()));
        socket.on('end', () => afterFin.push(late));
        socket.end(Buffer.alloc(1024 * 1024, 'd'));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    afterFin,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('TCP tunnels', () => {
  let tmp: { dir: string; cleanup: () => void };
  let redis: Redis;
  let port: number;
  let range: { from: number; to: number };
  let server: Nodecaddy;
  const procs: Nodecaddy[] = [];
  const track = (p: Nodecaddy) => (procs.push(p), p);

  before(async () => {
    tmp = tempDir();
    redis = await startRedis(tmp.dir);
    port = await freePort();
    range = await portRange(20);
    writeFileSync(path.join(tmp.dir, 'Caddyfile'), tcpCaddyfile(port, range));
    server = await startNodecaddy(
      ['-conf', path.join(tmp.dir, 'Caddyfile'), '-log-format', 'json', '-workers', '2'],
      {
        cwd: tmp.dir,
      },
    );
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    await server?.stop();
    await redis?.stop();
    tmp?.cleanup();
  });

  test('redis-cli through the tunnel: one, 50 at once, and 100 MB each way by sha256', async () => {
    const client = track(
      await startClient(port, 'db', 0, { wait: false, args: ['-tcp', `127.0.0.1:${redis.port}`] }),
    );
    const tcpPort = await publicPort(client);
    assert.ok(tcpPort >= range.from && tcpPort <= range.to, `${tcpPort} in ${range.from}-${range.to}`);
    assert.match(
      client.stdout(),
      new RegExp(`^Forwarding tcp://tunnel\\.localhost:${tcpPort} -> 127\\.0\\.0\\.1:${redis.port}$`, 'm'),
    );

    assert.equal((await redisCli(tcpPort, ['PING'])).toString(), 'PONG\n');
    await Promise.all(Array.from({ length: 50 }, () => redisCli(tcpPort, ['INCR', 'visits'])));
    assert.equal((await redisCli(tcpPort, ['GET', 'visits'])).toString(), '50\n');

    const size = 100 * 1024 * 1024;
    const file = path.join(tmp.dir, 'big.bin');
    await pipeline(patternStream(size, 5), createWriteStream(file));
    const want = await sha256Of(patternStream(size, 5));
    const set = spawn(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(tcpPort), '-x', 'SET', 'big']);
    let setOut = '';
    set.stdout.setEncoding('utf8').on('data', (d: string) => (setOut += d));
    createReadStream(file).pipe(set.stdin);
    assert.equal(await new Promise((resolve) => set.once('close', resolve)), 0);
    assert.equal(setOut, 'OK\n');
    assert.equal(
      (await redisCli(redis.port, ['STRLEN', 'big'])).toString(),
      `${size}\n`,
      'all of it reached redis',
    );
    const got = await redisCli(tcpPort, ['--raw', 'GET', 'big']);
    assert.equal(got.length, size + 1);
    assert.equal(createHash('sha256').update(got.subarray(0, size)).digest('hex'), want);
    await client.stop('SIGINT');
  });

  test('half-close both ways: each side still gets the rest after the other shut its sending side', async () => {
    const service = await startHalfCloseService();
    try {
      const client = track(
        await startClient(port, 'halfclose', 0, {
          wait: false,
          args: ['-to', `tcp://127.0.0.1:${service.port}`],
        }),
      );
      const tcpPort = await publicPort(client);

      // The visitor sends, shuts its side, and still gets the service's answer.
      const up = net.connect({ port: tcpPort, host: '127.0.0.1', allowHalfOpen: true });
      const payload = Buffer.alloc(5 * 1024 * 1024, 'u');
      up.end(Buffer.concat([Buffer.from('U'), payload]));
      const answer = await text(up as unknown as import('node:http').IncomingMessage);
      assert.equal(answer, createHash('sha256').update(payload).digest('hex'));

      // The service sends 1 MB and shuts its side; the visitor, after the end, still sends and is heard.
      const down = net.connect({ port: tcpPort, host: '127.0.0.1', allowHalfOpen: true });
      down.write('D');
      let received = 0;
      down.on('data', (d: Buffer) => (received += d.length));
      await new Promise((resolve) => down.once('end', resolve));
      assert.equal(received, 1024 * 1024);
      down.end('still talking after your FIN');
      await waitFor(
        () => service.afterFin.includes('still talking after your FIN'),
        10_000,
        'the late bytes',
      );
      await client.stop('SIGINT');
    } finally {
      await service.close();
    }
  });

  test('-remote-port, the same port after a reconnect, and an HTTP request to a TCP tunnel', async () => {
    const wanted = range.to;
    const first = track(
      await startClient(port, 'fixed', 0, {
        wait: false,
        args: ['-tcp', `127.0.0.1:${redis.port}`, '-remote-port', String(wanted)],
      }),
    );
    assert.equal(await publicPort(first), wanted);

    const second = track(
      await startClient(port, 'other', 0, {
        wait: false,
        args: ['-tcp', `127.0.0.1:${redis.port}`, '-remote-port', String(wanted)],
      }),
    );
    await waitFor(
      () => second.stdout().includes(`refused: port ${wanted} is in use`),
      10_000,
      'the port refusal',
    );
    await second.stop('SIGKILL');

    const res = await viaTunnel(port, 'fixed', '/');
    assert.equal(res.statusCode, 502);
    assert.match(
      await text(res),
      new RegExp(`fixed\\.tunnel\\.localhost is a TCP tunnel \\(port ${wanted}\\)`),
    );

    // The server restarts: the client comes back with the port it had.
    const roaming = track(
      await startClient(port, 'roaming', 0, { wait: false, args: ['-tcp', `127.0.0.1:${redis.port}`] }),
    );
    const had = await publicPort(roaming);
    await server.stop();
    server = await startNodecaddy(
      ['-conf', path.join(tmp.dir, 'Caddyfile'), '-log-format', 'json', '-workers', '2'],
      {
        cwd: tmp.dir,
      },
    );
    assert.equal(await publicPort(roaming, 2), had);
    assert.equal((await redisCli(had, ['PING'])).toString(), 'PONG\n');
    await Promise.all([first.stop('SIGINT'), roaming.stop('SIGINT')]);
  });

  test('a site without tcp_ports refuses TCP tunnels, saying so', async () => {
    const plainPort = await freePort();
    const conf = path.join(tmp.dir, 'no-tcp');
    writeFileSync(conf, tcpCaddyfile(plainPort, undefined));
    const plain = track(await startNodecaddy(['-conf', conf, '-log-format', 'json'], { cwd: tmp.dir }));
    const client = track(await startClient(plainPort, 'db', 0, { wait: false, args: ['-tcp', '6379'] }));
    await waitFor(() => client.child.exitCode !== null, 10_000, 'the refused client to exit');
    assert.equal(client.child.exitCode, 1);
    assert.match(
      client.stdout(),
      /tunnel refused by tunnel\.localhost:\d+: TCP tunnels are not enabled on .* \(its tunnel directive needs tcp_ports\)/,
    );
    await plain.stop();
  });
});
