// Placeholder until the acme-storage branch lands: `tls { dns exec <command> }` runs the command.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { DnsHook } from './issuer.js';

const run = promisify(execFile);

export function dnsExecHook(command: readonly string[]): DnsHook {
  const [file, ...args] = command;
  return {
    async present(fqdn, value) {
      await run(file, [...args, 'present', fqdn, value], { timeout: 60_000 });
    },
    async cleanup(fqdn, value) {
      await run(file, [...args, 'cleanup', fqdn, value], { timeout: 60_000 });
    },
  };
}
