// Mutual TLS through the real nodecaddy process: Caddy v1's `clients` modes (require and verify, request,
// require, verify_if_given), the client-certificate placeholders, and strict host matching.
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { signedBy, testCa, type KeyPair } from '../helpers/certs.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest, type TlsRequest } from '../helpers/tls.js';

let dir: string;
let cleanup: () => void;
let nc: Nodecaddy;
let ca: KeyPair;
let goodClient: KeyPair;
let strangerClient: KeyPair;
const ports: Record<string, number> = {};

const MODES = ['', 'request', 'require', 'verify_if_given'] as const;

before(async () => {
  ({ dir, cleanup } = tempDir());
  ca = testCa(dir, 'ca');
  const stranger = testCa(dir, 'stranger');
  goodClient = signedBy(ca, dir, 'alice', ['alice'], { clientAuth: true });
  strangerClient = signedBy(stranger, dir, 'mallory', ['mallory'], { clientAuth: true });
  signedBy(ca, dir, 'server', ['m.test', 'o.test']);
  mkdirSync(path.join(dir, 'www'));
  writeFileSync(path.join(dir, 'www', 'index.html'), 'secret\n');
  let text = '';
  for (const mode of MODES) {
    ports[mode] = await freePort();
    const caFiles = mode === 'request' || mode === 'require' ? '' : ' ca.pem';
    for (const host of ['m.test', 'o.test'])
      text += `https://${host}:${ports[mode]} {
  tls server.pem server.key {
    clients ${mode}${caFiles}
  }
  root www
  header / X-Client "{tls_client_s_dn}"
}
`;
  }
  writeFileSync(path.join(dir, 'Caddyfile'), text);
  nc = await startNodecaddy(['-conf', 'Caddyfile', '-workers', '1', '-http-port', String(await freePort())], {
    cwd: dir,
    listeners: MODES.length,
  });
});

after(async () => {
  await nc?.stop();
  cleanup();
});

function get(mode: (typeof MODES)[number], client: KeyPair | undefined, extra: Partial<TlsRequest> = {}) {
  return tlsRequest(ports[mode], {
    servername: 'm.test',
    ca: ca.cert,
    cert: client?.cert,
    key: client?.key,
    ...extra,
  });
}

describe('client certificates', () => {
  test('clients <ca>: a certificate from that CA is required and shown to the site', async () => {
    const ok = await get('', goodClient);
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers['x-client']), /CN=alice/);
    await assert.rejects(get('', undefined));
    await assert.rejects(get('', strangerClient));
  });

  test('clients request: asked for, never required nor verified', async () => {
    assert.equal((await get('request', undefined)).status, 200);
    const stranger = await get('request', strangerClient);
    assert.equal(stranger.status, 200);
    assert.match(String(stranger.headers['x-client']), /CN=mallory/);
  });

  test('clients require: some certificate is required, any will do', async () => {
    await assert.rejects(get('require', undefined));
    assert.equal((await get('require', strangerClient)).status, 200);
  });

  test('clients verify_if_given: none is fine, a given one must verify', async () => {
    assert.equal((await get('verify_if_given', undefined)).status, 200);
    assert.equal((await get('verify_if_given', goodClient)).status, 200);
    await assert.rejects(get('verify_if_given', strangerClient));
  });

  test('strict host matching: a connection authenticated for one name cannot ask for another site', async () => {
    const other = await get('', goodClient, { host: 'o.test' });
    assert.equal(other.status, 403);
    assert.match(other.body.toString(), /SNI\) and the Host differ/);
    assert.equal((await get('', goodClient, { servername: 'o.test' })).status, 200);
  });
});
