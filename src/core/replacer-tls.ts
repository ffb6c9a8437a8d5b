// TLS placeholders: protocol, cipher and the client certificate's fields, shown the way Caddy v1 (Go) shows them.
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { RequestContext } from './context.js';
import { formatCertTime, queryEscape } from './replacer-format.js';
import type { Getter } from './replacer-values.js';

const TLS_PROTOCOLS: Readonly<Record<string, string>> = {
  TLSv1: 'tls1.0',
  'TLSv1.1': 'tls1.1',
  'TLSv1.2': 'tls1.2',
  'TLSv1.3': 'tls1.3',
};

export function tlsSocket(ctx: RequestContext): TLSSocket | undefined {
  const socket = ctx.req.socket as Partial<TLSSocket>;
  return socket.encrypted === true ? (socket as TLSSocket) : undefined;
}

interface ClientCert {
  readonly raw: Buffer;
  readonly fingerprint: string;
  readonly issuer: string;
  readonly subject: string;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

/** Client certificates, parsed once per connection. null = the connection has none. */
const clientCerts = new WeakMap<object, ClientCert | null>();

function clientCert(ctx: RequestContext): ClientCert | null {
  const socket = tlsSocket(ctx);
  if (!socket) return null;
  let cert = clientCerts.get(socket);
  if (cert === undefined) {
    cert = null;
    try {
      const peer = socket.getPeerCertificate();
      if (peer && Buffer.isBuffer(peer.raw) && peer.raw.length > 0) {
        const x509 = new X509Certificate(peer.raw);
        let serial = x509.serialNumber.toLowerCase();
        let z = 0;
        while (z < serial.length - 1 && serial[z] === '0') z++;
        serial = serial.slice(z);
        cert = {
          raw: peer.raw,
          fingerprint: x509.fingerprint256.replaceAll(':', '').toLowerCase(),
          issuer: goDistinguishedName(x509.issuer),
          subject: goDistinguishedName(x509.subject),
          serial,
          notBefore: Date.parse(x509.validFrom),
          notAfter: Date.parse(x509.validTo),
        };
      }
    } catch {
      cert = null;
    }
    clientCerts.set(socket, cert);
  }
  return cert;
}

/** OpenSSL short names → Go's pkix attribute names, in the order Go's Name.ToRDNSequence emits them. */
const GO_DN_ORDER: ReadonlyArray<readonly [string, string]> = [
  ['C', 'C'],
  ['ST', 'ST'],
  ['L', 'L'],
  ['street', 'STREET'],
  ['postalCode', 'POSTALCODE'],
  ['O', 'O'],
  ['OU', 'OU'],
  ['CN', 'CN'],
  ['serialNumber', 'SERIALNUMBER'],
];

/**
 * Go's pkix.Name.String() from Node's multi-line name (`C=US\nO=Acme\, Inc.\nCN=x`, values already RFC 2253
 * escaped): the known attributes regrouped in Go's order (same-type values joined with `+`), reversed and
 * joined with `,`; other attributes come last, under OpenSSL's short name (Go would print their OID and DER).
 */
export function goDistinguishedName(multiline: string): string {
  const known = new Map<string, string[]>();
  const others: string[] = [];
  for (const line of multiline.split('\n')) {
    for (const atv of line.split(' + ')) {
      const eq = atv.indexOf('=');
      if (eq <= 0) continue;
      const type = atv.slice(0, eq);
      const entry = GO_DN_ORDER.find(([sn]) => sn === type);
      if (!entry) {
        others.push(atv);
        continue;
      }
      const list = known.get(entry[1]);
      const value = `${entry[1]}=${atv.slice(eq + 1)}`;
      if (list && (type === 'CN' || type === 'serialNumber'))
        list[0] = value; // single-valued in Go: last wins
      else if (list) list.push(value);
      else known.set(entry[1], [value]);
    }
  }
  const rdns: string[] = [...others];
  for (const [, goName] of GO_DN_ORDER) {
    const list = known.get(goName);
    if (list) rdns.push(list.join('+'));
  }
  return rdns.reverse().join(',');
}

function pemOf(raw: Buffer): string {
  const b64 = raw.toString('base64');
  let out = '-----BEGIN CERTIFICATE-----\n';
  for (let i = 0; i < b64.length; i += 64) out += b64.slice(i, i + 64) + '\n';
  return out + '-----END CERTIFICATE-----\n';
}

function certGetter(f: (c: ClientCert) => string): Getter {
  return (ctx) => {
    const c = clientCert(ctx);
    return c ? f(c) : '';
  };
}

/** The getters of the TLS placeholders, by name. */
export const TLS_GETTERS: ReadonlyArray<readonly [string, Getter]> = [
  [
    'tls_protocol',
    (ctx) => {
      const socket = tlsSocket(ctx);
      if (!socket) return '';
      const p = socket.getProtocol();
      return p ? (TLS_PROTOCOLS[p] ?? 'tls') : 'tls';
    },
  ],
  ['tls_cipher', (ctx) => tlsSocket(ctx)?.getCipher()?.name ?? ''],
  ['tls_client_escaped_cert', certGetter((c) => queryEscape(pemOf(c.raw)))],
  ['tls_client_fingerprint', certGetter((c) => c.fingerprint)],
  ['tls_client_i_dn', certGetter((c) => c.issuer)],
  // Go prints the DER bytes as they are; text cannot carry them, so this is the DER in base64.
  ['tls_client_raw_cert', certGetter((c) => c.raw.toString('base64'))],
  ['tls_client_s_dn', certGetter((c) => c.subject)],
  ['tls_client_serial', certGetter((c) => c.serial)],
  [
    'tls_client_v_end',
    certGetter((c) => (Number.isNaN(c.notAfter) ? '' : formatCertTime(new Date(c.notAfter)))),
  ],
  [
    'tls_client_v_remain',
    certGetter((c) =>
      Number.isNaN(c.notAfter) ? '' : String(Math.trunc((c.notAfter - Date.now()) / 86_400_000)),
    ),
  ],
  [
    'tls_client_v_start',
    certGetter((c) => (Number.isNaN(c.notBefore) ? '' : formatCertTime(new Date(c.notBefore)))),
  ],
];
