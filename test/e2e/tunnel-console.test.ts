// What `nodecaddy tunnel` shows: on a real terminal (a pty from util-linux `script`) a status screen updated
// in place, given back on Ctrl-C; piped, plain lines; with -log-format json, JSON lines.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { waitFor } from '../helpers/http.js';
import { CLI, freePort, tempDir, type Nodecaddy } from '../helpers/process.js';
import {
  SECRET,
  startClient,
  startPublic,
  startTarget,
  text,
  viaTunnel,
  type Target,
} from '../helpers/tunnel.js';

describe('the client on a terminal, piped, and as JSON', () => {
  let tmp: { dir: string; cleanup: () => void };
  let target: Target;
  let server: Nodecaddy;
  let port: number;

  before(async () => {
    tmp = tempDir();
    target = await startTarget();
    port = await freePort();
    server = await startPublic(tmp.dir, port);
  });
  after(async () => {
    await server?.stop();
    await target?.close();
    tmp?.cleanup();
  });

  test('a status screen on a terminal, updated in place; Ctrl-C gives the terminal back', async () => {
    const args = [
      CLI,
      'tunnel',
      '-server',
      `http://tunnel.localhost:${port}`,
      '-dial',
      `127.0.0.1:${port}`,
      '-secret',
      SECRET,
      '-name',
      'screen',
      '-to',
      `127.0.0.1:${target.port}`,
      '-inspect',
      '127.0.0.1:0',
    ];
    // A wide terminal, so that no line is cut at the default 80 columns.
    const command = `stty cols 160 rows 40; exec ${[process.execPath, ...args].map((a) => `'${a}'`).join(' ')}`;
    // `script` runs the client on a new pty; what we write to it is typed at that terminal.
    const pty = spawn('script', ['-qfec', command, '/dev/null'], {
      env: { ...process.env, TERM: 'xterm-256color' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    pty.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exited = new Promise<number | null>((resolve) => pty.once('close', resolve));
    try {
      await waitFor(() => /Session Status\s+(\S+\[\d+m)?online/.test(out), 15_000, `the screen:\n${out}`);
      assert.ok(out.includes('\x1b[?1049h'), 'on the alternate screen');
      for (const field of ['Forwarding', 'Web Interface', 'Latency', 'Connections', 'HTTP Requests']) {
        assert.ok(out.includes(field), field);
      }
      assert.match(
        out,
        new RegExp(`http://screen\\.tunnel\\.localhost:${port} -> http://127\\.0\\.0\\.1:${target.port}`),
      );
      assert.match(out, /Web Interface\s+http:\/\/127\.0\.0\.1:\d+/);
      await text(await viaTunnel(port, 'screen', '/echo?screen=1'));
      // The request appears with its time; the counters above it move (ttl 1).
      await waitFor(
        () => /\d\d:\d\d:\d\d\.\d{3} {2}GET \/echo\?screen=1 200 \d+ms/.test(out),
        10_000,
        'the line',
      );
      await waitFor(() => /Traffic \(server\)\s+1 requests/.test(out), 10_000, 'the server counters');
      pty.stdin.write('\x03'); // Ctrl-C at the terminal
      assert.equal(await exited, 0);
      assert.ok(
        out.lastIndexOf('\x1b[?1049l') > out.lastIndexOf('Session Status'),
        'the screen was given back',
      );
      assert.ok(out.includes('\x1b[?25h'), 'the cursor is shown again');
    } finally {
      if (pty.exitCode === null) pty.kill('SIGKILL');
    }
  });

  test('piped: plain lines; -log-format json: JSON lines', async () => {
    const plain = await startClient(port, 'plain', target.port);
    await text(await viaTunnel(port, 'plain', '/echo?plain=1'));
    await waitFor(() => /^GET \/echo\?plain=1 200 \d+ms$/m.test(plain.stdout()), 5000, 'a plain line');
    assert.ok(!plain.stdout().includes('\x1b['), 'no escape codes when piped');
    await plain.stop('SIGINT');

    const json = await startClient(port, 'json', target.port, { wait: false, args: ['-log-format', 'json'] });
    const lines = () =>
      json
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await waitFor(() => lines().some((l) => String(l.msg).startsWith('Forwarding')), 10_000, 'online');
    await text(await viaTunnel(port, 'json', '/echo?json=1'));
    const line = await waitFor(() => lines().find((l) => l.msg === 'request'), 5000, 'a request line');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/echo?json=1');
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration_ms, 'number');
    assert.equal(typeof line.time, 'string');
    await json.stop('SIGINT');
  });
});
