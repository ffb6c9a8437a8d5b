// `nodecaddy reload`: sends a Caddyfile to the running server's admin endpoint (POST /load), as `caddy
// reload` does, and says what happened: reloaded, unchanged, or the error with its file and line.
import http from '../core/node-http.js';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { DEFAULT_ADMIN, parseAdminAddress, type AdminAddress } from '../admin/address.js';
import { FlagError, formatUsage, parseFlags, type FlagSpec } from './flags.js';

export const RELOAD_FLAGS: readonly FlagSpec[] = [
  {
    name: 'admin',
    type: 'string',
    default: '',
    usage: `Admin endpoint of the running server (default $NODECADDY_ADMIN, else ${DEFAULT_ADMIN})`,
  },
  { name: 'conf', type: 'string', default: 'Caddyfile', usage: 'Caddyfile to load' },
  { name: 'force', type: 'bool', default: 'false', usage: 'Reload even if the Caddyfile did not change' },
];

const USAGE = `Usage: nodecaddy reload [-admin ADDR] [-conf FILE] [-force]

Loads FILE into the running nodecaddy through its admin endpoint. The new config
replaces the running one only if all of it loads (as on a save of the Caddyfile);
otherwise the server keeps serving and this prints the error with its file and
line, and exits 1. Imports resolve beside the server's own Caddyfile.

Flags:
`;

function usageError(message: string): never {
  process.stderr.write(`${message}\n${USAGE}${formatUsage(RELOAD_FLAGS)}\n`);
  process.exit(2);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

export async function reloadMain(argv: string[]): Promise<void> {
  let flags;
  try {
    flags = parseFlags(RELOAD_FLAGS, argv);
  } catch (err) {
    if (err instanceof FlagError && err.help) {
      process.stdout.write(`${USAGE}${formatUsage(RELOAD_FLAGS)}\n`);
      process.exit(0);
    }
    usageError((err as Error).message);
  }
  if (flags.positional.length > 0) usageError(`unexpected argument: ${flags.positional[0]}`);
  const flag = (name: string) => flags.values.get(name)!;
  let admin: AdminAddress | undefined;
  try {
    admin = parseAdminAddress(flag('admin') || process.env.NODECADDY_ADMIN || DEFAULT_ADMIN);
  } catch (err) {
    usageError((err as Error).message);
  }
  if (!admin) usageError('-admin off: there is no admin endpoint to send the Caddyfile to');
  const conf = flag('conf');
  let text: string;
  try {
    text = readFileSync(path.resolve(conf), 'utf8');
  } catch (err) {
    fail(`reading ${conf}: ${(err as Error).message}`);
  }
  const answer = await post(admin, text, flag('force') === 'true').catch((err: Error) =>
    fail(
      `cannot reach the admin endpoint at ${admin.display}: ${err.message} ` +
        '(is nodecaddy running, with -admin set to this address?)',
    ),
  );
  let body: { status?: string; error?: string } = {};
  try {
    body = JSON.parse(answer.body) as typeof body;
  } catch {
    body = { error: answer.body.trim() };
  }
  if (answer.status !== 200) fail(body.error ?? `the admin endpoint answered ${answer.status}`);
  process.stdout.write(
    body.status === 'unchanged'
      ? 'config unchanged, not reloaded (-force reloads anyway)\n'
      : 'config reloaded\n',
  );
}

function post(admin: AdminAddress, text: string, force: boolean): Promise<{ status: number; body: string }> {
  // A wildcard address is reached on loopback; the Host names the endpoint as the user gave it.
  const host = admin.host === '0.0.0.0' || admin.host === '::' ? '127.0.0.1' : admin.host;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host,
        port: admin.port,
        method: 'POST',
        path: '/load',
        setHost: false,
        headers: {
          host: admin.display,
          'content-type': 'text/caddyfile',
          'content-length': Buffer.byteLength(text),
          ...(force && { 'cache-control': 'must-revalidate' }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    // A reload waits for every worker to build and bind the new config: allow it the primary's own limit.
    req.setTimeout(120_000, () => req.destroy(new Error('no answer within 120 s')));
    req.on('error', reject);
    req.end(text);
  });
}
