// Automatic HTTPS as the runtime sees it: before a config serves, the certificates its names have in storage
// reach the server processes; once it serves, the manager obtains and renews the rest in the background.
import type { Config } from '../../app.js';
import type { ConfigCertificates } from '../../runtime.js';
import type { CertificateManager } from './manager.js';
import { acmePlanOf, type AcmeFlags } from './plan.js';

export function automaticHttps(manager: CertificateManager, flags: AcmeFlags): ConfigCertificates {
  return {
    prepare: (config: Config) => manager.prepare(acmePlanOf(config.sites, flags)),
    commit: (config: Config) => manager.commit(acmePlanOf(config.sites, flags)),
    stop: () => manager.stop(),
  };
}
