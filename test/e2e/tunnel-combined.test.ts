// The tunnel directive combined with gzip, log, basicauth and header on the tunnel site, through the real
// nodecaddy (2 workers, the default) and a real `nodecaddy tunnel` client that authenticates with
// user:pass in its -server URL.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import zlib from 'node:zlib';
import { WebSocket } from 'ws';
import { waitFor } from '../helpers/http.js';
import { freePort, spawnNodecaddy, startNodecaddy, tempDir, type Nodecaddy } from '../helpers/process.js';
import { SECRET, startTarget, viaTunnel, type Target } from '../helpers/tunnel.js';

const USER = 'carol';
const PASS = 'tunnel pw!';
const AUTH = `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`;

async function bytes(res: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('tunnel with gzip, log, basicauth and header', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  let server: Nodecaddy;
  let client: Nodecaddy | undefined;
  let port: number;
  const logFile = () => path.join(tmp.dir, 'access.log');
  const logLine = (prefix: string) =>
    waitFor(
      () =>
        readFileSync(logFile(), 'utf8')
          .split('\n')
          .find((l) => l.startsWith(prefix)),
      10_000,
      `log line '${prefix}' in:\n${readFileSync(logFile(), 'utf8')}`,
    );

  /** `nodecaddy tunnel` for the name `dave`, with `cred` (user:pass) in the -server URL. */
  const spawnClient = (cred: string) =>
    spawnNodecaddy([
      'tunnel',
      '-server',
      `http://${cred ? `${encodeURIComponent(USER)}:${encodeURIComponent(cred)}@` : ''}tunnel.localhost:${port}`,
      '-dial',
      `127.0.0.1:${port}`,
      '-secret',
      SECRET,
      '-name',
      'dave',
      '-to',
      `127.0.0.1:${target.port}`,
      '-ping',
      '2s',
      '-max-backoff',
      '1s',
      '-inspect',
      'off',
    ]);

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
    port = await freePort();
    const conf = path.join(tmp.dir, 'Caddyfile');
    writeFileSync(
      conf,
      `*.tunnel.localhost:${port} {
	gzip
	log / ${logFile()} "{method} {hostonly} {uri} {status} {size} {user}"
	basicauth / ${USER} "${PASS}"
	header / X-Tunnel-Site yes
	header / -X-Seen-Method
	tunnel {
		secret ${SECRET}
		ping_interval 2s
	}
}
`,
    );
    server = await startNodecaddy(['-conf', conf], { cwd: tmp.dir });
  });
  after(async () => {
    await client?.stop('SIGINT');
    await server?.stop();
    await target?.close();
    tmp?.cleanup();
  });

  test('a client without the basicauth credentials is refused and retries; with them it connects', async () => {
    const refused = spawnClient('');
    try {
      await waitFor(() => /refused|401|retry/i.test(refused.stdout() + refused.stderr()), 15_000, 'refusal');
      assert.doesNotMatch(refused.stdout(), /Forwarding/);
    } finally {
      await refused.stop('SIGINT');
    }
    client = spawnClient(PASS);
    await waitFor(() => client!.stdout().includes('Forwarding'), 15_000, 'tunnel client').catch(
      (err: unknown) => {
        throw new Error(`${(err as Error).message}\n${client!.stdout()}${client!.stderr()}`);
      },
    );
  });

  test('a visitor needs the credentials: 401 without (target never asked), 200 with', async () => {
    assert.ok(client, 'client connected');
    const denied = await viaTunnel(port, 'dave', '/echo?deny=1', { method: 'POST', body: 'nope' });
    assert.equal(denied.statusCode, 401);
    assert.match(String(denied.headers['www-authenticate']), /^Basic realm=/);
    assert.equal(denied.headers['x-tunnel-site'], 'yes');
    await bytes(denied);
    const ok = await viaTunnel(port, 'dave', '/echo?deny=0', {
      method: 'POST',
      body: 'hello',
      headers: { authorization: AUTH },
    });
    assert.equal(ok.statusCode, 200);
    assert.equal((await bytes(ok)).toString('utf8'), 'hello');
    // The client prints a line per request it forwarded: the refused one never reached it.
    await waitFor(() => /^POST \/echo\?deny=0 200/m.test(client!.stdout()), 5000, 'client request line');
    assert.doesNotMatch(client.stdout(), /deny=1/);
  });

  test('a tunnelled response is gzip-compressed and gets the header rules', async () => {
    const body = 'tunnelled text, compress me please. '.repeat(200);
    const res = await viaTunnel(port, 'dave', '/echo?gz=1', {
      method: 'POST',
      body,
      headers: { authorization: AUTH, 'accept-encoding': 'gzip' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.match(String(res.headers.vary), /Accept-Encoding/i);
    assert.equal(res.headers['content-length'], undefined);
    assert.equal(res.headers['x-tunnel-site'], 'yes');
    assert.equal(res.headers['x-seen-method'], undefined, 'removed by header / -X-Seen-Method');
    assert.equal(res.headers['x-seen-host'], `127.0.0.1:${target.port}`, 'the target answered');
    const raw = await bytes(res);
    assert.ok(raw.length < body.length);
    assert.equal(zlib.gunzipSync(raw).toString('utf8'), body);
    assert.equal(
      await logLine('POST dave.tunnel.localhost /echo?deny=0 '),
      `POST dave.tunnel.localhost /echo?deny=0 200 5 ${USER}`,
    );
    assert.equal(
      await logLine(`POST dave.tunnel.localhost /echo?gz=1 `),
      `POST dave.tunnel.localhost /echo?gz=1 200 ${raw.length} ${USER}`,
    );
    assert.match(await logLine('POST dave.tunnel.localhost /echo?deny=1 '), / 401 \d+ -$/);
  });

  test('server-sent events through the tunnel and gzip arrive one by one', async () => {
    const before = target.sseNext.length;
    const res = await viaTunnel(port, 'dave', '/sse', {
      headers: { authorization: AUTH, 'accept-encoding': 'gzip' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-encoding'], 'gzip');
    await waitFor(() => target.sseNext.length > before, 5000, 'SSE stream at the target');
    const send = target.sseNext[before];
    let decoded = '';
    const gunzip = res.pipe(zlib.createGunzip());
    gunzip.setEncoding('utf8').on('data', (d: string) => (decoded += d));
    const ended = new Promise((r) => gunzip.once('end', r));
    for (const n of [1, 2]) {
      send(`event-${n}`);
      await waitFor(() => decoded.endsWith(`data: event-${n}\n\n`), 10_000, `event ${n}`);
    }
    send('end');
    await ended;
    assert.equal(decoded, 'data: event-1\n\ndata: event-2\n\n');
  });

  test('a visitor WebSocket through the tunnel needs credentials, echoes, and is logged as 101', async () => {
    const denied = new WebSocket(`ws://127.0.0.1:${port}/ws?auth=0`, {
      headers: { host: `dave.tunnel.localhost:${port}` },
    });
    const status = await new Promise<number>((resolve, reject) => {
      denied.once('unexpected-response', (_req, res: http.IncomingMessage) => resolve(res.statusCode ?? 0));
      denied.once('open', () => reject(new Error('opened without credentials')));
      denied.once('error', reject);
    });
    assert.equal(status, 401);
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?auth=1`, {
      headers: { host: `dave.tunnel.localhost:${port}`, authorization: AUTH },
    });
    const messages: string[] = [];
    ws.on('message', (d: Buffer) => messages.push(d.toString('utf8')));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    ws.send('ping through the tunnel');
    await waitFor(() => messages.length === 2, 10_000, 'greeting and echo');
    assert.deepEqual(messages, [`hello 127.0.0.1:${target.port}`, 'ping through the tunnel']);
    ws.close();
    await new Promise((r) => ws.once('close', r));
    assert.match(await logLine('GET dave.tunnel.localhost /ws?auth=0 '), / 401 \d+ -$/);
    assert.match(await logLine('GET dave.tunnel.localhost /ws?auth=1 '), new RegExp(` 101 \\d+ ${USER}$`));
  });

  test("the tunnel's own handshake went through basicauth and log: 401 without, 101 with", async () => {
    assert.match(await logLine('GET dave.tunnel.localhost /_nodecaddy/tunnel 401 '), / -$/);
    // Logged when the socket is taken over (the session is still up).
    assert.match(await logLine('GET dave.tunnel.localhost /_nodecaddy/tunnel 101 '), new RegExp(` ${USER}$`));
  });
});
