// php-fpm ties a worker to each open connection. With -workers 2, idle connections pooled by one nodecaddy
// worker must not keep php-fpm's workers from the other nodecaddy worker for long.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { waitFor } from '../../helpers/http.js';
import { connectionCounter, phpFpmSkip, startPhpFpm, type PhpFpm } from '../../helpers/phpfpm.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../../helpers/process.js';
import { childPids, getOnNewConnection, servingPid } from '../../helpers/workers.js';
import { writePhpApp } from './fixtures.js';

let fpm: PhpFpm;
let nc: Nodecaddy;
let tmp: { dir: string; cleanup: () => void };
let port = 0;
let counter: Awaited<ReturnType<typeof connectionCounter>>;

before(async () => {
  if (phpFpmSkip()) return;
  tmp = tempDir();
  const www = path.join(tmp.dir, 'www');
  writePhpApp(www);
  writeFileSync(
    path.join(www, 'pid.php'),
    `<?php usleep((int)($_GET['ms'] ?? 0) * 1000); $b = 'php ' . getmypid(); header('Content-Length: ' . strlen($b)); echo $b;`,
  );
  fpm = await startPhpFpm({ children: 2 });
  counter = await connectionCounter(fpm.port);
  port = await freePort();
  const conf = path.join(tmp.dir, 'Caddyfile');
  writeFileSync(conf, `127.0.0.1:${port} {\n  root ${www}\n  fastcgi / 127.0.0.1:${counter.port} php\n}\n`);
  nc = await startNodecaddy(['-conf', conf, '-workers', '2'], { cwd: tmp.dir });
});

after(async () => {
  await nc?.stop();
  await counter?.close();
  await fpm?.stop();
  tmp?.cleanup();
});

/** Sends GET on a kept-alive socket and resolves with the body (Content-Length responses only). */
function getOn(socket: net.Socket, p: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const onData = (d: string) => {
      data += d;
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(data.slice(0, end))?.[1] ?? NaN);
      if (data.length - end - 4 < length) return;
      socket.off('data', onData);
      resolve(data.slice(end + 4, end + 4 + length));
    };
    socket.on('data', onData).once('error', reject);
    socket.write(`GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

test(
  'a worker whose pool holds every php-fpm worker idle does not stall the other',
  { skip: phpFpmSkip() },
  async () => {
    let workers: number[] = [];
    await waitFor(() => (workers = childPids(nc.child.pid!)).length === 2, 10_000, '2 workers');
    // Two client connections on worker A, one on worker B.
    const byWorker = new Map<number, net.Socket[]>();
    const open: net.Socket[] = [];
    try {
      for (let i = 0; i < 200; i++) {
        const a = byWorker.get(workers[0]) ?? [];
        const b = byWorker.get(workers[1]) ?? [];
        if ((a.length >= 2 && b.length >= 1) || (b.length >= 2 && a.length >= 1)) break;
        const { socket } = await getOnNewConnection(port, '/pid.php');
        open.push(socket);
        const pid = servingPid(socket, port, workers);
        if (pid !== undefined) byWorker.set(pid, [...(byWorker.get(pid) ?? []), socket]);
      }
      const [busy, other] = (byWorker.get(workers[0])?.length ?? 0) >= 2 ? workers : [workers[1], workers[0]];
      const [s1, s2] = byWorker.get(busy)!;
      const [s3] = byWorker.get(other)!;
      // Both workers' pools have parked php-fpm workers on idle connections; they must let them go soon
      // (the other process cannot ask them to), well before php-fpm's 2 workers are needed elsewhere.
      await waitFor(() => counter.open() === 0, 5000, 'the pools to close their idle php-fpm connections');
      // Now worker A runs two scripts at once: each gets its own php-fpm worker, none is held by B.
      const pair = await Promise.all([getOn(s1, '/pid.php?ms=300'), getOn(s2, '/pid.php?ms=300')]);
      assert.notEqual(pair[0], pair[1], 'two php-fpm workers served the two concurrent requests');
      await waitFor(() => counter.open() === 0, 5000, 'the idle connections to close again');
      const t0 = performance.now();
      assert.match(await getOn(s3, '/pid.php'), /^php \d+$/);
      const ms = performance.now() - t0;
      assert.ok(ms < 5000, `worker B waited ${Math.round(ms)} ms for php-fpm`);
    } finally {
      for (const s of open) s.destroy();
    }
  },
);
