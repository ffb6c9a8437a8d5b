// The directive lifecycle through a real Runtime: setup → build → start before traffic, close after drain,
// and a start that fails on reload leaves the running config alone.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig, type CaddyfileInput, type LoadOptions } from '../../src/app.js';
import { defineDirective } from '../../src/core/directive.js';
import { silentLogger } from '../../src/core/logger.js';
import { directives } from '../../src/middleware/index.js';
import { Runtime } from '../../src/runtime.js';
import { request, waitFor } from '../helpers/http.js';
import { tempDir } from '../helpers/process.js';

/** Everything the probe directive does, in order. */
const events: string[] = [];
/** Requests that wait here until released (to hold a request in flight across a reload). */
let release: (() => void) | undefined;

// `probe <name> [fail] [hold]`: adds X-Probe: <name>, records start/close, can fail to start or hold requests.
const probe = defineDirective<{ name: string; fail: boolean; hold: boolean }>({
  name: 'probe',
  setup(d) {
    d.next();
    const [name, ...flags] = d.remainingArgs();
    if (!name) throw d.argErr();
    return { name, fail: flags.includes('fail'), hold: flags.includes('hold') };
  },
  build(opts) {
    events.push(`build ${opts.name}`);
    return {
      middleware: (next) => async (ctx) => {
        ctx.res.setHeader('X-Probe', opts.name);
        if (opts.hold && ctx.path === '/hold') {
          events.push(`hold ${opts.name}`);
          await new Promise<void>((r) => (release = r));
        }
        await next(ctx);
      },
      start: async () => {
        if (opts.fail) throw new Error(`probe ${opts.name} cannot start`);
        events.push(`start ${opts.name}`);
      },
      close: async () => {
        events.push(`close ${opts.name}`);
      },
    };
  },
});

let dir: string;
let cleanup: () => void;
let text = '';
let runtime: Runtime;
let port = 0;

before(() => {
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'home');
  writeFileSync(path.join(dir, 'www', 'hold'), 'held');
});
after(async () => {
  await runtime?.stop(1000);
  cleanup?.();
});

const options = (): LoadOptions => ({
  root: path.join(dir, 'www'),
  host: '',
  port: '0',
  cwd: dir,
  env: {},
  directives: [...directives, probe],
});
const input = (): CaddyfileInput => ({ text, name: 'Caddyfile', baseDir: dir });

describe('directive lifecycle', () => {
  test('start runs before traffic; the middleware is in the chain', async () => {
    text = '127.0.0.1:0 {\n\tprobe one hold\n}\n';
    runtime = new Runtime({
      ...options(),
      log: silentLogger(),
      graceMs: 5000,
      readInput: input,
      watch: false,
    });
    await runtime.start(loadConfig(input(), options()));
    port = [...runtime.boundPorts().values()][0]!;
    assert.deepEqual(events, ['build one', 'start one']);
    const r = await request(port, '/');
    assert.equal(r.body, 'home');
    assert.equal(r.headers['x-probe'], 'one');
  });

  test('reload: the new instance starts first; the old one closes only after its in-flight request', async () => {
    events.length = 0;
    const held = request(port, '/hold');
    await waitFor(() => events.includes('hold one'), 5000, 'the request to be held');
    text = '127.0.0.1:0 {\n\tprobe two\n}\n';
    const result = await runtime.reload({ force: false, trigger: 'test' });
    assert.equal(result.ok, true);
    assert.equal((await request(port, '/')).headers['x-probe'], 'two', 'new requests see the new config');
    assert.deepEqual(
      events,
      ['hold one', 'build two', 'start two'],
      'old instance still open while a request runs',
    );
    release?.();
    const h = await held;
    assert.equal(h.body, 'held');
    assert.equal(h.headers['x-probe'], 'one', 'the held request finished on the config it started on');
    await waitFor(() => events.includes('close one'), 5000, 'the old instance to close');
  });

  test('a start that fails on reload changes nothing', async () => {
    events.length = 0;
    text = '127.0.0.1:0 {\n\tprobe three fail\n}\n';
    const result = await runtime.reload({ force: false, trigger: 'test' });
    assert.equal(result.ok, false);
    assert.match(result.error?.message ?? '', /probe three cannot start/);
    assert.equal((await request(port, '/')).headers['x-probe'], 'two');
    assert.deepEqual(events, ['build three']);
  });

  test('stop closes the running instance', async () => {
    events.length = 0;
    await runtime.stop(1000);
    assert.deepEqual(events, ['close two']);
  });
});
