// Where the certificate manager's results go: the server processes. In one process they are the process-wide
// maps of core/tls/managed.ts; with workers, the cluster primary (the only ACME client) broadcasts them and waits
// for every worker's acknowledgement (src/cluster), so that a challenge is answerable by whichever worker the
// CA's validation requests reach before the CA is told to validate.
import {
  dropChallenge,
  managedCertificates,
  putChallenge,
  type AcmeChallenge,
  type PemPair,
} from '../core/tls/managed.js';

export interface CertificateSink {
  /** Every server process serves `pem` for `subject` from its next handshake; resolves once all have it. */
  putCertificate(subject: string, pem: PemPair, notAfter: number): Promise<void>;
  /** Every server process answers the challenge; resolves once all acknowledged it. */
  putChallenge(challenge: AcmeChallenge): Promise<void>;
  /** The challenge is done (validated or failed): forget it everywhere. */
  dropChallenge(challenge: AcmeChallenge): Promise<void>;
}

/** The sink of a single server process: this process's own maps. */
export const localSink: CertificateSink = {
  putCertificate(subject, pem, notAfter) {
    managedCertificates.put(subject, pem, notAfter);
    return Promise.resolve();
  },
  putChallenge(challenge) {
    putChallenge(challenge);
    return Promise.resolve();
  },
  dropChallenge(challenge) {
    dropChallenge(challenge);
    return Promise.resolve();
  },
};
