// The instances of a cluster tell each other about certificates through Redis (scale.md §6.3): a `cert`
// message after each one stored, the link's ready event as "rescan" (pub/sub loses what is sent while a
// subscriber is away), and the on-demand limits counted in Redis so that they hold for the whole cluster:
//   {nc}/ondemand/issued/<site>   set of the names that have a certificate on demand (max_certs)
//   {nc}/ondemand/orders          sorted set of order times in the last minute (the 10-a-minute throttle)
import { randomBytes } from 'node:crypto';
import type { CertificatePeers } from '../certs/acme/peers.js';
import type { OnDemandCounters } from '../certs/acme/on-demand.js';
import type { Logger } from '../core/logger.js';
import { RedisUnavailable, type RedisLink } from './redis.js';

const CERT_CHANNEL = 'cert';

/** Takes a slot of the window when there is one: drops times older than the window, counts, adds. */
const SLOT_SCRIPT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

interface CertMessage {
  readonly from: string;
  readonly ca: string;
  readonly subject: string;
}

export class RedisCertificatePeers implements CertificatePeers {
  readonly onDemand: OnDemandCounters;
  /** Tells this process's own messages from the others'. */
  private readonly id = randomBytes(8).toString('hex');

  constructor(
    private readonly link: RedisLink,
    private readonly log: Logger,
  ) {
    this.onDemand = new RedisOnDemandCounters(link);
  }

  announce(ca: string, subject: string): void {
    const message: CertMessage = { from: this.id, ca, subject };
    void this.link.publish(CERT_CHANNEL, JSON.stringify(message));
  }

  onAnnounce(listener: (ca: string, subject: string) => void): void {
    void this.link.subscribe(CERT_CHANNEL, (text) => {
      let m: Partial<CertMessage>;
      try {
        m = JSON.parse(text) as Partial<CertMessage>;
      } catch {
        return;
      }
      if (m.from === this.id || typeof m.ca !== 'string' || typeof m.subject !== 'string') return;
      try {
        listener(m.ca, m.subject);
      } catch (err) {
        this.log.error({ err, subject: m.subject }, 'a certificate from another instance was not loaded');
      }
    });
  }

  onResync(listener: () => void): void {
    this.link.onReady(listener);
  }

  isOutage(err: unknown): boolean {
    return err instanceof RedisUnavailable;
  }
}

class RedisOnDemandCounters implements OnDemandCounters {
  constructor(private readonly link: RedisLink) {}

  private issuedKey(site: string): string {
    return this.link.key('ondemand', 'issued', encodeURIComponent(site));
  }

  async issued(site: string, name: string): Promise<{ count: number; has: boolean }> {
    const [count, has] = await this.link.run('on-demand count', (c) =>
      c.multi().sCard(this.issuedKey(site)).sIsMember(this.issuedKey(site), name).exec(),
    );
    return { count: Number(count), has: Number(has) === 1 };
  }

  async markIssued(site: string, name: string): Promise<void> {
    await this.link.run('on-demand issued', (c) => c.sAdd(this.issuedKey(site), name));
  }

  async takeOrderSlot(windowMs: number, max: number): Promise<boolean> {
    const now = Date.now();
    const taken = await this.link.run('on-demand throttle', (c) =>
      c.eval(SLOT_SCRIPT, {
        keys: [this.link.key('ondemand', 'orders')],
        arguments: [String(now), String(windowMs), String(max), `${now}-${randomBytes(4).toString('hex')}`],
      }),
    );
    return Number(taken) === 1;
  }
}
