// testssl.sh (the Debian package's `testssl`) against the real nodecaddy process serving `tls internal` with the
// default policy: no finding rated HIGH or CRITICAL (issue 14: Mozilla's "intermediate" profile, nothing weak).
//
// Only the checks that can rate a finding HIGH or CRITICAL and that depend on the server rather than on its
// certificate run, to keep the scan short (CI runs the suite twice):
//   -p  protocols (SSLv2/SSLv3 offered, broken version negotiation)
//   -s  cipher categories (NULL, anonymous, export, LOW/RC4/DES; 3DES is MEDIUM)
//   -P  server preferences (no server cipher order is HIGH)
//   -H -I -R -C -Z -BB  Heartbleed, CCS injection, renegotiation, CRIME, TLS_FALLBACK_SCSV, ROBOT
// Left out: -f (forward secrecy: MEDIUM at worst), BEAST, LUCKY13, SWEET32, BREACH (LOW or MEDIUM at worst),
// FREAK, LOGJAM, DROWN, POODLE, RC4 (their causes are rated by -p and -s already), Ticketbleed (F5 devices), and
// -S, whose HIGH findings are about a local CA's certificate (untrusted root, no OCSP or CRL, a leaf that lives
// a week) rather than the server.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';

const TESTSSL = ['testssl', 'testssl.sh'].find((bin) => !spawnSync(bin, ['--version']).error);
// In CI a missing testssl.sh is a failure, not a skip.
const skip = !TESTSSL && !process.env.CI ? 'testssl.sh is not installed (apt-get install testssl.sh)' : false;

const CHECKS = ['-p', '-s', '-P', '-H', '-I', '-R', '-C', '-Z', '-BB'];

interface Finding {
  id: string;
  severity: string;
  finding: string;
}

let dir: string;
let cleanup: (() => void) | undefined;
let nc: Nodecaddy | undefined;

before(async () => {
  if (skip) return;
  assert.ok(TESTSSL, 'testssl.sh is required in CI (apt-get install testssl.sh)');
  ({ dir, cleanup } = tempDir());
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), '<!doctype html><title>scanned</title>\n');
  // A catch-all site: testssl dials 127.0.0.1 without SNI and gets the local CA's leaf for localhost/127.0.0.1.
  writeFileSync(
    path.join(dir, 'Caddyfile'),
    'https://:0 {\n  bind 127.0.0.1\n  tls internal\n  root www\n}\n',
  );
  nc = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1', '-data', path.join(dir, 'data')], {
    cwd: dir,
  });
});

after(async () => {
  await nc?.stop();
  cleanup?.();
});

function scan(port: number, jsonFile: string): Promise<Finding[]> {
  const args = ['--quiet', '--color', '0', '--warnings', 'off', '--nodns', 'none', '--jsonfile', jsonFile];
  return new Promise((resolve, reject) => {
    execFile(
      TESTSSL!,
      [...args, ...CHECKS, `127.0.0.1:${port}`],
      { timeout: 280_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, TERM: 'dumb' } },
      (err, stdout) => {
        // testssl exits non-zero for some findings; the JSON file is the verdict. No file: the scan failed.
        let findings: Finding[];
        try {
          findings = JSON.parse(readFileSync(jsonFile, 'utf8')) as Finding[];
        } catch {
          reject(new Error(`testssl wrote no report (${err?.message ?? 'no error'}):\n${stdout}`));
          return;
        }
        resolve(findings);
      },
    );
  });
}

test(
  'testssl.sh finds nothing rated HIGH or CRITICAL in the default TLS policy',
  { skip, timeout: 300_000 },
  async () => {
    assert.ok(nc);
    const findings = await scan(nc.ports[0], path.join(dir, 'testssl.json'));
    const line = (f: Finding) => `${f.severity} ${f.id}: ${f.finding}`;
    // The scan reached the server and did its work: a report of a scan that could not connect is not a pass.
    assert.deepEqual(findings.filter((f) => f.severity === 'FATAL').map(line), []);
    const byId = new Map(findings.map((f) => [f.id, f]));
    assert.match(byId.get('TLS1_3')?.finding ?? 'missing', /^offered/, 'TLS 1.3 offered');
    assert.match(byId.get('TLS1_2')?.finding ?? 'missing', /^offered/, 'TLS 1.2 offered');
    for (const old of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1'])
      assert.match(byId.get(old)?.finding ?? 'missing', /^not offered/, `${old} not offered`);
    for (const id of ['cipherlist_NULL', 'heartbleed', 'CCS', 'ROBOT', 'secure_client_renego', 'CRIME_TLS'])
      assert.ok(byId.has(id), `testssl checked ${id}`);
    const serious = findings.filter((f) => f.severity === 'HIGH' || f.severity === 'CRITICAL');
    assert.deepEqual(serious.map(line), [], 'findings rated HIGH or CRITICAL');
  },
);
