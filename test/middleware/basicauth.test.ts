// basicauth: hash schemes against published vectors, and the directive end to end through nodecaddy.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { md5Crypt } from '../../src/middleware/basicauth/apr1.js';
import { hashCheck, parseHtpasswd } from '../../src/middleware/basicauth/htpasswd.js';
import { request } from '../helpers/http.js';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

// Published vectors: Openwall crypt_blowfish ("U*U"), Apache's htpasswd docs ("myPassword"),
// `openssl passwd -1 -salt saltsalt password`, and base64(SHA-1("password")).
const BCRYPT_2A = '$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW';
const APR1 = '$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/';
const MD5_1 = '$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/';
const SHA = '{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=';
/** bcrypt of "secret", cost 10. */
const BCRYPT_10 = '$2b$10$Id4Q/xMIeXUhPyw3t4HWvuqYBv2UnxMr8kfHyJqL.OwiJ4Stxe0ru';

describe('hash schemes', () => {
  test('MD5-crypt reproduces the published values', () => {
    assert.equal(md5Crypt('myPassword', 'r31.....', '$apr1$'), APR1);
    assert.equal(md5Crypt('password', 'saltsalt', '$1$'), MD5_1);
  });

  const cases: [string, string][] = [
    [BCRYPT_2A, 'U*U'],
    [BCRYPT_2A.replace('$2a$', '$2b$'), 'U*U'],
    [BCRYPT_2A.replace('$2a$', '$2y$'), 'U*U'],
    [APR1, 'myPassword'],
    [MD5_1, 'password'],
    [SHA, 'password'],
    ['{PLAIN}open sesame', 'open sesame'],
    ['plaintext', 'plaintext'],
  ];
  for (const [hash, password] of cases) {
    test(`${hash.slice(0, 12)}… accepts its password and nothing else`, async () => {
      const check = hashCheck(hash);
      assert.equal(await check(password), true);
      assert.equal(await check(password), true, 'again (bcrypt: from the verified cache)');
      assert.equal(await check(`${password}x`), false);
      assert.equal(await check(''), false);
    });
  }

  test('unknown or malformed schemes are refused, never taken as plain text', () => {
    assert.throws(() => hashCheck('$6$salt$abc'), /unsupported hash scheme 6/);
    assert.throws(() => hashCheck('$2a$05$short'), /malformed bcrypt/);
    assert.throws(() => hashCheck('{SHA}abc'), /malformed \{SHA\}/);
    assert.throws(() => hashCheck('$apr1$salt$tooshort'), /malformed \$apr1\$/);
  });

  test('htpasswd: comments and blank lines skipped, one user per line', async () => {
    const users = parseHtpasswd(`# users\n\nann:${SHA}\r\nben:${APR1}\n`);
    assert.deepEqual([...users.keys()], ['ann', 'ben']);
    assert.equal(await users.get('ben')!('myPassword'), true);
  });
});

