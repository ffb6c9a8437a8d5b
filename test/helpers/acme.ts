// The real nodecaddy against a test ACME CA (test/helpers/pebble.ts): the flags and environment that point its
// automatic HTTPS at Pebble, whose validations come to -http-port and -https-port.
import type { Pebble } from './pebble.js';
import { startNodecaddy, type Nodecaddy, type StartOptions } from './process.js';

export interface AcmeServe {
  readonly pebble: Pebble;
  /** The ports Pebble validates on (its httpPort and tlsPort). */
  readonly httpPort: number;
  readonly httpsPort: number;
  /** The data folder (certificates and accounts). */
  readonly data: string;
  readonly workers?: number;
}

/** nodecaddy's flags for automatic HTTPS at Pebble (agreed, on Pebble's validation ports). */
export function acmeFlags(a: AcmeServe): string[] {
  return [
    '-agree',
    '-ca',
    a.pebble.directoryUrl,
    '-http-port',
    String(a.httpPort),
    '-https-port',
    String(a.httpsPort),
    '-data',
    a.data,
    '-workers',
    String(a.workers ?? 1),
  ];
}

/** Starts nodecaddy on the Caddyfile with automatic HTTPS at Pebble (whose own CA it trusts). */
export function startWithAcme(
  conf: string,
  a: AcmeServe,
  extraFlags: readonly string[] = [],
  opts: StartOptions = {},
): Promise<Nodecaddy> {
  return startNodecaddy(['-conf', conf, ...acmeFlags(a), ...extraFlags], {
    ...opts,
    env: { NODE_EXTRA_CA_CERTS: a.pebble.caFile, ...opts.env },
  });
}
