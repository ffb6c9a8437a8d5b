// A process that takes FileStorage locks, for the lock tests (real processes contending for one lock file):
//   node lock-child.js contend <root> <name> <marks file> <rounds> <hold ms>
//     takes the lock <rounds> times, appending `start <pid>` and `end <pid>` to the marks file while it holds it;
//   node lock-child.js hold <root> <name> [<hold ms> <marks file>]
//     takes the lock, prints `locked`, and holds it (for ever, or <hold ms> and then appends `released <pid>`);
//   node lock-child.js exit <root> <name>
//     takes the lock, prints `locked` and exits without releasing it (the exit listener must remove it).
import { appendFileSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { FileStorage } from '../../src/certs/file-storage.js';

const [mode, root, name, ...rest] = process.argv.slice(2);
if (!mode || !root || !name) throw new Error('usage: lock-child.js contend|hold|exit <root> <name> ...');
const storage = new FileStorage(root);

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
} else if (mode === 'hold') {
  const [holdMs, marks] = rest;
  const release = await storage.lock(name);
  process.stdout.write('locked\n');
  if (holdMs === undefined || marks === undefined) {
    setInterval(() => {}, 60_000);
  } else {
    await delay(Number(holdMs));
    appendFileSync(marks, `released ${process.pid}\n`);
    await release();
  }
} else if (mode === 'exit') {
  await storage.lock(name);
  process.stdout.write('locked\n');
  process.exit(0);
} else {
  throw new Error(`lock-child.js: unknown mode ${mode}`);
}
