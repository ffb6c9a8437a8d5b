// Automatic HTTPS on a storage that several instances share (-storage redis://…): the certificate manager of
// this instance (in the primary, or the single server process) gets the RedisStorage, a sink that also puts
// pending challenges in storage (whichever instance the CA's validation reaches answers it), and the link to
// the other instances' managers. The server processes look up challenges they lack: the single process in
// storage itself, workers through their primary.
import { RedisStorage } from '../certs/redis-storage.js';
import { StoredChallenges, storingChallenges } from '../certs/shared-challenges.js';
import type { CertificateSink } from '../certs/sink.js';
import type { CertificatePeers } from '../certs/acme/peers.js';
import type { Logger } from '../core/logger.js';
import { setChallengeSource } from '../core/tls/challenge-lookup.js';
import { RedisCertificatePeers } from './cert-peers.js';
import { answerChallengeLookups } from './challenge-relay.js';
import type { RedisLink } from './redis.js';

export interface SharedCertificates {
  readonly storage: RedisStorage;
  readonly sink: CertificateSink;
  readonly peers: CertificatePeers;
}

/** For the manager's process; `withWorkers`: the server processes are this primary's workers. */
export function sharedCertificates(
  link: RedisLink,
  secret: string,
  sink: CertificateSink,
  withWorkers: boolean,
  log: Logger,
): SharedCertificates {
  const storage = new RedisStorage({ link, secret, log });
  const challenges = new StoredChallenges(storage);
  if (withWorkers) answerChallengeLookups(challenges);
  else setChallengeSource(challenges);
  return {
    storage,
    sink: storingChallenges(sink, storage, log),
    peers: new RedisCertificatePeers(link, log),
  };
}
