// The pool against a real php-fpm with one worker: php-fpm answers the GET_VALUES probe only once a worker
// has taken the connection, so a second request waits in the pool and runs on the first connection when its
// request ends, instead of being written on a connection that sits in php-fpm's listen queue.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FcgiConnection } from '../../../src/middleware/fastcgi/connection.js';
import { FcgiPool } from '../../../src/middleware/fastcgi/pool.js';
import { encodeRequest } from '../../../src/middleware/fastcgi/protocol.js';
import { waitFor } from '../../helpers/http.js';
import { phpFpmSkip, startPhpFpm, type PhpFpm } from '../../helpers/phpfpm.js';
import { tempDir } from '../../helpers/process.js';
import { writePhpApp } from './fixtures.js';

function run(conn: FcgiConnection, script: string): Promise<string> {
  const head = encodeRequest(
    1,
    [
      ['SCRIPT_FILENAME', script],
      ['REQUEST_METHOD', 'GET'],
      ['QUERY_STRING', 'name=pool'],
    ],
    true,
  );
  return new Promise((resolve, reject) => {
    let out = '';
    conn.begin(head, {
      onStdout: (d) => (out += d.toString()),
      onReadEnd: () => {},
      onStderr: () => {},
      onEnd: () => resolve(out.slice(out.indexOf('\r\n\r\n') + 4)),
      onError: reject,
    });
  });
}

describe('FastCGI pool with php-fpm', { skip: phpFpmSkip() }, () => {
  let fpm: PhpFpm;
  let tmp: { dir: string; cleanup: () => void };
  before(async () => {
    tmp = tempDir();
    writePhpApp(tmp.dir);
    fpm = await startPhpFpm({ children: 1 });
  });
  after(async () => {
    await fpm?.stop();
    tmp?.cleanup();
  });

  test('with every worker busy a request waits in the pool and runs on the first connection freed', async () => {
    // A probe php-fpm left unanswered would stall the first acquire for a minute, not 1 s.
    const pool = new FcgiPool(
      { network: 'tcp', host: '127.0.0.1', port: fpm.port },
      { idleTimeoutMs: 60_000, maxIdle: 4, maxAgeMs: 60_000, probeGraceMs: 60_000 },
    );
    try {
      const first = await pool.acquire(10_000);
      const second = pool.acquire(10_000);
      await waitFor(() => pool.pendingCount === 1 && pool.waitingCount === 1, 5000, 'a pending connection');
      // The only worker runs a script on the first connection; the new one stays unanswered meanwhile.
      assert.equal(await run(first, path.join(tmp.dir, 'echo.php')), 'hello pool');
      assert.equal(pool.pendingCount, 1, 'no worker took the second connection');
      pool.release(first, true);
      const next = await second;
      assert.equal(next, first, 'the waiting request got the connection the worker serves');
      assert.equal(await run(next, path.join(tmp.dir, 'echo.php')), 'hello pool');
      pool.release(next, true);
      assert.equal(pool.dialed, 2);
    } finally {
      pool.close();
    }
  });
});
