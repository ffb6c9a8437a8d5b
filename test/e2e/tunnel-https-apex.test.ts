// The tunnel client's TLS handshake names the apex (the -server host), not its own new name, which has no
// certificate until the client has claimed it (automatic HTTPS on demand, tls.md §6.2); against a server that
// has only a wildcard certificate it falls back to its own name, and keeps what worked.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { signedBy, testCa } from '../helpers/certs.js';
import { waitFor } from '../helpers/http.js';
import { freePort, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';
import { SECRET, startClient, startTarget } from '../helpers/tunnel.js';

const tunnelSite = (port: number, cert: string) =>
  `https://*.tunnel.test:${port} {\n\ttls ${cert}.pem ${cert}.key\n\ttunnel {\n\t\tsecret ${SECRET}\n\t}\n}\n`;

function startTunnelClient(port: number, ca: string): Promise<Nodecaddy> {
  return startClient(port, 'alice', targetPort, {
    server: 'https://tunnel.test',
    env: { NODE_EXTRA_CA_CERTS: ca },
    wait: false,
  });
}

let targetPort = 0;

async function forwarding(client: Nodecaddy, what: string): Promise<void> {
  await waitFor(() => client.stdout().includes(what), 15_000, `the tunnel client to say ${what}`).catch(
    (err: unknown) => {
      throw new Error(`${(err as Error).message}\n${client.stdout()}${client.stderr()}`);
    },
  );
}

test('with a certificate for the apex only, the client connects on its first attempt', async () => {
  const { dir, cleanup } = tempDir();
  const target = await startTarget();
  targetPort = target.port;
  let server: Nodecaddy | undefined;
  let client: Nodecaddy | undefined;
  try {
    const ca = testCa(dir);
    // The tunnel's names have no certificate of their own: the wildcard site shows the apex's, which no
    // client that checks alice.tunnel.test accepts.
    signedBy(ca, dir, 'apex', ['tunnel.test']);
    const port = await freePort();
    writeFileSync(
      path.join(dir, 'Caddyfile'),
      `https://tunnel.test:${port} {\n\ttls apex.pem apex.key\n}\n${tunnelSite(port, 'apex')}`,
    );
    server = await startNodecaddy(
      ['-conf', 'Caddyfile', '-workers', '2', '-http-port', String(await freePort())],
      { cwd: dir },
    );
    client = await startTunnelClient(port, ca.certFile);
    await forwarding(client, `Forwarding https://alice.tunnel.test:${port} ->`);
    assert.doesNotMatch(client.stdout(), /reconnecting/);
    // The claim routes by Host: a visitor (who trusts what the server shows) reaches the laptop.
    const r = await tlsRequest(port, {
      servername: 'tunnel.test',
      host: `alice.tunnel.test:${port}`,
      ca: ca.cert,
      path: '/echo',
      method: 'POST',
      body: 'through',
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'through');
  } finally {
    await client?.stop('SIGINT');
    await server?.stop();
    await target.close();
    cleanup();
  }
});

test('with only a wildcard certificate, the client falls back to its own name and keeps it', async () => {
  const { dir, cleanup } = tempDir();
  const target = await startTarget();
  targetPort = target.port;
  let server: Nodecaddy | undefined;
  let client: Nodecaddy | undefined;
  try {
    const ca = testCa(dir);
    signedBy(ca, dir, 'wild', ['*.tunnel.test']);
    const port = await freePort();
    writeFileSync(path.join(dir, 'Caddyfile'), tunnelSite(port, 'wild'));
    const start = () => startNodecaddy(['-conf', 'Caddyfile', '-http-port', String(httpPort)], { cwd: dir });
    const httpPort = await freePort();
    server = await start();
    client = await startTunnelClient(port, ca.certFile);
    await forwarding(client, `Forwarding https://alice.tunnel.test:${port} ->`);
    const apexFailures = () => client!.stdout().match(/TLS server name tunnel\.test\)/g)?.length ?? 0;
    assert.equal(apexFailures(), 1, client.stdout());

    // A reconnect goes straight to the name that worked.
    await server.stop();
    server = await start();
    await forwarding(client, 'Reconnected');
    assert.equal(apexFailures(), 1, client.stdout());
    assert.doesNotMatch(client.stdout(), /TLS server name alice/);
  } finally {
    await client?.stop('SIGINT');
    await server?.stop();
    await target.close();
    cleanup();
  }
});
