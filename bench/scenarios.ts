// The scenarios, and for each one the equivalent site in nginx, Caddy 2 and nodecaddy syntax.
// Access logs are off in all three servers; keep-alive is on; the same files and backends are used.
import type { BenchCert } from './tls.js';
import { TLS_SCENARIOS } from './scenarios-tls.js';

export type ServerName = 'nginx' | 'caddy' | 'nodecaddy' | 'direct';

export interface Env {
  /** Generated files (1k.html, 100k.bin, 10m.bin, page.html, list/). */
  files: string;
  /** Directory with index.php for php-fpm. */
  php: string;
  backendPort: number;
  phpPort: number;
  tunnelSecret: string;
  /** The endless TCP stream of the TCP scenarios (bench/tcpsource.ts). */
  tcpSourcePort: number;
  /** Public ports the tunnel site hands to TCP tunnels. */
  tcpPorts: { from: number; to: number };
  /** The certificate of the HTTPS scenarios (made only when one of them runs). */
  cert: BenchCert | undefined;
}

export interface Scenario {
  id: string;
  title: string;
  path: string;
  headers?: Record<string, string>;
  /** wrk connections for this scenario when fewer than the default make sense (big files). */
  connections?: number;
  /** Servers to run (default nginx, caddy, nodecaddy). */
  servers?: ServerName[];
  /** Needs the backend / php-fpm / the TCP source started. */
  needs?: ('backend' | 'php' | 'tcpsource')[];
  /**
   * A raw TCP scenario: instead of wrk, `connections` sockets read the TCP source's stream (directly, or
   * through a TCP tunnel) and the row is the bytes per second read.
   */
  tcp?: boolean;
  /** Show each server's body size (of its first response, as sent) beside its name. */
  showBody?: boolean;
  /** Sanity check of the first response (same for every server); returns a problem or undefined. */
  check?: (status: number, headers: Record<string, unknown>, bytes: number) => string | undefined;
  nginx?: (port: number, e: Env) => string;
  caddy?: (port: number, e: Env) => string;
  nodecaddy?: (port: number, e: Env) => string;
  /** nodecaddy scenarios that need a `nodecaddy tunnel` client beside the server (-tcp for a TCP scenario). */
  tunnelClient?: boolean;
  /** Served over HTTPS with the run's certificate (Env.cert). */
  tls?: boolean;
  /**
   * The load: `wrk` (HTTP/1.1 keep-alive, the default), `h2load` (HTTP/2, `streams` per connection) or
   * `handshakes` (a new TLS connection per request, bench/handshakes.ts).
   */
  load?: 'wrk' | 'h2load' | 'handshakes';
  streams?: number;
  /** The answer's body size, checked by a load that does not parse HTTP (handshakes). */
  bytes?: number;
}

const ok200 = (status: number) => (status === 200 ? undefined : `status ${status}`);
const size = (n: number) => (status: number, _h: Record<string, unknown>, bytes: number) =>
  ok200(status) ?? (bytes === n ? undefined : `body of ${bytes} bytes, expected ${n}`);

const staticSite = (name: string, path: string, bytes: number, connections?: number): Scenario => ({
  id: name,
  title: `${name} file`,
  path,
  connections,
  check: size(bytes),
  nginx: (port, e) => `server {\n  listen 127.0.0.1:${port};\n  root ${e.files};\n}\n`,
  caddy: (port, e) => `http://:${port} {\n  bind 127.0.0.1\n  root * ${e.files}\n  file_server\n}\n`,
  nodecaddy: (port, e) => `:${port} {\n  bind 127.0.0.1\n  root ${e.files}\n}\n`,
});

/** The bench page from the backend through each server, gzipped at these levels; rows show the body size. */
const gzipProxySite = (
  id: string,
  title: string,
  level: { nginx: number; caddy: number; nodecaddy: number },
): Scenario => ({
  id,
  title,
  path: '/page.html',
  needs: ['backend'],
  headers: { 'Accept-Encoding': 'gzip' },
  showBody: true,
  check: (status, h) =>
    ok200(status) ?? (h['content-encoding'] === 'gzip' ? undefined : 'response not gzipped'),
  nginx: (port, e) =>
    `upstream backend {\n  server 127.0.0.1:${e.backendPort};\n  keepalive 64;\n}\nserver {\n  listen 127.0.0.1:${port};\n  gzip on;\n  gzip_comp_level ${level.nginx};\n  gzip_vary on;\n  gzip_proxied any;\n  location / {\n    proxy_pass http://backend;\n    proxy_http_version 1.1;\n    proxy_set_header Connection "";\n  }\n}\n`,
  caddy: (port, e) =>
    `http://:${port} {\n  bind 127.0.0.1\n  encode {\n    gzip ${level.caddy}\n  }\n  reverse_proxy 127.0.0.1:${e.backendPort}\n}\n`,
  nodecaddy: (port, e) =>
    `:${port} {\n  bind 127.0.0.1\n  gzip {\n    level ${level.nodecaddy}\n  }\n  proxy / 127.0.0.1:${e.backendPort} {\n    keepalive 64\n  }\n}\n`,
});

