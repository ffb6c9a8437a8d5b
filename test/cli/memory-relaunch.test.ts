// withMemorySettings(): a process the user starts gets the workers' memory settings it lacks, by replacing
// itself (process.execve, same pid) where Node has it; the user's own settings are kept.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SEMI_SPACE_MB } from '../../src/cluster/memory-settings.js';
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

test(
  "without execve, the young generation is held at the semi-space flag's size (V8 would let it grow to 2 x 16 MB); not with fallback: false",
  {
    skip:
      typeof (process as { execve?: unknown }).execve === 'function' && 'this Node relaunches with the flag',
  },
  async () => {
    const tmp = tempDir();
    try {
      /** The young generation's largest size (MB) in a process that called withMemorySettings(`options`). */
      const youngMb = async (options: string): Promise<number> => {
        const script = path.join(tmp.dir, 'young.mjs');
        // Objects that live across a few scavenges, as requests in flight do: V8 grows the young generation.
        writeFileSync(
          script,
          `import v8 from 'node:v8';
const { withMemorySettings } = await import(${JSON.stringify(pathToFileURL(MODULE).href)});
withMemorySettings(${options});
const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
let live = [];
let max = 0;
for (let round = 0; round < 200; round++) {
  for (let i = 0; i < 20000; i++) {
    live.push({ a: i, b: [i] });
    if (live.length > 40000) live = [];
  }
  await new Promise((resolve) => setImmediate(resolve));
  max = Math.max(max, young());
}
console.log(max);
`,
        );
        const clean = { ...process.env };
        delete clean.NODE_OPTIONS;
        const stdout = await new Promise<string>((resolve, reject) =>
          execFile(process.execPath, [script], { env: clean }, (err, out, stderr) =>
            err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(out),
          ),
        );
        return Number(stdout.trim()) / 2 ** 20;
      };
      const held = await youngMb('');
      assert.ok(held > 0 && held <= 2 * SEMI_SPACE_MB, `young generation reached ${held} MB`);
      const asStarted = await youngMb('{ fallback: false }');
      assert.ok(asStarted > 2 * SEMI_SPACE_MB, `without the fallback: ${asStarted} MB`);
    } finally {
      tmp.cleanup();
    }
  },
);
