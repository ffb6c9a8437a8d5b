// Made certificates (src/certs): the local CA is made once even when several processes ask at the same moment,
// its leaves verify against it, SNI lookups follow Caddy v1's order, and certificates near their end are renewed
// in place.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildCertificates, MADE_LEAF_MS, renewMadeCertificates } from '../../src/certs/index.js';
import { localCa, localRootFile } from '../../src/certs/local-ca.js';
import { signedLeaf } from '../../src/certs/x509.js';
import { DEFAULT_POLICY } from '../../src/core/tls/config.js';
import type { Site } from '../../src/core/site.js';
import { tempDir } from '../helpers/process.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));

let dir: string;
let cleanup: () => void;
before(() => ({ dir, cleanup } = tempDir()));
after(() => cleanup());

function fakeSite(host: string, kind: 'internal' | 'self_signed'): Site {
  return {
    label: `https://${host}:0`,
    handler: async () => {},
    config: {
      address: { original: host, scheme: 'https', host, port: '0', path: '' },
      root: dir,
      indexFiles: [],
      bindHost: undefined,
      hiddenFiles: [],
      sourceFile: 'Caddyfile',
      certSource: { kind },
    },
  };
}

describe('the local CA', () => {
  test('four processes asking at once get the same root, made once, its key readable by the owner only', async () => {
    const data = path.join(dir, 'race');
    const script = `import { localCa } from ${JSON.stringify(path.resolve(here, '../../src/certs/local-ca.js'))};
      const ca = await localCa(${JSON.stringify(data)}); process.stdout.write(ca.cert);`;
    const outs = await Promise.all(
      Array.from({ length: 4 }, () => run(process.execPath, ['--input-type=module', '-e', script])),
    );
    const certs = new Set(outs.map((o) => o.stdout));
    assert.equal(certs.size, 1, 'one root for all of them');
    const root = new X509Certificate([...certs][0]);
    assert.ok(root.ca);
    assert.match(root.subject, /nodecaddy Local Authority/);
    assert.equal(statSync(path.join(path.dirname(localRootFile(data)), 'root.key')).mode & 0o777, 0o600);
  });

  test('leaves it signs verify against it and carry the names asked for', async () => {
    const ca = await localCa(path.join(dir, 'leaves'));
    const leaf = await signedLeaf(ca, ['app.localhost', '127.0.0.1'], 'P384', MADE_LEAF_MS);
    const cert = new X509Certificate(leaf.cert);
    assert.ok(cert.verify(new X509Certificate(ca.cert).publicKey));
    assert.match(cert.subjectAltName!, /DNS:app\.localhost/);
    assert.match(cert.subjectAltName!, /IP Address:127\.0\.0\.1/);
    assert.ok(cert.checkPrivateKey(createPrivateKey(leaf.key)));
    assert.equal(createPrivateKey(leaf.key).asymmetricKeyDetails?.namedCurve, 'secp384r1');
  });
});

describe('certificate indexes', () => {
  test('exact name, then a wildcard, then the catch-all; nothing for an unknown name without one', async () => {
    const sites = [fakeSite('a.localhost', 'internal'), fakeSite('*.w.localhost', 'self_signed')];
    const spec = { key: ':0', tls: DEFAULT_POLICY, sites };
    const index = (await buildCertificates([spec], path.join(dir, 'idx'))).get(':0')!;
    const a = index.lookup('a.localhost', undefined);
    const w = index.lookup('x.w.localhost', undefined);
    assert.ok(a && w && a !== w);
    assert.equal(index.lookup('A.LOCALHOST.', undefined), a, 'case and a trailing dot do not matter');
    assert.equal(index.lookup('nope.localhost', undefined), undefined);
    const withDefault = (
      await buildCertificates(
        [{ ...spec, sites: [...sites, fakeSite('', 'internal')] }],
        path.join(dir, 'idx'),
      )
    ).get(':0')!;
    assert.ok(withDefault.lookup('nope.localhost', undefined), 'the catch-all site answers unknown names');
  });

  test('made certificates with a third of their life left or less are renewed in place', async () => {
    const spec = { key: ':0', tls: DEFAULT_POLICY, sites: [fakeSite('r.localhost', 'internal')] };
    const index = (await buildCertificates([spec], path.join(dir, 'renew'))).get(':0')!;
    const before = index.lookup('r.localhost', undefined)!;
    assert.equal(await renewMadeCertificates([index]), 0, 'a fresh certificate is left alone');
    const later = before.notAfter - MADE_LEAF_MS / 3 + 1000;
    assert.equal(await renewMadeCertificates([index], later), 1);
    const after = index.lookup('r.localhost', undefined)!;
    assert.notEqual(after, before);
    assert.notEqual(after.pem.cert, before.pem.cert);
  });
});
