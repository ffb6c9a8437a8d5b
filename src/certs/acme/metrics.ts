// Automatic HTTPS in the metrics, from the process that manages certificates (the primary, or the only one):
// orders by result, and when each managed certificate expires (an alert on "expires within N days" catches a
// renewal that keeps failing).
import { registerCollector } from '../../core/metrics/registry.js';

let succeeded = 0;
let failed = 0;
const expiry = new Map<string, number>();

export function recordOrder(ok: boolean): void {
  if (ok) succeeded++;
  else failed++;
}

/** The certificate served for the subject now expires at notAfter (ms). */
export function recordCertificate(subject: string, notAfter: number): void {
  expiry.set(subject, notAfter / 1000);
}

registerCollector(() =>
  succeeded + failed + expiry.size === 0
    ? []
    : [
        {
          name: 'nodecaddy_acme_orders_total',
          help: 'Certificate orders (and renewals) at ACME CAs, by result.',
          type: 'counter',
          labelNames: ['result'],
          merge: 'sum',
          series: [
            { labels: ['success'], value: succeeded },
            { labels: ['failure'], value: failed },
          ],
        },
        {
          name: 'nodecaddy_tls_certificate_expiry_timestamp_seconds',
          help: 'When each certificate from automatic HTTPS expires (Unix time), by subject.',
          type: 'gauge',
          labelNames: ['subject'],
          merge: 'min',
          series: [...expiry].map(([subject, value]) => ({ labels: [subject], value })),
        },
      ],
);
