// DNS-01 through `tls { dns exec <command> }` against a real ACME CA: a wildcard site gets one wildcard
// certificate, proven by a TXT record that the hook (a real shell script, lego's exec convention) sets through
// pebble-challtestsrv, the CA's DNS server in this test; every name under it is served with that certificate.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { startWithAcme } from '../helpers/acme.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';

const skip = pebbleSkip(true);
/** The hook script (in the source tree: tsc does not copy it to build/). */
const HOOK = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../test/fixtures/acme-dns-hook.sh',
);

describe('DNS-01 through an exec hook', { skip }, () => {
  const { dir, cleanup } = tempDir('nodecaddy-acme-dns-');
  let pebble: Pebble;
  let httpPort: number;
  let httpsPort: number;
  let nc: Nodecaddy | undefined;

  before(async () => {
    httpPort = await freePort();
    httpsPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: httpsPort, dns: true });
    writeFileSync(path.join(dir, 'index.html'), 'any name under the wildcard\n');
  });
  after(async () => {
    await nc?.stop('SIGKILL');
    await pebble?.stop();
    cleanup();
  });

  test('a wildcard site gets one wildcard certificate that serves every name under it', async () => {
    const file = path.join(dir, 'Caddyfile');
    writeFileSync(file, `*.wild.example.com {\n\troot ${dir}\n\ttls {\n\t\tdns exec ${HOOK}\n\t}\n}\n`);
    nc = await startWithAcme(file, { pebble, httpPort, httpsPort, data: path.join(dir, 'data') }, [], {
      cwd: dir,
      env: { CHALLTESTSRV_URL: pebble.dns!.managementUrl },
      listeners: 2,
    });
    const root = await pebble.root();
    const first = await waitFor(
      () => tlsRequest(httpsPort, { servername: 'alice.wild.example.com', ca: root }),
      20_000,
      'the wildcard certificate',
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${nc?.stderr()}`);
    });
    assert.equal(first.status, 200);
    assert.match(first.peer.san, /DNS:\*\.wild\.example\.com/);
    assert.match(nc.stderr(), /dns-01/);
    const orders = pebble.orderCount();
    // Another name under it: the same certificate, no new order.
    const bob = await tlsRequest(httpsPort, { servername: 'bob.wild.example.com', ca: root });
    assert.equal(bob.status, 200);
    assert.equal(bob.peer.fingerprint256, first.peer.fingerprint256);
    assert.equal(pebble.orderCount(), orders);
  });
});
