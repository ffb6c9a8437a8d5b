// On-demand TLS against a real ACME CA (Pebble): a certificate is ordered at the first handshake for a name,
// and only with a permission: the site's `ask` URL answering 2xx (Caddy's semantics; `max_certs` caps it), or,
// on a tunnel site, a claim by an authenticated `nodecaddy tunnel` client. Anything else gets no certificate,
// and nothing is ordered for it.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { pebbleSkip, startPebble, type Pebble } from '../helpers/pebble.js';
import { startWithAcme } from '../helpers/acme.js';
import { freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import { tlsRequest } from '../helpers/tls.js';
import { SECRET, startClient, startTarget, type Target } from '../helpers/tunnel.js';

const skip = pebbleSkip(true);

describe('on-demand TLS', { skip }, () => {
  const { dir, cleanup } = tempDir('nodecaddy-acme-demand-');
  let pebble: Pebble;
  let root: string;
  let httpPort: number;
  let httpsPort: number;
  const running: Nodecaddy[] = [];
  let target: Target;

  before(async () => {
    httpPort = await freePort();
    httpsPort = await freePort();
    pebble = await startPebble({ httpPort, tlsPort: httpsPort, dns: true });
    root = await pebble.root();
    writeFileSync(path.join(dir, 'root.pem'), root);
    writeFileSync(path.join(dir, 'index.html'), 'on demand\n');
    target = await startTarget();
  });
  after(async () => {
    await Promise.all(running.map((nc) => nc.stop('SIGKILL')));
    await target?.close();
    await pebble?.stop();
    cleanup();
  });

  async function serve(caddyfile: string): Promise<Nodecaddy> {
    const file = path.join(dir, 'Caddyfile');
    writeFileSync(file, caddyfile);
    const nc = await startWithAcme(file, { pebble, httpPort, httpsPort, data: path.join(dir, 'data') }, [], {
      cwd: dir,
      listeners: 1,
    });
    running.push(nc);
    return nc;
  }

  test('ask: a 2xx allows the name, 403 refuses it; max_certs caps the site', async () => {
    const asked: string[] = [];
    const allowed = new Set(['yes.example.com', 'also.example.com']);
    const ask = http.createServer((req, res) => {
      const domain = new URL(req.url ?? '/', 'http://x').searchParams.get('domain') ?? '';
      asked.push(domain);
      res.statusCode = allowed.has(domain) ? 200 : 403;
      res.end();
    });
    await new Promise<void>((resolve) => ask.listen(0, '127.0.0.1', resolve));
    const askUrl = `http://127.0.0.1:${(ask.address() as AddressInfo).port}/check`;
    try {
      const nc = await serve(
        `:${httpsPort} {\n\troot ${dir}\n\ttls {\n\t\task ${askUrl}\n\t\tmax_certs 1\n\t}\n}\n`,
      );
      const orders = pebble.orderCount();
      try {
        // Refused by ask: no certificate, no order.
        await assert.rejects(tlsRequest(httpsPort, { servername: 'no.example.com', ca: root }));
        assert.deepEqual(asked, ['no.example.com']);
        assert.equal(pebble.orderCount(), orders);

        // The first handshakes for an allowed name (three at once: one decision, one order) wait for its
        // certificate, then are served.
        const [yes] = await Promise.all(
          [1, 2, 3].map(() => tlsRequest(httpsPort, { servername: 'yes.example.com', ca: root })),
        );
        assert.equal(yes.status, 200);
        assert.equal(yes.body.toString(), 'on demand\n');
        assert.match(yes.peer.san, /DNS:yes\.example\.com/);
        assert.equal(pebble.orderCount(), orders + 1);
        // The next one has it at once, without asking again.
        await tlsRequest(httpsPort, { servername: 'yes.example.com', ca: root });
        assert.deepEqual(asked, ['no.example.com', 'yes.example.com']);

        // Allowed by ask, but max_certs 1 is used up.
        await assert.rejects(tlsRequest(httpsPort, { servername: 'also.example.com', ca: root }));
        // Not a public name: never asked.
        await assert.rejects(tlsRequest(httpsPort, { servername: 'printer.local', ca: root }));
        assert.ok(!asked.includes('printer.local'));
        assert.equal(pebble.orderCount(), orders + 1);
        // The log lines may trail the refused handshakes a moment.
        await waitFor(() => /did not allow it/.test(nc.stderr()), 5000, 'the refusal by ask in the log');
        await waitFor(
          () => /max_certs 1 reached/.test(nc.stderr()),
          5000,
          'the max_certs refusal in the log',
        );
      } finally {
        await nc.stop();
      }
    } finally {
      ask.close();
    }
  });

  test('a tunnel name gets its certificate once a real tunnel client has claimed it; others get none', async () => {
    const nc = await serve(
      `tunnel.example.com, *.tunnel.example.com {\n\ttunnel {\n\t\tsecret ${SECRET}\n\t}\n}\n`,
    );
    const orders = pebble.orderCount();
    const client = await startClient(httpsPort, 'alice', target.port, {
      server: 'https://tunnel.example.com',
      env: { NODE_EXTRA_CA_CERTS: path.join(dir, 'root.pem') },
      wait: false,
    });
    running.push(client);
    // The client's Forwarding line is true: a visitor that checks the certificate reaches the laptop.
    await waitFor(
      () => client.stdout().includes(`Forwarding https://alice.tunnel.example.com:${httpsPort} ->`),
      20_000,
      'the tunnel client',
    );
    const visit = await waitFor(
      () =>
        tlsRequest(httpsPort, {
          servername: 'alice.tunnel.example.com',
          ca: root,
          path: '/echo',
          method: 'POST',
          body: 'hello laptop',
        }),
      15_000,
      'a verified visit',
    );
    assert.equal(visit.status, 200);
    assert.equal(visit.body.toString(), 'hello laptop');
    assert.match(visit.peer.san, /DNS:alice\.tunnel\.example\.com/);
    // The apex and alice: two orders.
    assert.equal(pebble.orderCount(), orders + 2);

    // Nobody claimed bob: no certificate, no order.
    await assert.rejects(tlsRequest(httpsPort, { servername: 'bob.tunnel.example.com', ca: root }));
    assert.equal(pebble.orderCount(), orders + 2);
    await waitFor(() => /no tunnel client has claimed it/.test(nc.stderr()), 5000, 'the refusal in the log');
    await client.stop('SIGINT');
    await nc.stop();
  });
});
