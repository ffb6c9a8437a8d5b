// PEM certificates and keys as the `tls` directive reads them: a chain and a key that must belong together
// (checked at load, so a mismatched pair is a load error with file:line, never a failed handshake later),
// haproxy-style bundles (`load <dir>`), and the names a certificate is valid for.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { CertPair } from './config.js';

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** The PEM blocks of a text, with their types. */
function pemBlocks(text: string): { type: string; pem: string }[] {
  return [...text.matchAll(BLOCK)].map((m) => ({ type: m[1], pem: m[0] }));
}

/** The DNS names and IPs a certificate is valid for: its SANs, else its CN (as Go's legacy fallback). */
export function certificateNames(cert: X509Certificate): string[] {
  const names: string[] = [];
  for (const entry of (cert.subjectAltName ?? '').split(/,\s*/)) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4).toLowerCase());
    else if (entry.startsWith('IP Address:')) names.push(entry.slice(11).toLowerCase());
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
    if (cn) names.push(cn.toLowerCase());
  }
  return names;
}

/** Checks a chain and key that were read from files; throws a readable Error. */
export function certPair(certFile: string, keyFile: string, certText: string, keyText: string): CertPair {
  const certs = pemBlocks(certText).filter((b) => b.type === 'CERTIFICATE');
  if (certs.length === 0) throw new Error(`${certFile}: no PEM certificate found`);
  const keys = pemBlocks(keyText).filter((b) => b.type.endsWith('PRIVATE KEY'));
  if (keys.length === 0) throw new Error(`${keyFile}: no PEM private key found`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certs[0].pem);
  } catch (err) {
    throw new Error(`${certFile}: ${(err as Error).message}`, { cause: err });
  }
  let key;
  try {
    key = createPrivateKey(keys[0].pem);
  } catch (err) {
    throw new Error(`${keyFile}: ${(err as Error).message}`, { cause: err });
  }
  if (!leaf.checkPrivateKey(key))
    throw new Error(`the private key in ${keyFile} does not belong to the certificate in ${certFile}`);
  return {
    certFile,
    keyFile,
    cert: certs.map((c) => c.pem).join('\n'),
    key: keys[0].pem,
    names: certificateNames(leaf),
  };
}

/** `tls <cert> <key>`: reads both files (relative to cwd) and checks them. */
export function readCertPair(cwd: string, certPath: string, keyPath: string): CertPair {
  const certFile = path.resolve(cwd, certPath);
  const keyFile = path.resolve(cwd, keyPath);
  return certPair(certFile, keyFile, readFileSync(certFile, 'utf8'), readFileSync(keyFile, 'utf8'));
}

/**
 * `load <dir>`: every `*.pem` under the folder (recursively) is one bundle holding the chain and the key, as
 * haproxy keeps them (Caddy v1's rules: any other block type is an error).
 */
export function loadCertFolder(dir: string): CertPair[] {
  const pairs: CertPair[] = [];
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const file = path.join(folder, entry.name);
      if (entry.isDirectory() || (entry.isSymbolicLink() && statSync(file).isDirectory())) walk(file);
      else if (entry.name.toLowerCase().endsWith('.pem')) {
        const text = readFileSync(file, 'utf8');
        for (const b of pemBlocks(text)) {
          if (b.type !== 'CERTIFICATE' && !b.type.endsWith('PRIVATE KEY') && b.type !== 'EC PARAMETERS')
            throw new Error(`${file}: unrecognized PEM block type: ${b.type}`);
        }
        pairs.push(certPair(file, file, text, text));
      }
    }
  };
  walk(dir);
  if (pairs.length === 0) throw new Error(`no .pem bundles (certificate and key) in ${dir}`);
  return pairs;
}

/** The PEM certificates in a CA file (`clients`); none is an error. */
export function readCaFile(cwd: string, file: string): string[] {
  const full = path.resolve(cwd, file);
  const certs = pemBlocks(readFileSync(full, 'utf8'))
    .filter((b) => b.type === 'CERTIFICATE')
    .map((b) => b.pem);
  for (const pem of certs) new X509Certificate(pem);
  if (certs.length === 0) throw new Error(`${full}: no PEM certificate found`);
  return certs;
}
