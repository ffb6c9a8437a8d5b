// After an uncaught exception a process stops (its state is unknown): a worker exits and the primary starts
// another one, so the server keeps serving; with -workers 1 the process exits with code 70 for its supervisor.
// The exception is thrown by a module preloaded into every process (NODE_OPTIONS --import) when it gets
// SIGUSR2: nothing in the server has a test hook.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { request, waitFor } from '../helpers/http.js';
import { startNodecaddy, tempDir } from '../helpers/process.js';
import { childPids } from '../helpers/workers.js';

let dir: string;
let cleanup: () => void;
let env: Record<string, string>;

before(() => {
  ({ dir, cleanup } = tempDir());
  writeFileSync(path.join(dir, 'index.html'), 'alive\n');
  const preload = path.join(dir, 'throw-on-usr2.mjs');
  writeFileSync(
    preload,
    "process.on('SIGUSR2', () => setImmediate(() => { throw new Error('thrown by the test'); }));\n",
  );
  env = { NODE_OPTIONS: `--import=${preload}` };
});
after(() => cleanup());

test('-workers 2: the worker that threw exits, a new one takes its place, the server goes on', async () => {
  const nc = await startNodecaddy(['-workers', '2', '-port', '0', '-root', dir], { cwd: dir, env });
  try {
    const port = nc.ports[0];
    await waitFor(() => childPids(nc.child.pid!).length === 2, 10_000, 'two workers');
    const [victim] = childPids(nc.child.pid!);
    process.kill(victim, 'SIGUSR2');
    await waitFor(() => !childPids(nc.child.pid!).includes(victim), 10_000, 'the worker to exit');
    await waitFor(() => childPids(nc.child.pid!).length === 2, 10_000, 'a new worker');
    assert.match(
      nc.stderr(),
      /uncaught exception: stopping this process.*thrown by the test|thrown by the test.*uncaught exception: stopping this process/s,
    );
    for (let i = 0; i < 5; i++) assert.equal((await request(port, '/')).body, 'alive\n');
  } finally {
    await nc.stop();
  }
});

test('-workers 1: the process exits with code 70 after logging why', async () => {
  const nc = await startNodecaddy(['-workers', '1', '-port', '0', '-root', dir], { cwd: dir, env });
  assert.equal((await request(nc.ports[0], '/')).body, 'alive\n');
  process.kill(nc.child.pid!, 'SIGUSR2');
  assert.equal(await nc.exited, 70);
  assert.match(nc.stderr(), /uncaught exception: stopping this process/);
});