/** Idle connections to php-fpm each nginx worker keeps (`keepalive` of its upstream). */
export const NGINX_FASTCGI_KEEPALIVE = 16;

/** php-fpm's echo through each server; `pool` is the body of nodecaddy's `fastcgi` block ('' for none). */
const fastcgiSite = (id: string, title: string, pool: string): Scenario => ({
  id,
  title,
  path: '/index.php',
  needs: ['php'],
  check: (status) => ok200(status),
  nginx: (port, e) =>
    `upstream php {\n  server 127.0.0.1:${e.phpPort};\n  keepalive ${NGINX_FASTCGI_KEEPALIVE};\n}\nserver {\n  listen 127.0.0.1:${port};\n  root ${e.php};\n  location ~ \\.php$ {\n    include /etc/nginx/fastcgi_params;\n    fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n    fastcgi_keep_conn on;\n    fastcgi_pass php;\n  }\n}\n`,
  caddy: (port, e) =>
    `http://:${port} {\n  bind 127.0.0.1\n  root * ${e.php}\n  php_fastcgi 127.0.0.1:${e.phpPort}\n}\n`,
  nodecaddy: (port, e) =>
    `:${port} {\n  bind 127.0.0.1\n  root ${e.php}\n  fastcgi / 127.0.0.1:${e.phpPort} php${pool ? ` {\n    ${pool}\n  }` : ''}\n}\n`,
});

export const TUNNEL_HOST = 'bench.tunnel.localhost';

