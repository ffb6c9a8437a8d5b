// The data folder's storage: keys as private files written whole, and the lock per name that real processes
// contend for, taken over from a holder that was killed or left a broken file, never from a live one.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  readFileSync,
  statSync,
  utimesSync,
  writeFileSync,
  mkdirSync,
  readdirSync,
} from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FileStorage } from '../../src/certs/file-storage.js';
import { LOCK_STALE_MS } from '../../src/certs/storage.js';
import { waitFor } from '../helpers/http.js';
import { tempDir } from '../helpers/process.js';

const LOCK_CHILD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/lock-child.js');

let dir: string;
let cleanup: () => void;
const children: ChildProcess[] = [];
before(() => ({ dir, cleanup } = tempDir('nodecaddy-storage-')));
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  cleanup();
});

interface Child {
  readonly child: ChildProcess;
  readonly exited: Promise<number | string>;
  stdout(): string;
  stderr(): string;
}

function lockChild(args: string[]): Child {
  const child = spawn(process.execPath, [LOCK_CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  return { child, exited, stdout: () => out, stderr: () => err };
}

function lockFile(root: string, name: string): string {
  return path.join(root, 'locks', `${name}.lock`);
}

describe('keys', () => {
  test('store, load, list and delete nested keys', async () => {
    const s = new FileStorage(path.join(dir, 'keys'));
    assert.equal(s.description, `file://${path.join(dir, 'keys')}`);
    assert.equal(await s.load('acme/ca/sites/a.example/a.example.crt'), undefined);
    assert.deepEqual(await s.list('acme'), []);
    await s.store('acme/ca/sites/a.example/a.example.crt', 'CERT A');
    await s.store('acme/ca/sites/a.example/a.example.key', Buffer.from('KEY A'));
    await s.store('acme/ca/sites/b.example/b.example.crt', 'CERT B');
    await s.store('acme/ca/users/default/default.json', '{}');
    await s.store('acme/ca/sites/a.example/a.example.crt', 'CERT A2');
    assert.equal((await s.load('acme/ca/sites/a.example/a.example.crt'))?.toString(), 'CERT A2');
    assert.deepEqual(await s.list('acme/ca/sites'), [
      'acme/ca/sites/a.example/a.example.crt',
      'acme/ca/sites/a.example/a.example.key',
      'acme/ca/sites/b.example/b.example.crt',
    ]);
    assert.deepEqual(await s.list('acme/ca/sites/'), await s.list('acme/ca/sites'));
    assert.deepEqual(await s.list('acme/other'), []);
    assert.equal((await s.list('')).length, 4);
    // No temporary file of the atomic writes is left behind.
    assert.deepEqual(readdirSync(path.join(dir, 'keys/acme/ca/sites/a.example')).sort(), [
      'a.example.crt',
      'a.example.key',
    ]);
    await s.delete('acme/ca/sites/a.example/a.example.key');
    await s.delete('acme/ca/sites/a.example/a.example.key');
    assert.equal(await s.load('acme/ca/sites/a.example/a.example.key'), undefined);
    await s.delete('acme/ca/sites/b.example');
    assert.deepEqual(await s.list('acme/ca/sites'), ['acme/ca/sites/a.example/a.example.crt']);
    // A key under a file is simply absent.
    assert.equal(await s.load('acme/ca/sites/a.example/a.example.crt/x'), undefined);
  });

  test('files are 0600 and folders 0700', async () => {
    const root = path.join(dir, 'modes');
    const s = new FileStorage(root);
    await s.store('acme/ca/users/me/me.key', 'secret');
    assert.equal(statSync(path.join(root, 'acme/ca/users/me/me.key')).mode & 0o777, 0o600);
    for (const folder of ['', 'acme', 'acme/ca', 'acme/ca/users', 'acme/ca/users/me'])
      assert.equal(statSync(path.join(root, folder)).mode & 0o777, 0o700, folder);
    const release = await s.lock('cert_a.example');
    assert.equal(statSync(lockFile(root, 'cert_a.example')).mode & 0o777, 0o600);
    assert.equal(statSync(path.join(root, 'locks')).mode & 0o777, 0o700);
    await release();
  });

  test('keys that could leave the folder are refused with the reason', async () => {
    const s = new FileStorage(path.join(dir, 'bad'));
    const cases: [string, RegExp][] = [
      ['../x', /contains \.\./],
      ['a/../../x', /contains \.\./],
      ['/etc/passwd', /absolute path/],
      ['a\\b', /backslash/],
      ['a\0b', /NUL/],
      ['', /empty/],
      ['a//b', /empty or "\." part/],
      ['./a', /empty or "\." part/],
    ];
    for (const [key, why] of cases) {
      await assert.rejects(s.store(key, 'x'), why, JSON.stringify(key));
      await assert.rejects(s.load(key), why, JSON.stringify(key));
      await assert.rejects(s.delete(key), why, JSON.stringify(key));
    }
    await assert.rejects(s.list('../'), /contains \.\./);
    assert.equal(existsSync(path.join(dir, 'x')), false);
  });
});

describe('locks', () => {
  test('two processes contending for one lock never hold it at the same time', async () => {
    const root = path.join(dir, 'contend');
    const marks = path.join(dir, 'contend-marks');
    writeFileSync(marks, '');
    const a = lockChild(['contend', root, 'cert_x', marks, '4', '60']);
    const b = lockChild(['contend', root, 'cert_x', marks, '4', '60']);
    assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0], a.stderr() + b.stderr());
    const lines = readFileSync(marks, 'utf8').trim().split('\n');
    assert.equal(lines.length, 16);
    for (let i = 0; i < lines.length; i += 2) {
      const [start, end] = [lines[i]?.split(' '), lines[i + 1]?.split(' ')];
      assert.equal(start?.[0], 'start', lines.join('\n'));
      assert.deepEqual(end, ['end', start?.[1]], lines.join('\n'));
    }
    assert.equal(new Set(lines.map((l) => l.split(' ')[1])).size, 2);
    assert.equal(existsSync(lockFile(root, 'cert_x')), false);
  });

  test('a lock in this process waits for its release; released twice is harmless', async () => {
    const s = new FileStorage(path.join(dir, 'inproc'));
    const release = await s.lock('*.Example.com');
    assert.ok(existsSync(lockFile(s.root, 'wildcard_.example.com')));
    const record = JSON.parse(readFileSync(lockFile(s.root, 'wildcard_.example.com'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(record.pid, process.pid);
    assert.equal(typeof record.id, 'string');
    let second = false;
    const waiting = s.lock('*.example.com').then((r) => ((second = true), r));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(second, false);
    await release();
    await release();
    const release2 = await waiting;
    assert.ok(existsSync(lockFile(s.root, 'wildcard_.example.com')));
    await release2();
    assert.equal(existsSync(lockFile(s.root, 'wildcard_.example.com')), false);
  });

  test('abort while waiting rejects with an AbortError', async () => {
    const s = new FileStorage(path.join(dir, 'abort'));
    const release = await s.lock('cert_a');
    const ac = new AbortController();
    const waiting = s.lock('cert_a', ac.signal);
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(waiting, { name: 'AbortError', message: /cert_a/ });
    await assert.rejects(s.lock('cert_a', AbortSignal.abort()), { name: 'AbortError' });
    await release();
  });

  test('an empty or garbage lock file older than the stale time is taken over, a new one is not', async () => {
    const s = new FileStorage(path.join(dir, 'broken'));
    mkdirSync(path.join(s.root, 'locks'), { recursive: true });
    const old = new Date(Date.now() - LOCK_STALE_MS - 5000);
    for (const [name, content] of [
      ['empty', ''],
      ['garbage', '{"created": "2026-01-0'],
      ['no-record', '"just a string"'],
    ]) {
      const file = lockFile(s.root, name);
      writeFileSync(file, content);
      // A fresh broken file is someone mid-write: not taken over.
      await assert.rejects(s.lock(name, AbortSignal.timeout(700)), { name: 'AbortError' });
      utimesSync(file, old, old);
      const release = await s.lock(name, AbortSignal.timeout(5000));
      assert.match(readFileSync(file, 'utf8'), /"id":/);
      await release();
    }
    // A record whose `updated` is old is stale whatever the mtime says.
    const file = lockFile(s.root, 'old-record');
    const t = old.toISOString();
    writeFileSync(file, JSON.stringify({ created: t, updated: t, pid: 1, host: 'x', id: 'someone' }));
    const release = await s.lock('old-record', AbortSignal.timeout(5000));
    await release();
    // Nothing of the take-overs is left beside the lock files.
    assert.deepEqual(readdirSync(path.join(s.root, 'locks')), []);
  });

  test('waiters that find the same stale lock at once: one takes it over, the others wait', async () => {
    const s = new FileStorage(path.join(dir, 'race'));
    mkdirSync(path.join(s.root, 'locks'), { recursive: true });
    const t = new Date(Date.now() - LOCK_STALE_MS - 5000).toISOString();
    writeFileSync(
      lockFile(s.root, 'cert_r'),
      JSON.stringify({ created: t, updated: t, pid: 1, host: 'x', id: 'dead' }),
    );
    let holders = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        const release = await new FileStorage(s.root).lock('cert_r', AbortSignal.timeout(15_000));
        most = Math.max(most, ++holders);
        await new Promise((r) => setTimeout(r, 30));
        holders--;
        await release();
      }),
    );
    assert.equal(most, 1);
    assert.deepEqual(readdirSync(path.join(s.root, 'locks')), []);
  });

  test('a lock held by a process that exits without releasing it is removed at exit', async () => {
    const root = path.join(dir, 'exit');
    const c = lockChild(['exit', root, 'cert_e']);
    assert.equal(await c.exited, 0, c.stderr());
    assert.equal(c.stdout(), 'locked\n');
    assert.equal(existsSync(lockFile(root, 'cert_e')), false);
  });

  // Each takes about LOCK_STALE_MS; they run side by side.
  describe('across the stale time', { concurrency: true }, () => {
    test('a holder killed with SIGKILL: another process gets the lock', async () => {
      const s = new FileStorage(path.join(dir, 'killed'));
      const holder = lockChild(['hold', s.root, 'cert_k']);
      await waitFor(() => holder.stdout() === 'locked\n', 10_000, `the holder's lock (${holder.stderr()})`);
      const record = JSON.parse(readFileSync(lockFile(s.root, 'cert_k'), 'utf8')) as { pid: number };
      assert.equal(record.pid, holder.child.pid);
      holder.child.kill('SIGKILL');
      await holder.exited;
      assert.ok(existsSync(lockFile(s.root, 'cert_k')), 'SIGKILL left the lock file behind');
      const release = await s.lock('cert_k', AbortSignal.timeout(LOCK_STALE_MS + 10_000));
      const mine = JSON.parse(readFileSync(lockFile(s.root, 'cert_k'), 'utf8')) as { pid: number };
      assert.equal(mine.pid, process.pid);
      await release();
    });

    test('a live holder keeps its lock past the stale time (it refreshes it)', async () => {
      const s = new FileStorage(path.join(dir, 'live'));
      const marks = path.join(dir, 'live-marks');
      writeFileSync(marks, '');
      const holder = lockChild(['hold', s.root, 'cert_l', String(LOCK_STALE_MS + 2500), marks]);
      await waitFor(() => holder.stdout() === 'locked\n', 10_000, `the holder's lock (${holder.stderr()})`);
      const release = await s.lock('cert_l', AbortSignal.timeout(LOCK_STALE_MS + 15_000));
      // Only after the holder let go.
      assert.equal(readFileSync(marks, 'utf8'), `released ${holder.child.pid}\n`);
      await release();
      assert.equal(await holder.exited, 0, holder.stderr());
    });
  });
});
