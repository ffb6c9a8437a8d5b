// The libdeflate binding (native/deflate.c) that gzips whole bodies, and the reused-zlib path that does it
// where the binding is not built. In CI the binding must be there (.ci/run installs a C compiler and
// libdeflate-dev, and native/build.js fails without them there); elsewhere its tests skip and say why.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, test } from 'node:test';
import { gzipWhole, zlibGzipWhole } from '../../src/middleware/gzip/gzip-pool.js';
import { libdeflate, libdeflateMissing } from '../../src/middleware/gzip/libdeflate.js';

type Gzip = (level: number, body: Buffer, done: (err: Error | null, out: Buffer) => void) => void;
const gz = (f: Gzip, level: number, body: Buffer) =>
  new Promise<Buffer>((resolve, reject) => f(level, body, (err, out) => (err ? reject(err) : resolve(out))));
const native: Gzip = (level, body, done) => libdeflate!.gzip(body, level, done);

/** The OS byte of a gzip header: zlib writes 3 (Unix), libdeflate 255 (unknown). */
const OS_BYTE = 9;

const text = (n: number) => {
  const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
  const parts: string[] = [];
  for (let i = 0, len = 0; len < n; i++) {
    const w = `${words[(i * 7 + (i >> 3)) % words.length]}${i % 13} `;
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
};

const BODIES: [string, Buffer][] = [
  ['empty', Buffer.alloc(0)],
  ['one byte', Buffer.from('x')],
  ['100 KB of text', text(100 * 1024)],
  ['300 KB of random bytes (incompressible)', randomBytes(300 * 1024)],
  ['2 MB of text', text(2 * 1024 * 1024)],
];

const skip =
  libdeflate || process.env.CI ? false : `the libdeflate binding is not built: ${libdeflateMissing}`;

describe('libdeflate binding', { skip }, () => {
  test('is loaded, and says its version', () => {
    assert.ok(libdeflate, libdeflateMissing);
    assert.match(libdeflate.version, /^\d+\.\d+/);
  });

  test('every body at every level comes back as a gzip stream that zlib reads back whole', async () => {
    for (const [name, body] of BODIES)
      for (let level = 0; level <= 12; level++) {
        const out = await gz(native, level, body);
        assert.deepEqual([...out.subarray(0, 3)], [0x1f, 0x8b, 8], `${name}, level ${level}: gzip header`);
        assert.ok(zlib.gunzipSync(out).equals(body), `${name}, level ${level}`);
      }
  });

  test('a higher level gives smaller output on text, level 0 stores', async () => {
    const body = text(200 * 1024);
    const sizes = [];
    for (const level of [0, 1, 6, 12]) sizes.push((await gz(native, level, body)).length);
    assert.ok(sizes[0] > body.length, `level 0 stores: ${sizes[0]}`);
    assert.ok(sizes[1] > sizes[2] && sizes[2] > sizes[3], `sizes by level: ${sizes.join(', ')}`);
  });

  test('a view into a larger buffer: only its own bytes are compressed', async () => {
    const whole = text(64 * 1024);
    const view = whole.subarray(1000, 41_000);
    assert.ok(zlib.gunzipSync(await gz(native, 6, view)).equals(view));
  });

  test('300 bodies at once, each on its own input and callback, all come back right', async () => {
    const bodies = Array.from({ length: 300 }, (_, i) => text(1000 + i * 97));
    const outs = await Promise.all(bodies.map((b, i) => gz(native, 1 + (i % 9), b)));
    outs.forEach((out, i) => assert.ok(zlib.gunzipSync(out).equals(bodies[i]), `body ${i}`));
  });

  test('wrong arguments are thrown at once, with a code', () => {
    const call = (...args: unknown[]) => (libdeflate!.gzip as (...a: unknown[]) => void)(...args);
    const cb = () => assert.fail('no callback for a refused call');
    assert.throws(() => call('text', 6, cb), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => call(new Uint16Array(4), 6, cb), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => call(Buffer.from('x'), 13, cb), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => call(Buffer.from('x'), -1, cb), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => call(Buffer.from('x'), 6, 'cb'), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => call(Buffer.from('x'), 6), { name: 'TypeError', code: 'ERR_INVALID_ARG_COUNT' });
  });

  test('trim() frees the compressors kept for reuse, and gzip goes on after it', async () => {
    libdeflate!.trim();
    const body = text(256 * 1024);
    // Four at once: the pool threads each take a compressor, and give it back to be kept.
    await Promise.all(Array.from({ length: 4 }, () => gz(native, 6, body)));
    await gz(native, 1, body);
    const freed = libdeflate!.trim();
    assert.ok(freed >= 2 && freed <= 5, `freed ${freed}: one per level at least, at most one per job`);
    assert.equal(libdeflate!.trim(), 0, 'nothing is left to free');
    assert.ok(zlib.gunzipSync(await gz(native, 6, body)).equals(body));
    assert.equal(libdeflate!.trim(), 1, 'the job after a trim made a compressor, kept it, and it went');
  });

  test('gzip of whole bodies goes through it', async () => {
    const body = text(50 * 1024);
    const out = await gz(gzipWhole, 6, body);
    assert.equal(out[OS_BYTE], 255, 'the OS byte libdeflate writes');
    assert.ok(zlib.gunzipSync(out).equals(body));
  });
});

describe('gzip of whole bodies with reused zlib compressors (where libdeflate is not built)', () => {
  test('the same bytes as zlib.gzipSync, body after body (a reused compressor starts as new)', async () => {
    for (const level of [1, 6, 9])
      for (const [name, body] of BODIES) {
        const out = await gz(zlibGzipWhole, level, body);
        assert.equal(out[OS_BYTE], 3, `${name}: zlib's OS byte`);
        assert.ok(out.equals(zlib.gzipSync(body, { level })), `${name}, level ${level}`);
      }
  });
});
