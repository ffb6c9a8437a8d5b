// A tunnel site's claimed names may have certificates on demand: the directive marks its site, and an
// authenticated claim over TLS is reported to automatic HTTPS (CertificateRequests.claimed), which can never
// fail or hold up the claim. The server runs in this process (where the requests are installed); the client
// is the real `nodecaddy tunnel`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_ACME_FLAGS } from '../../src/certs/acme/plan.js';
import { loadConfig } from '../../src/app.js';
import { setCertificateRequests } from '../../src/core/tls/managed.js';
import { signedBy, testCa, type KeyPair } from '../helpers/certs.js';
import { waitFor } from '../helpers/http.js';
import { startInProcess, type InProcess } from '../helpers/inprocess.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { SECRET, startClient, startTarget, type Target } from '../helpers/tunnel.js';

let tmp: { dir: string; cleanup: () => void };
let server: InProcess;
let target: Target;
let ca: KeyPair;
let httpsPort: number;
let httpPort: number;
const claimed: string[] = [];

before(async () => {
  tmp = tempDir();
  target = await startTarget();
  ca = testCa(tmp.dir);
  signedBy(ca, tmp.dir, 'site', ['tunnel.test', '*.tunnel.test']);
  httpsPort = await freePort();
  httpPort = await freePort();
  const tunnel = `\ttunnel {\n\t\tsecret ${SECRET}\n\t}\n`;
  server = await startInProcess(
    `https://*.tunnel.test:${httpsPort} {\n\ttls site.pem site.key\n${tunnel}}\n` +
      `http://*.plain.test:${httpPort} {\n${tunnel}}\n`,
    tmp.dir,
  );
  setCertificateRequests({
    need: () => Promise.resolve(false),
    claimed(name) {
      claimed.push(name);
      throw new Error('the certificate manager is having a bad day');
    },
  });
});

after(async () => {
  setCertificateRequests(undefined);
  await server?.stop();
  await target?.close();
  tmp?.cleanup();
});

function client(server: string, port: number): Promise<Nodecaddy> {
  return startClient(port, 'alice', target.port, {
    server,
    env: { NODE_EXTRA_CA_CERTS: ca.certFile },
    wait: false,
  });
}

async function connected(c: Nodecaddy): Promise<void> {
  await waitFor(() => c.stdout().includes('Forwarding'), 15_000, 'the tunnel client').catch(
    (err: unknown) => {
      throw new Error(`${(err as Error).message}\n${c.stdout()}${c.stderr()}`);
    },
  );
}

test('the tunnel directive lets its claimed names have certificates on demand', () => {
  const config = loadConfig(
    {
      text: `*.t.example.com {\n${'\ttunnel {\n\t\tsecret abcdefgh1\n\t}\n'}}\nother.example.com\n`,
      name: 'C',
    },
    {
      root: '.',
      host: '',
      port: '2015',
      cwd: tmp.dir,
      env: {},
      acme: { ...DEFAULT_ACME_FLAGS, agree: true },
    },
  );
  assert.deepEqual(
    config.sites.map((s) => s.config.onDemandByClaim === true),
    [true, false],
  );
});

test('a claim over TLS is reported (a failing report does not fail it); one over plain HTTP is not', async () => {
  const secure = await client('https://tunnel.test', httpsPort);
  try {
    await connected(secure);
    assert.match(secure.stdout(), /Forwarding https:\/\/alice\.tunnel\.test:\d+ ->/);
    assert.deepEqual(claimed, ['alice.tunnel.test']);
  } finally {
    await secure.stop('SIGINT');
  }
  const plain = await client('http://plain.test', httpPort);
  try {
    await connected(plain);
    assert.match(plain.stdout(), /Forwarding http:\/\/alice\.plain\.test:\d+ ->/);
    assert.deepEqual(claimed, ['alice.tunnel.test']);
  } finally {
    await plain.stop('SIGINT');
  }
});
