// The DNS-01 hook of `tls { dns exec <command> [args...] }`, in the convention of lego's exec provider: the
// command is run (no shell) with `present <fqdn> <value>` before the CA is told to look, and with
// `cleanup <fqdn> <value>` after, where fqdn is `_acme-challenge.<domain>.` (trailing dot) and value the TXT
// record's content. A command that fails or hangs fails the challenge with a message that says why.
import { spawn } from 'node:child_process';

/** DNS-01: puts and removes the TXT record `value` at `fqdn` (`_acme-challenge.example.com.`). */
export interface DnsHook {
  present(fqdn: string, value: string): Promise<void>;
  cleanup(fqdn: string, value: string): Promise<void>;
}

export interface DnsExecOptions {
  /** The command is killed (with everything it started) after this long; default 60 s. */
  readonly timeoutMs?: number;
  /** Environment added to nodecaddy's own. */
  readonly env?: Readonly<Record<string, string>>;
}

export const DNS_EXEC_TIMEOUT_MS = 60_000;
/** How much of a failed command's output its error quotes. */
const ERROR_LINES = 5;
const ERROR_LINE_CHARS = 300;

/** The TXT record name of a DNS-01 challenge for `domain` (`*.example.com` -> `_acme-challenge.example.com.`). */
export function dns01Fqdn(domain: string): string {
  const name = domain.replace(/^\*\./, '').replace(/\.$/, '');
  return `_acme-challenge.${name}.`;
}

/** The end of a command's output (a chatty command must not fill memory). */
class OutputTail {
  text = '';
  add(chunk: string): void {
    this.text = (this.text + chunk).slice(-16 * 1024);
  }
}

/** The last few lines of a command's output, for an error message. */
function tail(output: string): string {
  const lines = output
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '')
    .slice(-ERROR_LINES);
  return lines.map((l) => (l.length > ERROR_LINE_CHARS ? `${l.slice(0, ERROR_LINE_CHARS)}…` : l)).join('\n');
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function dnsExecHook(command: readonly string[], opts: DnsExecOptions = {}): DnsHook {
  const [file, ...args] = command;
  if (file === undefined || file === '') throw new Error('dns exec: no command given');
  const timeoutMs = opts.timeoutMs ?? DNS_EXEC_TIMEOUT_MS;
  const env = opts.env ? { ...process.env, ...opts.env } : process.env;

  const run = (action: 'present' | 'cleanup', fqdn: string, value: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const argv = [...args, action, fqdn, value];
      const what = `dns exec hook \`${[file, ...args, action, fqdn].map(quote).join(' ')} <value>\``;
      let timedOut = false;
      // spawn as execFile does (no shell), but in a process group of its own: a timeout then kills what a
      // script started too (a `sleep`, a `curl`), which would otherwise hold its output open.
      const child = spawn(file, argv, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      const stdout = new OutputTail();
      const stderr = new OutputTail();
      child.stdout.setEncoding('utf8').on('data', (d: string) => stdout.add(d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => stderr.add(d));
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child.pid);
      }, timeoutMs);
      let spawnError: Error | undefined;
      child.once('error', (err) => (spawnError = err));
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        if (code === 0 && !spawnError) return resolve();
        const output = tail(stderr.text) || tail(stdout.text);
        const why = spawnError
          ? `could not be run: ${spawnError.message}`
          : timedOut
            ? `timed out after ${timeoutMs} ms and was killed`
            : code !== null
              ? `exited with code ${code}`
              : `was killed by ${signal ?? 'a signal'}`;
        reject(new Error(`${what} ${why}${output ? `:\n${output}` : ''}`, { cause: spawnError }));
      });
    });

  return {
    present: (fqdn, value) => run('present', fqdn, value),
    cleanup: (fqdn, value) => run('cleanup', fqdn, value),
  };
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
}
