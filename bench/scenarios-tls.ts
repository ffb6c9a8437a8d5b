// The HTTPS scenarios: the 1 KB file over TLS with the same certificate in every server (bench/tls.ts), loaded
// three ways: HTTP/1.1 keep-alive (wrk), HTTP/2 (h2load) and a new TLS connection per request (s_time).
// Every site is the listener's catch-all, so the certificate is served whatever the client's SNI (h2load and
// s_time send none for 127.0.0.1, wrk sends the IP), and nodecaddy adds no HTTP → HTTPS redirect listener.
// TLS 1.2 and 1.3 in all three (nginx 1.22 still enables 1.0 and 1.1 by default).
import type { Env, Scenario } from './scenarios.js';

function certOf(e: Env) {
  if (!e.cert) throw new Error('the HTTPS scenarios need the run certificate (bench/tls.ts)');
  return e.cert;
}

const BYTES = 1024;

const httpsSite = (
  id: string,
  title: string,
  load: Scenario['load'],
  extra: Partial<Scenario> = {},
): Scenario => ({
  id,
  title,
  path: '/1k.html',
  tls: true,
  load,
  bytes: BYTES,
  check: (status, _h, bytes) =>
    status !== 200 ? `status ${status}` : bytes === BYTES ? undefined : `body of ${bytes} bytes`,
  nginx: (port, e) =>
    `server {\n  listen 127.0.0.1:${port} ssl http2;\n  ssl_certificate ${certOf(e).certFile};\n` +
    `  ssl_certificate_key ${certOf(e).keyFile};\n  ssl_protocols TLSv1.2 TLSv1.3;\n  root ${e.files};\n}\n`,
  caddy: (port, e) =>
    `https://:${port} {\n  bind 127.0.0.1\n  tls ${certOf(e).certFile} ${certOf(e).keyFile}\n` +
    `  root * ${e.files}\n  file_server\n}\n`,
  nodecaddy: (port, e) =>
    `https://:${port} {\n  bind 127.0.0.1\n  tls ${certOf(e).certFile} ${certOf(e).keyFile}\n  root ${e.files}\n}\n`,
  ...extra,
});

export const TLS_SCENARIOS: Scenario[] = [
  httpsSite('tls-1k', '1k file, HTTPS, HTTP/1.1 keep-alive', 'wrk'),
  httpsSite('h2-1k', '1k file, HTTPS, HTTP/2 (10 streams per connection)', 'h2load', { streams: 10 }),
  // 16 clients keep every server's workers busy with handshakes (each client waits for its own answer); more
  // would only add client processes competing for the same two cores.
  httpsSite('tls-handshake', 'new TLS 1.3 connection per request (1k file)', 'handshakes', {
    connections: 16,
  }),
];
