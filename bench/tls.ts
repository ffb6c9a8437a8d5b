// The certificate every server of the HTTPS scenarios is given: a throwaway CA and an ECDSA P-256 leaf it signs
// for localhost and 127.0.0.1, made with openssl for each run, so nginx, Caddy 2 and nodecaddy present the same
// chain and do the same signature work per handshake.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface BenchCert {
  /** PEM files each server is pointed at (`ssl_certificate`, Caddy's and nodecaddy's `tls <cert> <key>`). */
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA, for the first-response check (every server must show this run's leaf). */
  readonly ca: string;
  readonly fingerprint256: string;
}

export function makeBenchCert(runDir: string): BenchCert {
  const dir = path.join(runDir, 'tls');
  mkdirSync(dir, { recursive: true });
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.pem'), '-days', '2',
    '-subj', '/CN=nodecaddy bench CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign'); // prettier-ignore
  openssl('req', ...ec, '-keyout', file('leaf.key'), '-out', file('leaf.csr'), '-subj', '/CN=localhost');
  writeFileSync(
    file('leaf.ext'),
    'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n',
  );
  openssl('x509', '-req', '-in', file('leaf.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-days', '2', '-out', file('leaf.pem'), '-extfile', file('leaf.ext')); // prettier-ignore
  const leaf = readFileSync(file('leaf.pem'), 'utf8');
  return {
    certFile: file('leaf.pem'),
    keyFile: file('leaf.key'),
    ca: readFileSync(file('ca.pem'), 'utf8'),
    fingerprint256: new X509Certificate(leaf).fingerprint256,
  };
}