export const SCENARIOS: Scenario[] = [
  staticSite('1k', '/1k.html', 1024),
  staticSite('100k', '/100k.bin', 100 * 1024),
  staticSite('10m', '/10m.bin', 10 * 1024 * 1024, 8),
  {
    id: 'gzip',
    title: '100 KB HTML, gzip level 6',
    path: '/page.html',
    headers: { 'Accept-Encoding': 'gzip' },
    check: (status, h) =>
      ok200(status) ?? (h['content-encoding'] === 'gzip' ? undefined : 'response not gzipped'),
    nginx: (port, e) =>
      `server {\n  listen 127.0.0.1:${port};\n  root ${e.files};\n  gzip on;\n  gzip_comp_level 6;\n  gzip_vary on;\n  gzip_min_length 256;\n}\n`,
    caddy: (port, e) =>
      `http://:${port} {\n  bind 127.0.0.1\n  root * ${e.files}\n  encode {\n    gzip 6\n  }\n  file_server\n}\n`,
    nodecaddy: (port, e) =>
      `:${port} {\n  bind 127.0.0.1\n  root ${e.files}\n  gzip {\n    level 6\n  }\n}\n`,
  },
  // The same page from the backend: nothing to keep, so every server compresses every response. First with
  // the level number the same everywhere; then with each server at the level whose output is the size of
  // Caddy's at 6 or smaller: a level number means something else in each compressor (on this page Caddy's
  // klauspost at 6 makes 31,343 bytes, Debian's zlib in nginx 31,816 at 5 and 30,622 at 6, libdeflate in
  // nodecaddy 31,034 at 4). The issue asks nodecaddy for Caddy's requests/s with output no larger.
  gzipProxySite('gzip-proxy', '100 KB HTML proxied, gzip level 6 (compressed per request)', {
    nginx: 6,
    caddy: 6,
    nodecaddy: 6,
  }),
  gzipProxySite(
    'gzip-proxy-size',
    '100 KB HTML proxied, gzip at output no larger than Caddy level 6 (nginx 6, Caddy 6, nodecaddy 4)',
    { nginx: 6, caddy: 6, nodecaddy: 4 },
  ),
  {
    id: 'browse',
    title: 'directory listing, 100 entries',
    path: '/list/',
    check: (status) => ok200(status),
    // nginx's autoindex is a bare list: a floor for what a listing costs, not an equivalent page.
    nginx: (port, e) =>
      `server {\n  listen 127.0.0.1:${port};\n  root ${e.files};\n  location /list/ {\n    autoindex on;\n  }\n}\n`,
    caddy: (port, e) => `http://:${port} {\n  bind 127.0.0.1\n  root * ${e.files}\n  file_server browse\n}\n`,
    nodecaddy: (port, e) => `:${port} {\n  bind 127.0.0.1\n  root ${e.files}\n  browse\n}\n`,
  },
  {
    id: 'proxy',
    title: 'proxy to a keep-alive Node backend',
    path: '/',
    needs: ['backend'],
    check: (status) => ok200(status),
    nginx: (port, e) =>
      `upstream backend {\n  server 127.0.0.1:${e.backendPort};\n  keepalive 64;\n}\nserver {\n  listen 127.0.0.1:${port};\n  location / {\n    proxy_pass http://backend;\n    proxy_http_version 1.1;\n    proxy_set_header Connection "";\n  }\n}\n`,
    caddy: (port, e) =>
      `http://:${port} {\n  bind 127.0.0.1\n  reverse_proxy 127.0.0.1:${e.backendPort}\n}\n`,
    nodecaddy: (port, e) =>
      `:${port} {\n  bind 127.0.0.1\n  proxy / 127.0.0.1:${e.backendPort} {\n    keepalive 64\n  }\n}\n`,
  },
  {
    id: 'proxy-default',
    title: "the same proxy in each server's default configuration",
    path: '/',
    needs: ['backend'],
    check: (status) => ok200(status),
    // nginx's default: HTTP/1.0 to the upstream, a new connection per request (no upstream keepalive).
    nginx: (port, e) =>
      `server {\n  listen 127.0.0.1:${port};\n  location / {\n    proxy_pass http://127.0.0.1:${e.backendPort};\n  }\n}\n`,
    caddy: (port, e) =>
      `http://:${port} {\n  bind 127.0.0.1\n  reverse_proxy 127.0.0.1:${e.backendPort}\n}\n`,
    nodecaddy: (port, e) => `:${port} {\n  bind 127.0.0.1\n  proxy / 127.0.0.1:${e.backendPort}\n}\n`,
  },
  // nodecaddy as a user writes it, then with its pool set for this load (a worker may keep a connection
  // for each of the 50 clients): the default should already be the tuned value. nginx keeps 16 connections
  // per worker in both.
  fastcgiSite('fastcgi', 'FastCGI to php-fpm (echo), nodecaddy defaults', ''),
  fastcgiSite('fastcgi-tuned', 'FastCGI to php-fpm (echo), nodecaddy `keepalive 50`', 'keepalive 50'),
  {
    id: 'backend-direct',
    title: 'the proxy/tunnel backend, reached directly',
    path: '/',
    needs: ['backend'],
    servers: ['direct'],
    check: (status) => ok200(status),
  },
  {
    id: 'tunnel',
    title: 'the same backend through `tunnel` + `nodecaddy tunnel`',
    path: '/',
    needs: ['backend'],
    servers: ['nodecaddy'],
    tunnelClient: true,
    headers: { Host: TUNNEL_HOST },
    check: (status) => ok200(status),
    nodecaddy: (port, e) =>
      `*.tunnel.localhost:${port} {\n  bind 127.0.0.1\n  tunnel {\n    secret ${e.tunnelSecret}\n  }\n}\n`,
  },
  {
    id: 'tcp-direct',
    title: 'one TCP connection reading an endless stream, directly',
    path: '/',
    needs: ['tcpsource'],
    servers: ['direct'],
    tcp: true,
    connections: 1,
  },
  {
    id: 'tcp-tunnel',
    title: 'the same TCP stream through a TCP tunnel (`tcp_ports` + `nodecaddy tunnel -tcp`)',
    path: '/',
    needs: ['tcpsource'],
    servers: ['nodecaddy'],
    tunnelClient: true,
    tcp: true,
    connections: 1,
    headers: { Host: TUNNEL_HOST },
    nodecaddy: (port, e) =>
      `*.tunnel.localhost:${port} {\n  bind 127.0.0.1\n  tunnel {\n    secret ${e.tunnelSecret}\n    tcp_ports ${e.tcpPorts.from}-${e.tcpPorts.to}\n  }\n}\n`,
  },
  ...TLS_SCENARIOS,
];
