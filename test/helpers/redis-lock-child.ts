// A process that takes RedisStorage locks, for the lock tests (real processes contending through one Redis):
//   node redis-lock-child.js contend <port> <prefix> <name> <marks file> <rounds> <hold ms>
//     takes the lock <rounds> times, appending `start <pid>` and `end <pid>` to the marks file while it holds it;
//   node redis-lock-child.js hold <port> <prefix> <name>
//     takes the lock, prints `locked`, and holds it until killed.
import { appendFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { RedisStorage } from '../../src/certs/redis-storage.js';
import { RedisLink } from '../../src/cluster/redis.js';
import { silentLogger } from '../../src/core/logger.js';

const [mode, port, prefix, name, ...rest] = process.argv.slice(2);
if (!mode || !port || !prefix || !name)
  throw new Error('usage: redis-lock-child.js contend|hold <port> <prefix> <name> ...');
const log = silentLogger();
const link = new RedisLink({ url: `redis://127.0.0.1:${port}`, prefix, log });
await new Promise<void>((resolve) => link.onReady(resolve));
const storage = new RedisStorage({ link, secret: 'a test secret of the cluster', log });

if (mode === 'contend') {
  const [marks, rounds, holdMs] = rest as [string, string, string];
  for (let i = 0; i < Number(rounds); i++) {
    const release = await storage.lock(name);
    appendFileSync(marks, `start ${process.pid}\n`);
    await delay(Number(holdMs));
    appendFileSync(marks, `end ${process.pid}\n`);
    await release();
    // Room for the other process to take it before this one asks again.
    await delay(Number(holdMs));
  }
  await link.close();
} else if (mode === 'hold') {
  await storage.lock(name);
  process.stdout.write('locked\n');
  setInterval(() => {}, 60_000);
} else {
  throw new Error(`redis-lock-child.js: unknown mode ${mode}`);
}
