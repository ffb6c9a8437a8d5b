// The process log: JSON lines carry level names (`"level":"info"`), as log collectors and Caddy 2 expect.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { createProcessLogger, formatTextLine } from '../../src/core/logger.js';
import { waitFor } from '../helpers/http.js';

describe('process log', () => {
  test('JSON lines carry level names; text lines show them as words', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'nodecaddy-logger-'));
    try {
      const file = path.join(dir, 'process.log');
      const log = createProcessLogger(file, 'json');
      log.info('hello');
      log.warn({ upstream: 'x' }, 'careful');
      const lines = await waitFor(() => {
        const all = readFileSync(file, 'utf8').split('\n').filter(Boolean);
        return all.length === 2 ? all : undefined;
      });
      const [info, warn] = lines.map((l) => JSON.parse(l) as { level: unknown; msg: string });
      assert.deepEqual([info.level, info.msg], ['info', 'hello']);
      assert.deepEqual([warn.level, warn.msg], ['warn', 'careful']);
      assert.match(
        formatTextLine(lines[1]),
        /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[WARNING\] careful upstream=x\n$/,
      );
      assert.match(formatTextLine('{"level":50,"msg":"old"}'), /\[ERROR\] old/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
