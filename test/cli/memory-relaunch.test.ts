// withMemorySettings(): a process the user starts gets the workers' memory settings it lacks, by replacing
// itself (process.execve, same pid) where Node has it; the user's own settings are kept.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tempDir } from '../helpers/process.js';

const MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/memory-relaunch.js');

interface Seen {
  pid: number;
  execArgv: string[];
  arena: string | undefined;
  marker: string | undefined;
  argv: string[];
}

/** Runs a script that calls withMemorySettings() and reports how it ended up running. */
async function probe(dir: string, env: Record<string, string>): Promise<{ spawnedPid: number; seen: Seen }> {
  const script = path.join(dir, 'probe.mjs');
  writeFileSync(
    script,
    `const { withMemorySettings } = await import(${JSON.stringify(pathToFileURL(MODULE).href)});
withMemorySettings();
console.log(JSON.stringify({ pid: process.pid, execArgv: process.execArgv, arena: process.env.MALLOC_ARENA_MAX,
  marker: process.env.NODECADDY_MEMORY_RELAUNCHED, argv: process.argv.slice(2) }));
`,
  );
  const clean = { ...process.env };
  delete clean.NODE_OPTIONS;
  delete clean.MALLOC_ARENA_MAX;
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [script, 'tunnel', '-name', 'a b'],
      { env: { ...clean, ...env } },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`${err.message}: ${stderr}`));
        resolve({ spawnedPid: child.pid ?? 0, seen: JSON.parse(stdout) as Seen });
      },
    );
  });
}

test('a process without memory settings gets them (same pid, same arguments) where Node can execve', async () => {
  const tmp = tempDir();
  try {
    const { spawnedPid, seen } = await probe(tmp.dir, {});
    assert.deepEqual(seen.argv, ['tunnel', '-name', 'a b']);
    assert.equal(seen.marker, undefined, 'the relaunch marker is not left in the environment');
    assert.equal(seen.pid, spawnedPid, 'no second process');
    if (typeof (process as { execve?: unknown }).execve === 'function') {
      assert.ok(seen.execArgv.includes('--max-semi-space-size=4'), seen.execArgv.join(' '));
      assert.ok(seen.execArgv.includes('--no-concurrent-array-buffer-sweeping'), seen.execArgv.join(' '));
      assert.ok(seen.execArgv.includes('--expose-gc'), seen.execArgv.join(' '));
      assert.equal(seen.arena, '2');
    } else {
      // Node 20: nothing to replace the process with; it runs on as started.
      assert.deepEqual(seen.execArgv, []);
      assert.equal(seen.arena, undefined);
    }
  } finally {
    tmp.cleanup();
  }
});

test("the user's own memory settings are kept; only what they left out is added", async () => {
  const tmp = tempDir();
  try {
    const { seen } = await probe(tmp.dir, {
      NODE_OPTIONS: '--max-semi-space-size=16 --max-old-space-size=3000',
      MALLOC_ARENA_MAX: '1',
    });
    // The sweeping flag cannot be given in NODE_OPTIONS (V8 flags are not allowed there): it is added.
    const execve = typeof (process as { execve?: unknown }).execve === 'function';
    assert.deepEqual(seen.execArgv, execve ? ['--no-concurrent-array-buffer-sweeping', '--expose-gc'] : []);
    assert.equal(seen.arena, '1');
  } finally {
    tmp.cleanup();
  }
});
