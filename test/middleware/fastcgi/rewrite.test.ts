// CGI parameters after a rewrite and with an authenticated user. The real `rewrite` and `basicauth`
// directives live on other branches; two stand-ins registered before fastcgi do what they do to the
// request context (ctx.setUri, ctx.user), through a real Runtime and a real php-fpm.
// After rewrite and basicauth land, repeat these cases with the real directives (see the report).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig, type CaddyfileInput, type LoadOptions } from '../../../src/app.js';
import { defineDirective } from '../../../src/core/directive.js';
import { silentLogger } from '../../../src/core/logger.js';
import { compileTemplate } from '../../../src/core/replacer.js';
import { directives } from '../../../src/middleware/index.js';
import { Runtime } from '../../../src/runtime.js';
import { request } from '../../helpers/http.js';
import { phpFpmSkip, startPhpFpm, type PhpFpm } from '../../helpers/phpfpm.js';
import { tempDir } from '../../helpers/process.js';
import { writePhpApp } from './fixtures.js';

// `testrewrite <base> <to>`: requests under base (that are not files we name) get the URI `to`.
const testrewrite = defineDirective<{ base: string; to: ReturnType<typeof compileTemplate> }[]>({
  name: 'testrewrite',
  setup(d) {
    const rules = [];
    while (d.next()) {
      const [base, to] = d.remainingArgs();
      rules.push({ base, to: compileTemplate(to) });
    }
    return rules;
  },
  build(rules) {
    return {
      middleware: (next) => async (ctx) => {
        const rule = rules.find((r) => ctx.path.startsWith(r.base));
        if (rule) ctx.setUri(rule.to.render(ctx));
        await next(ctx);
      },
    };
  },
});
// `testuser <name>`: what basicauth leaves behind.
const testuser = defineDirective<string>({
  name: 'testuser',
  setup(d) {
    d.next();
    return d.remainingArgs()[0];
  },
  build(name) {
    return {
      middleware: (next) => async (ctx) => {
        ctx.user = name;
        await next(ctx);
      },
    };
  },
});

describe('fastcgi after rewrite, with a user', { skip: phpFpmSkip() }, () => {
  let fpm: PhpFpm;
  let runtime: Runtime;
  let tmp: { dir: string; cleanup: () => void };
  let port = 0;
  let www = '';

  before(async () => {
    tmp = tempDir();
    www = path.join(tmp.dir, 'www');
    writePhpApp(www);
    fpm = await startPhpFpm({ children: 2 });
    const registry = [...directives.filter((d) => d.name !== 'fastcgi'), testrewrite, testuser];
    registry.push(directives.find((d) => d.name === 'fastcgi')!);
    const options: LoadOptions = {
      root: www,
      host: '',
      port: '0',
      cwd: tmp.dir,
      env: {},
      directives: registry,
    };
    const text = `127.0.0.1:0 {
  testrewrite /route /index.php?{query}
  testrewrite /blog /index.php{path}
  testuser alice
  fastcgi / 127.0.0.1:${fpm.port} php
}
`;
    const input = (): CaddyfileInput => ({ text, name: 'Caddyfile', baseDir: tmp.dir });
    runtime = new Runtime({ ...options, log: silentLogger(), graceMs: 1000, readInput: input, watch: false });
    await runtime.start(loadConfig(input(), options));
    port = [...runtime.boundPorts().values()][0]!;
  });

  after(async () => {
    await runtime?.stop(1000);
    await fpm?.stop();
    tmp?.cleanup();
  });

  test('front controller: every route to /index.php; REQUEST_URI stays the original', async () => {
    const r = await request(port, '/route/a/b?x=1&y=2');
    assert.equal(r.status, 200, r.body);
    const s = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(s.front, true);
    assert.equal(s.SCRIPT_NAME, '/index.php');
    assert.equal(s.SCRIPT_FILENAME, path.join(www, 'index.php'));
    assert.equal(s.PATH_INFO, '');
    assert.equal(s.REQUEST_URI, '/route/a/b?x=1&y=2');
    assert.equal(s.QUERY_STRING, 'x=1&y=2');
  });

  test('rewrite to /index.php{path}: PATH_INFO from the rewritten path (Caddy v1 #2580)', async () => {
    const r = await request(port, '/blog/2024/post?draft=1');
    assert.equal(r.status, 200, r.body);
    const s = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(s.SCRIPT_NAME, '/index.php');
    assert.equal(s.DOCUMENT_URI, '/index.php');
    assert.equal(s.PATH_INFO, '/blog/2024/post');
    assert.equal(s.SCRIPT_FILENAME, path.join(www, 'index.php'));
    assert.equal(s.REQUEST_URI, '/blog/2024/post?draft=1');
    assert.equal(s.QUERY_STRING, '', 'the rewritten query (none)');
  });

  test('REMOTE_USER is the authenticated user', async () => {
    const s = JSON.parse((await request(port, '/server.php')).body) as Record<string, unknown>;
    assert.equal(s.REMOTE_USER, 'alice');
  });
});