describe('basicauth end to end', () => {
  let dir: string;
  let cleanup: () => void;
  let nc: Nodecaddy;
  let port: number;
  const auth = (user: string, pass: string) => ({
    Authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`,
  });

  before(async () => {
    ({ dir, cleanup } = tempDir());
    const www = path.join(dir, 'www');
    mkdirSync(path.join(www, 'files'), { recursive: true });
    mkdirSync(path.join(www, 'plain'), { recursive: true });
    writeFileSync(path.join(www, 'files', 'a.txt'), 'members file');
    writeFileSync(path.join(www, 'plain', 'b.txt'), 'plain file');
    writeFileSync(path.join(www, 'open.txt'), 'open');
    writeFileSync(
      path.join(dir, 'users.htpasswd'),
      `# test users\nalice:${BCRYPT_2A.replace('$2a$', '$2y$')}\nbob:${APR1}\ncarol:${SHA}\ndave:${MD5_1}\nerin:${BCRYPT_10}\n`,
    );
    const conf = path.join(dir, 'Caddyfile');
    writeFileSync(
      conf,
      `127.0.0.1:0 {
	root ${www}
	basicauth /plain admin "p@ss word"
	basicauth bob htpasswd=../users.htpasswd {
		/files
	}
	basicauth carol htpasswd=../users.htpasswd {
		/files
	}
	basicauth dave htpasswd=../users.htpasswd {
		/files
	}
	basicauth erin htpasswd=../users.htpasswd {
		/files
	}
	basicauth alice htpasswd=../users.htpasswd {
		/files
		/whoami
		realm "Members \\"only\\""
	}
	redir /whoami /user/{user} 302
}
`,
    );
    // One process: the failure counts of an address are kept per worker process.
    nc = await startNodecaddy(['-conf', conf, '-workers', '1']);
    port = nc.ports[0];
  });

  after(async () => {
    await nc?.stop();
    cleanup();
  });

  test('no or wrong credentials: 401 with the realm of the last matching rule, quotes escaped', async () => {
    for (const headers of [
      {},
      auth('bob', 'nope'),
      auth('mallory', 'myPassword'),
      { Authorization: 'Bearer abc' },
      { Authorization: 'Basic !!!' },
    ]) {
      const r = await request(port, '/files/a.txt', { headers });
      assert.equal(r.status, 401, JSON.stringify(headers));
      assert.equal(r.headers['www-authenticate'], 'Basic realm="Members \\"only\\""');
      assert.equal(r.body, '401 Unauthorized\n');
    }
    const plain = await request(port, '/plain/b.txt', { headers: auth('admin', 'p@ss') });
    assert.equal(plain.status, 401);
    assert.equal(plain.headers['www-authenticate'], 'Basic realm="Restricted"');
  });

  test('every scheme of the htpasswd file lets its user in', async () => {
    for (const [user, pass] of [
      ['alice', 'U*U'],
      ['bob', 'myPassword'],
      ['carol', 'password'],
      ['dave', 'password'],
    ]) {
      const r = await request(port, '/files/a.txt', { headers: auth(user, pass) });
      assert.equal(r.status, 200, user);
      assert.equal(r.body, 'members file');
    }
  });

  test('plain credentials, a password with a space and a colon-free user', async () => {
    const r = await request(port, '/plain/b.txt', {
      headers: { Authorization: `basic ${Buffer.from('admin:p@ss word').toString('base64')}` },
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'plain file');
  });

  test('the user becomes {user} for later middleware', async () => {
    const r = await request(port, '/whoami', { headers: auth('alice', 'U*U') });
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, '/user/alice');
  });

  test('unprotected paths and OPTIONS pass without credentials', async () => {
    assert.equal((await request(port, '/open.txt')).body, 'open');
    const options = await request(port, '/files/a.txt', { method: 'OPTIONS' });
    assert.notEqual(options.status, 401);
  });

  test('an address with too many failures is shut out (429, Retry-After), others are not', async () => {
    const attacker = '127.0.0.5';
    // A header accepted earlier from that address keeps working: its user is not locked out.
    const known = await request(port, '/files/a.txt', {
      headers: auth('carol', 'password'),
      localAddress: attacker,
    });
    assert.equal(known.status, 200);
    for (let i = 0; i < 6; i++) {
      const r = await request(port, '/files/a.txt', {
        headers: auth('bob', `guess${i}`),
        localAddress: attacker,
      });
      assert.equal(r.status, 401, `guess ${i}`);
    }
    const shut = await request(port, '/files/a.txt', {
      headers: auth('bob', 'guess6'),
      localAddress: attacker,
    });
    assert.equal(shut.status, 429);
    assert.match(shut.headers['retry-after'] ?? '', /^\d+$/);
    const again = await request(port, '/files/a.txt', {
      headers: auth('carol', 'password'),
      localAddress: attacker,
    });
    assert.equal(again.status, 200, 'the remembered header');
    const other = await request(port, '/files/a.txt', {
      headers: auth('bob', 'myPassword'),
      localAddress: '127.0.0.6',
    });
    assert.equal(other.status, 200);
    const open = await request(port, '/open.txt', { localAddress: attacker });
    assert.equal(open.status, 200, 'unprotected paths are not affected');
  });

  test('parallel requests with the same new credentials share one check and all pass', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        request(port, '/files/a.txt', { headers: auth('erin', 'secret'), localAddress: '127.0.0.7' }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status),
      Array<number>(8).fill(200),
    );
  });
});
