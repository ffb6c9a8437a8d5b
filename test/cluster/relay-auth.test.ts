// Who may use the relay: only a client that proves the cluster secret on a session (and only to a listener that
// proves it back). Forged requests, curl, a wrong secret, a replayed proof and an impostor listener all fail.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http2, { type ClientHttp2Session, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { newNonce, nonceBinding, proofsFor, relayKey } from '../../src/cluster/relay/auth.js';
import { RelayClient } from '../../src/cluster/relay/client.js';
import { startRelayServer } from '../../src/cluster/relay/server.js';
import { selfSignedLeaf } from '../../src/certs/x509.js';
import { silentLogger } from '../../src/core/logger.js';
import { request } from '../helpers/http.js';
import { CLUSTER_SECRET, Front, HOST, SITE, startCluster, Target, targetHandler } from '../helpers/relay.js';

/** One stream on a raw HTTP/2 session: its status (0: reset or no answer) and whether the session then ended. */
function ask(
  session: ClientHttp2Session,
  head: OutgoingHttpHeaders,
): Promise<{ status: number; nonce?: string }> {
  return new Promise((resolve) => {
    const stream = session.request(head, { endStream: true });
    stream.on('error', () => undefined);
    stream.once('response', (h) => {
      stream.resume();
      resolve({ status: h[':status'] ?? 0, nonce: h['x-nodecaddy-relay-nonce'] as string | undefined });
    });
    stream.once('close', () => resolve({ status: 0 }));
  });
}

function connect(port: number, tls: boolean): Promise<ClientHttp2Session> {
  const session = http2.connect(`${tls ? 'https' : 'http'}://127.0.0.1:${port}`, {
    rejectUnauthorized: false,
  });
  session.on('error', () => undefined);
  return new Promise((resolve) => session.once('connect', () => resolve(session)));
}

function ended(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed || session.destroyed) resolve();
    else session.once('close', () => resolve());
  });
}

function curl(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '5', '-o', '-', '-w', '\\n%{http_code}', ...args],
      (err, stdout) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout });
      },
    );
  });
}

const HELLO = { ':method': 'POST', ':path': '/', 'x-nodecaddy-relay-op': 'hello' };

const RELAY_HEAD = {
  ':method': 'GET',
  ':path': '/echo',
  ':authority': HOST,
  'x-nodecaddy-relay-site': encodeURIComponent(SITE),
};

for (const tls of [false, true]) {
  describe(`the relay listener over ${tls ? 'TLS' : 'h2c'} refuses what does not prove the secret`, () => {
    const lines: string[] = [];
    let target: Target;
    let server: { port: number; close(): Promise<void> };
    before(async () => {
      target = new Target();
      await target.start();
      server = await startRelayServer({
        host: '127.0.0.1',
        port: 0,
        secret: CLUSTER_SECRET,
        tls,
        handler: targetHandler(target),
        log: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
      });
    });
    after(async () => {
      await server.close();
      await target.close();
    });

    test('a relay request without a proof, with a made-up one or with the secret itself: 401 and the session ends', async () => {
      for (const proof of [undefined, 'made-up', CLUSTER_SECRET]) {
        const session = await connect(server.port, tls);
        // Over h2c anyone may say hello (and get nonces): it is the proof that must fail.
        if (!tls)
          assert.equal((await ask(session, { ...HELLO, 'x-nodecaddy-relay-nonce': newNonce() })).status, 200);
        const head = proof === undefined ? RELAY_HEAD : { ...RELAY_HEAD, 'x-nodecaddy-relay-proof': proof };
        assert.equal((await ask(session, head)).status, 401, `proof ${proof}`);
        await ended(session);
      }
      // Logged once for this peer, without the secret.
      const refusals = lines.filter((l) => l.includes('refused a peer'));
      assert.equal(refusals.length, 1, lines.join(''));
      assert.ok(!lines.some((l) => l.includes(CLUSTER_SECRET)));
    });

    test('plain curl gets no relay answer', async () => {
      const url = `${tls ? 'https' : 'http'}://127.0.0.1:${server.port}/echo`;
      const h1 = await curl([tls ? '-k' : '', '--http1.1', '-H', `host: ${HOST}`, url].filter(Boolean));
      assert.notEqual(h1.code, 0, `HTTP/1.1 got an answer: ${h1.out}`);
      const h2 = await curl([tls ? '-k' : '--http2-prior-knowledge', '-H', `host: ${HOST}`, url]);
      assert.ok(h2.out.endsWith('401'), h2.out);
    });

    if (!tls) {
      test('a proof seen on one h2c session is worthless on another', async () => {
        const key = relayKey(CLUSTER_SECRET);
        const clientNonce = newNonce();
        const first = await connect(server.port, false);
        const a = await ask(first, { ...HELLO, 'x-nodecaddy-relay-nonce': clientNonce });
        const proofs = proofsFor(key, nonceBinding(clientNonce, a.nonce ?? '') ?? Buffer.alloc(0));
        // The legitimate client of the first session is served.
        assert.equal(
          (await ask(first, { ...RELAY_HEAD, 'x-nodecaddy-relay-proof': proofs.client })).status,
          201,
        );
        // An eavesdropper replays the same hello and proof on its own session: the server's nonce differs.
        const second = await connect(server.port, false);
        assert.equal((await ask(second, { ...HELLO, 'x-nodecaddy-relay-nonce': clientNonce })).status, 200);
        assert.equal(
          (await ask(second, { ...RELAY_HEAD, 'x-nodecaddy-relay-proof': proofs.client })).status,
          401,
        );
        await ended(second);
        first.destroy();
      });
    }
  });
}

for (const tls of [false, true]) {
  test(`over ${tls ? 'TLS' : 'h2c'}, a client with another secret is refused and refuses the listener`, async () => {
    const c = await startCluster({ tls, clientSecret: 'another-secret-0123456789' });
    try {
      const res = await request(c.front.port, '/echo', { headers: { host: HOST } });
      assert.equal(res.status, 502);
      assert.equal(res.headers['x-test-code'], 'peer-unauthenticated');
    } finally {
      await c.close();
    }
  });

  test(`over ${tls ? 'TLS' : 'h2c'}, the client trusts no answer from a listener that cannot prove the secret`, async () => {
    // An impostor: any HTTP/2 server answering every stream with a page of its own.
    let streams = 0;
    const answer = (stream: http2.ServerHttp2Stream) => {
      streams++;
      stream.respond({
        ':status': 200,
        'x-nodecaddy-relay-nonce': newNonce(),
        'x-nodecaddy-relay-proof': 'trust me',
      });
      stream.end('impostor');
    };
    const pem = await selfSignedLeaf(['impostor'], 'P256', 3600_000);
    const impostor = tls
      ? http2.createSecureServer({ key: pem.key, cert: pem.cert, settings: { enableConnectProtocol: true } })
      : http2.createServer({ settings: { enableConnectProtocol: true } });
    impostor.on('stream', answer);
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const port = (impostor.address() as AddressInfo).port;
    const client = new RelayClient({ secret: CLUSTER_SECRET, log: silentLogger(), tls: () => tls });
    const front = new Front(client, () => `127.0.0.1:${port}`);
    await front.start();
    try {
      const res = await request(front.port, '/echo', { headers: { host: HOST } });
      assert.equal(res.status, 502);
      assert.equal(res.headers['x-test-code'], 'peer-unauthenticated');
      assert.ok(!res.body.includes('impostor'));
      assert.ok(streams > 0, 'the impostor was reached');
    } finally {
      await front.close();
      impostor.close();
    }
  });
}
