// Certificates for tests, made with openssl in a temp dir: a self-signed leaf, or a private CA and leaves it signs.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface KeyPair {
  readonly keyFile: string;
  readonly certFile: string;
  readonly key: Buffer;
  readonly cert: Buffer;
}

function sanList(names: readonly string[]): string {
  return names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
}

/** A self-signed EC P-256 certificate for `names` (DNS names or IPs), valid one day. */
export function selfSigned(dir: string, base: string, names: readonly string[]): KeyPair {
  const keyFile = path.join(dir, `${base}.key`);
  const certFile = path.join(dir, `${base}.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', `/CN=${names[0]}`,
    '-addext', `subjectAltName=${sanList(names)}`,
  ], { stdio: 'ignore' }); // prettier-ignore
  return { keyFile, certFile, key: readFileSync(keyFile), cert: readFileSync(certFile) };
}

/** A private CA (self-signed, may sign leaves). */
export function testCa(dir: string, base = 'ca'): KeyPair {
  const keyFile = path.join(dir, `${base}.key`);
  const certFile = path.join(dir, `${base}.pem`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=nodecaddy test CA ${base}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ], { stdio: 'ignore' }); // prettier-ignore
  return { keyFile, certFile, key: readFileSync(keyFile), cert: readFileSync(certFile) };
}

/** A leaf for `names` signed by `ca`; `clientAuth` makes it a client certificate. */
export function signedBy(
  ca: KeyPair,
  dir: string,
  base: string,
  names: readonly string[],
  opts: { clientAuth?: boolean; days?: number } = {},
): KeyPair {
  const keyFile = path.join(dir, `${base}.key`);
  const certFile = path.join(dir, `${base}.pem`);
  const csr = path.join(dir, `${base}.csr`);
  const ext = path.join(dir, `${base}.ext`);
  execFileSync('openssl', [
    'req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', csr, '-subj', `/CN=${names[0]}`,
  ], { stdio: 'ignore' }); // prettier-ignore
  writeFileSync(
    ext,
    `subjectAltName=${sanList(names)}\nextendedKeyUsage=${opts.clientAuth ? 'clientAuth' : 'serverAuth'}\n`,
  );
  execFileSync('openssl', [
    'x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial',
    '-days', String(opts.days ?? 1), '-out', certFile, '-extfile', ext,
  ], { stdio: 'ignore' }); // prettier-ignore
  return { keyFile, certFile, key: readFileSync(keyFile), cert: readFileSync(certFile) };
}
