// Spooling a chunked body for php-fpm: its maximum (413), and a file system that is nearly full (503).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { after, before, describe, test } from 'node:test';
import { HttpError } from '../../../src/core/errors.js';
import {
  DEFAULT_SPOOL_MAX,
  spoolBody,
  spoolLimits,
  type SpoolLimits,
} from '../../../src/middleware/fastcgi/spool.js';
import { tempDir } from '../../helpers/process.js';

const MiB = 1024 * 1024;

/** `total` bytes of 'x', in 64 KiB chunks. */
function body(total: number): Readable {
  return Readable.from(
    (function* () {
      for (let sent = 0; sent < total; sent += 64 * 1024)
        yield Buffer.alloc(Math.min(64 * 1024, total - sent), 'x');
    })(),
  );
}

const status = (want: number) => (err: unknown) => err instanceof HttpError && err.status === want;

describe('fastcgi spool', () => {
  let dir: string;
  let cleanup: () => void;
  let limits: SpoolLimits;
  before(() => {
    ({ dir, cleanup } = tempDir());
    limits = { maxBytes: 2 * MiB, minFreeBytes: 0, minFreeRatio: 0, dir };
  });
  after(() => cleanup());

  test('without `limits` a spooled body may grow to 1 GiB; `limits` sets it', () => {
    assert.equal(DEFAULT_SPOOL_MAX, 1024 * MiB);
    assert.equal(spoolLimits(Infinity).maxBytes, DEFAULT_SPOOL_MAX);
    assert.equal(spoolLimits(5 * 1024 * MiB).maxBytes, 5 * 1024 * MiB);
  });

  test('a body within the maximum is spooled whole and removed by dispose', async () => {
    const spooled = await spoolBody(body(2 * MiB), limits);
    assert.equal(spooled.length, 2 * MiB);
    assert.equal((await text(spooled.open())).length, 2 * MiB);
    await spooled.dispose();
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a body past the maximum is a 413, and nothing stays on disk', async () => {
    await assert.rejects(spoolBody(body(3 * MiB), limits), status(413));
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a nearly full file system is a 503 with Retry-After before anything is written', async () => {
    const full = { ...limits, minFreeBytes: Number.MAX_SAFE_INTEGER };
    await assert.rejects(spoolBody(body(MiB), full), (err: unknown) => {
      assert.ok(status(503)(err));
      assert.equal((err as HttpError).headers['Retry-After'], '60');
      return true;
    });
    assert.deepEqual(readdirSync(dir), []);
    const byShare = { ...limits, minFreeRatio: 1.01 };
    await assert.rejects(spoolBody(body(MiB), byShare), status(503));
  });

  test('a file system that fills up while a body is written cuts the spool with a 503', async () => {
    let looks = 0;
    // Room at the start; none when free space is looked at again (after 64 MiB have been written).
    const filling: SpoolLimits = {
      ...limits,
      maxBytes: 512 * MiB,
      get minFreeBytes() {
        return looks++ === 0 ? 0 : Number.MAX_SAFE_INTEGER;
      },
    };
    await assert.rejects(spoolBody(body(80 * MiB), filling), status(503));
    assert.ok(looks >= 2);
    assert.deepEqual(readdirSync(dir), []);
  });
});
