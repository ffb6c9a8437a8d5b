// Making certificates: node:crypto reads them but cannot create them, so this uses @peculiar/x509 (WebCrypto
// underneath; acme-client builds on the same package). Keys and certificates come out as PEM text.
import { createPrivateKey, KeyObject, webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type * as X509 from '@peculiar/x509';
import type { KeyType } from '../core/tls/config.js';
import { lazyRequire } from '../core/lazy-require.js';

/** Loaded when the first certificate is made (a few MB of heap that most processes never need). */
export const x509 = lazyRequire<typeof X509>('@peculiar/x509', (loaded) =>
  // @peculiar/x509 types its provider with the DOM's Crypto, which this project's lib does not declare.
  loaded.cryptoProvider.set(webcrypto as unknown as Parameters<typeof loaded.cryptoProvider.set>[0]),
);

export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

/** A key pair of the given type, with the signature algorithm that goes with it. */
async function generateKeys(
  type: KeyType,
): Promise<{ keys: webcrypto.CryptoKeyPair; algorithm: webcrypto.AlgorithmIdentifier & object }> {
  if (type === 'P256' || type === 'P384') {
    const namedCurve = type === 'P256' ? 'P-256' : 'P-384';
    const hash = type === 'P256' ? 'SHA-256' : 'SHA-384';
    const algorithm = { name: 'ECDSA', namedCurve, hash };
    const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
    return { keys, algorithm };
  }
  const algorithm = {
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: type === 'RSA2048' ? 2048 : 4096,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: 'SHA-256',
  };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  return { keys, algorithm };
}

function keyPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Subject alternative names: IPs as IP entries, everything else as DNS names. */
function sanExtension(names: readonly string[]): X509.SubjectAlternativeNameExtension {
  return new (x509().SubjectAlternativeNameExtension)(
    names.map((n) => (isIP(n) ? { type: 'ip' as const, value: n } : { type: 'dns' as const, value: n })),
    false,
  );
}

/** Backdated a little: a client whose clock runs slow must not see a certificate from the future. */
function notBefore(): Date {
  return new Date(Date.now() - 60 * 60 * 1000);
}

/** A self-signed leaf for `names` (Caddy v1's `tls self_signed`). */
export async function selfSignedLeaf(
  names: readonly string[],
  type: KeyType,
  validMs: number,
): Promise<PemPair> {
  const { keys, algorithm } = await generateKeys(type);
  const cert = await x509().X509CertificateGenerator.createSelfSigned({
    name: `O=nodecaddy Self-Signed, CN=${names[0]}`,
    keys,
    signingAlgorithm: algorithm,
    notBefore: notBefore(),
    notAfter: new Date(Date.now() + validMs),
    extensions: [...serverLeafExtensions(names)],
  });
  return { cert: cert.toString('pem'), key: keyPem(keys.privateKey) };
}

/** What makes a certificate a TLS server's leaf for `names`: not a CA, signing keys, serverAuth, the SANs. */
function serverLeafExtensions(names: readonly string[]): X509.Extension[] {
  return [
    new (x509().BasicConstraintsExtension)(false, undefined, true),
    new (x509().KeyUsagesExtension)(
      x509().KeyUsageFlags.digitalSignature | x509().KeyUsageFlags.keyEncipherment,
      true,
    ),
    new (x509().ExtendedKeyUsageExtension)([x509().ExtendedKeyUsage.serverAuth]),
    sanExtension(names),
  ];
}

/** A root CA (`tls internal`'s local authority). */
export async function rootCa(commonName: string, validMs: number): Promise<PemPair> {
  const { keys, algorithm } = await generateKeys('P256');
  const cert = await x509().X509CertificateGenerator.createSelfSigned({
    name: `O=nodecaddy, CN=${commonName}`,
    keys,
    signingAlgorithm: algorithm,
    notBefore: notBefore(),
    notAfter: new Date(Date.now() + validMs),
    extensions: [
      new (x509().BasicConstraintsExtension)(true, 0, true),
      new (x509().KeyUsagesExtension)(x509().KeyUsageFlags.keyCertSign | x509().KeyUsageFlags.cRLSign, true),
      await x509().SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem'), key: keyPem(keys.privateKey) };
}

/** A leaf for `names` signed by `ca`. */
export async function signedLeaf(
  ca: PemPair,
  names: readonly string[],
  type: KeyType,
  validMs: number,
): Promise<PemPair> {
  const issuer = new (x509().X509Certificate)(ca.cert);
  const caKey = await importSigningKey(ca.key);
  const { keys } = await generateKeys(type);
  const cert = await x509().X509CertificateGenerator.create({
    subject: `CN=${names[0]}`,
    issuer: issuer.subject,
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    notBefore: notBefore(),
    notAfter: new Date(Math.min(Date.now() + validMs, issuer.notAfter.getTime())),
    extensions: [...serverLeafExtensions(names), await x509().AuthorityKeyIdentifierExtension.create(issuer)],
  });
  return { cert: cert.toString('pem'), key: keyPem(keys.privateKey) };
}

/** The CA's key as a WebCrypto signing key (the local root is always P-256). */
async function importSigningKey(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
}
