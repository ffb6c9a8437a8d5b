// The DNS-01 exec hook (`tls { dns exec <command> }`): real scripts get lego's arguments, a hung one is killed
// with what it started, a failing one's error says which command and why; and the test hook script sets a TXT
// record in pebble-challtestsrv that its DNS answers, then a wildcard order through it succeeds at Pebble.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as acme from 'acme-client';
import { dns01Fqdn, dnsExecHook } from '../../src/certs/acme/dns-exec.js';
import { waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { freePort, tempDir } from '../helpers/process.js';

const HOOK_SCRIPT = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../../test/fixtures/acme-dns-hook.sh',
);

let dir: string;
let cleanup: () => void;
before(() => ({ dir, cleanup } = tempDir('nodecaddy-dns-exec-')));
after(() => cleanup());

function script(name: string, body: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

test('dns01Fqdn: lego form, wildcards on their base name', () => {
  assert.equal(dns01Fqdn('example.com'), '_acme-challenge.example.com.');
  assert.equal(dns01Fqdn('*.tunnel.example.com'), '_acme-challenge.tunnel.example.com.');
  assert.equal(dns01Fqdn('example.com.'), '_acme-challenge.example.com.');
});

test('the command gets its own arguments, then present|cleanup <fqdn> <value>', async () => {
  const out = path.join(dir, 'args');
  const hook = dnsExecHook(
    [script('args.sh', 'printf "%s|" "$@" >> "$OUT"; echo >> "$OUT"'), 'a b', "it's"],
    {
      env: { OUT: out },
    },
  );
  await hook.present('_acme-challenge.example.com.', 'TXT-value_1');
  await hook.cleanup('_acme-challenge.example.com.', 'TXT-value_1');
  assert.equal(
    readFileSync(out, 'utf8'),
    "a b|it's|present|_acme-challenge.example.com.|TXT-value_1|\n" +
      "a b|it's|cleanup|_acme-challenge.example.com.|TXT-value_1|\n",
  );
});

// The deadline fails the test when the hook waits for the hung command's children to end by themselves.
test('a hung command is killed after the timeout, with what it started', { timeout: 20_000 }, async () => {
  const pidFile = path.join(dir, 'sleep.pid');
  const hook = dnsExecHook([script('hang.sh', `sleep 60 & echo $! > "${pidFile}"; wait`)], {
    timeoutMs: 300,
  });
  await assert.rejects(hook.present('_acme-challenge.a.example.', 'v'), (err: Error) => {
    assert.match(
      err.message,
      /hang\.sh present _acme-challenge\.a\.example\. <value>` timed out after 300 ms/,
    );
    return true;
  });
  const sleepPid = Number(readFileSync(pidFile, 'utf8'));
  await waitFor(
    () => {
      try {
        process.kill(sleepPid, 0);
        return false;
      } catch {
        return true;
      }
    },
    5000,
    'the sleep started by the hook to be gone',
  );
});

test("a failing command's error names it and quotes the end of its stderr", async () => {
  const fail = script(
    'fail.sh',
    'for i in 1 2 3 4 5 6 7 8; do echo "noise $i" >&2; done; echo "zone example.com not found" >&2; exit 3',
  );
  const hook = dnsExecHook([fail, '--zone', 'example com']);
  await assert.rejects(hook.present('_acme-challenge.example.com.', 'secret-value'), (err: Error) => {
    assert.match(
      err.message,
      /^dns exec hook `.*fail\.sh --zone 'example com' present _acme-challenge\.example\.com\. <value>`/,
    );
    assert.match(err.message, /exited with code 3:\n/);
    assert.match(err.message, /noise 8\nzone example\.com not found$/);
    assert.doesNotMatch(err.message, /noise 3/);
    assert.doesNotMatch(err.message, /secret-value/);
    return true;
  });
  const missing = dnsExecHook([path.join(dir, 'no-such-hook')]);
  await assert.rejects(
    missing.cleanup('_acme-challenge.x.', 'v'),
    /no-such-hook cleanup .* could not be run: .*ENOENT/,
  );
  assert.throws(() => dnsExecHook([]), /no command/);
});

describe('with pebble-challtestsrv', { skip: pebbleSkip(true) }, () => {
  let pebble: Pebble;
  before(async () => {
    pebble = await startPebble({ httpPort: await freePort(), tlsPort: await freePort(), dns: true });
  });
  after(async () => await pebble?.stop());

  function resolver(): Resolver {
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([pebble.dns?.dnsServer ?? '']);
    return r;
  }

  test('the fixture hook makes the TXT record visible in DNS, and cleanup removes it', async () => {
    const hook = dnsExecHook([HOOK_SCRIPT], { env: { CHALLTESTSRV_URL: pebble.dns?.managementUrl ?? '' } });
    const fqdn = dns01Fqdn('*.tunnel.example.com');
    await hook.present(fqdn, 'txt-value-1');
    assert.deepEqual(await resolver().resolveTxt(fqdn.slice(0, -1)), [['txt-value-1']]);
    await hook.cleanup(fqdn, 'txt-value-1');
    await assert.rejects(resolver().resolveTxt(fqdn.slice(0, -1)), { code: 'ENODATA' });
  });

  test('a wildcard certificate ordered by DNS-01 through the hook', async () => {
    const hook = dnsExecHook([HOOK_SCRIPT], { env: { CHALLTESTSRV_URL: pebble.dns?.managementUrl ?? '' } });
    acme.axios.defaults.httpsAgent = pebble.agent;
    const client = new acme.Client({
      directoryUrl: pebble.directoryUrl,
      accountKey: await acme.crypto.createPrivateEcdsaKey('P-256'),
      backoffMin: 100,
      backoffMax: 1000,
    });
    const [, csr] = await acme.crypto.createCsr({ altNames: ['*.tunnel.example.com', 'tunnel.example.com'] });
    // Both names are proven at the same TXT name, in parallel, and challtestsrv's clear-txt removes every value
    // of a name: the cleanups run after the order, or one would remove the other's record before it is checked.
    const cleanups: (() => Promise<void>)[] = [];
    const chain = await client.auto({
      csr,
      email: 'test@example.com',
      termsOfServiceAgreed: true,
      challengePriority: ['dns-01'],
      // acme-client's own check asks the system resolver, which does not know challtestsrv's records.
      skipChallengeVerification: true,
      challengeCreateFn: (authz, _challenge, value) => hook.present(dns01Fqdn(authz.identifier.value), value),
      challengeRemoveFn: async (authz, _challenge, value) => {
        cleanups.push(() => hook.cleanup(dns01Fqdn(authz.identifier.value), value));
      },
    });
    for (const cleanup of cleanups) await cleanup();
    const leaf = new X509Certificate(acme.crypto.splitPemChain(chain)[0] ?? '');
    assert.equal(leaf.subjectAltName, 'DNS:*.tunnel.example.com, DNS:tunnel.example.com');
  });
});
