// Upstream addresses as Caddy v1's proxy takes them (reference 4.18): `host[:port]`, `http://…`, `https://…`
// (with a path prefix and a query merged into every request), `unix:/path.sock`, and port ranges
// `host:8080-8082[/path]` that expand to one upstream per port.

/** One backend, resolved once at setup; everything a request needs to reach it. */
export interface UpstreamTarget {
  /** How the upstream is named in logs and `{upstream}`: `http://127.0.0.1:8080/base`, `unix:/run/a.sock`. */
  readonly name: string;
  readonly tls: boolean;
  /** Host name or IP for the socket (IPv6 without brackets); '' for unix sockets. */
  readonly hostname: string;
  readonly port: number;
  /** Unix socket path, or undefined for TCP. */
  readonly socketPath: string | undefined;
  /** The Host header sent by default: the upstream's own host[:port] as written (`socket` for unix). */
  readonly hostHeader: string;
  /** Path prefix joined before every request path ('' for none), escaped as written. */
  readonly basePath: string;
  /** Query merged before every request's query ('' for none). */
  readonly baseQuery: string;
  /** `Basic …` from `user:pass@`, sent only when the client sent no Authorization. */
  readonly authorization: string | undefined;
}

/** Parses one upstream token into one target, or several for a port range. Throws with a readable reason. */
export function parseUpstream(token: string): UpstreamTarget[] {
  if (token.startsWith('unix:')) return [unixTarget(token)];
  const sep = token.indexOf('://');
  let scheme = 'http';
  let rest = token;
  if (sep >= 0) {
    scheme = token.slice(0, sep).toLowerCase();
    rest = token.slice(sep + 3);
    if (scheme === 'quic' || scheme.startsWith('srv'))
      throw new Error(`upstream '${token}': ${scheme}:// upstreams are not supported by nodecaddy`);
    if (scheme !== 'http' && scheme !== 'https')
      throw new Error(`upstream '${token}': unsupported scheme '${scheme}' (expected http or https)`);
  }
  // The authority ends at the first '/', '?' or '#'; a hyphen after it (`/a--b`) is not a port range.
  let end = 0;
  while (end < rest.length && rest[end] !== '/' && rest[end] !== '?' && rest[end] !== '#') end++;
  const authority = rest.slice(0, end);
  const tail = rest.slice(end);
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at) : '';
  const hostport = at >= 0 ? authority.slice(at + 1) : authority;
  const { host, port } = splitHostPort(hostport, token);
  if (!host) throw new Error(`upstream '${token}': missing host`);
  const ports = expandPorts(port, token);
  return ports.map((p) => {
    const hostPort = p === undefined ? host : `${host}:${p}`;
    return tcpTarget(scheme, userinfo, hostPort, tail, token);
  });
}

function tcpTarget(
  scheme: string,
  userinfo: string,
  hostPort: string,
  tail: string,
  token: string,
): UpstreamTarget {
  let url: URL;
  try {
    url = new URL(`${scheme}://${hostPort}${tail}`);
  } catch {
    throw new Error(`upstream '${token}': not a valid address`);
  }
  const tls = scheme === 'https';
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : tls ? 443 : 80;
  // Keep the path exactly as written (URL would normalise it); only a lone '/' means "no prefix".
  const q = tail.indexOf('?');
  const rawPath = q >= 0 ? tail.slice(0, q) : tail;
  const rawQuery = q >= 0 ? tail.slice(q + 1).split('#')[0] : '';
  const basePath = rawPath.split('#')[0];
  let authorization: string | undefined;
  if (userinfo) {
    const colon = userinfo.indexOf(':');
    const user = decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
    const pass = colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : '';
    authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  return {
    name: `${scheme}://${hostPort}${basePath}${rawQuery ? `?${rawQuery}` : ''}`,
    tls,
    hostname,
    port,
    socketPath: undefined,
    hostHeader: hostPort,
    basePath,
    baseQuery: rawQuery,
    authorization,
  };
}

function unixTarget(token: string): UpstreamTarget {
  // `unix:/path` and `unix:///path` both name /path (Caddy trims either form).
  let socketPath = token.slice('unix:'.length);
  if (socketPath.startsWith('//')) socketPath = socketPath.slice(2);
  if (!socketPath.startsWith('/')) throw new Error(`upstream '${token}': expected unix:/absolute/path.sock`);
  return {
    name: `unix:${socketPath}`,
    tls: false,
    hostname: '',
    port: 0,
    socketPath,
    hostHeader: 'socket',
    basePath: '',
    baseQuery: '',
    authorization: undefined,
  };
}

function splitHostPort(hostport: string, token: string): { host: string; port: string | undefined } {
  if (hostport.startsWith('[')) {
    const close = hostport.indexOf(']');
    if (close < 0) throw new Error(`upstream '${token}': missing ']' in IPv6 address`);
    const after = hostport.slice(close + 1);
    if (after && !after.startsWith(':')) throw new Error(`upstream '${token}': not a valid address`);
    return { host: hostport.slice(0, close + 1), port: after ? after.slice(1) : undefined };
  }
  const colon = hostport.lastIndexOf(':');
  if (colon < 0) return { host: hostport, port: undefined };
  if (hostport.indexOf(':') !== colon) return { host: `[${hostport}]`, port: undefined }; // bare IPv6
  return { host: hostport.slice(0, colon), port: hostport.slice(colon + 1) };
}

/** `8080` → [8080]; `8080-8082` → [8080, 8081, 8082]; no port → [undefined]. Errors as Caddy words them. */
function expandPorts(port: string | undefined, token: string): (number | undefined)[] {
  if (port === undefined || port === '') return [undefined];
  const parts = port.split('-');
  if (parts.length > 2) throw new Error(`port range '${port}' has ${parts.length - 1} separators`);
  const nums = parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`upstream '${token}': invalid port '${p}'`);
    const n = Number(p);
    if (n < 1 || n > 65535) throw new Error(`upstream '${token}': port ${n} out of range`);
    return n;
  });
  if (nums.length === 1) return nums;
  const [start, end] = nums as [number, number];
  if (end <= start) throw new Error(`port range [${start}-${end}] is invalid`);
  const out: number[] = [];
  for (let p = start; p <= end; p++) out.push(p);
  return out;
}

/** Go's singleJoiningSlash: one '/' between a and b, whatever their ends. */
export function joinPaths(a: string, b: string): string {
  if (!a) return b;
  const aSlash = a.endsWith('/');
  const bSlash = b.startsWith('/');
  if (aSlash && bSlash) return a + b.slice(1);
  if (!aSlash && !bSlash) return `${a}/${b}`;
  return a + b;
}
