// Clients for HTTPS tests: one request over HTTP/1.1 (node:https) or HTTP/2 (node:http2), with the SNI name,
// CA and client certificate chosen, reporting what the handshake gave (certificate, ALPN, protocol, resumption).
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import http2 from 'node:http2';
import tls from 'node:tls';

export interface TlsRequest {
  /** SNI name and, unless `host` says otherwise, the Host header. */
  servername: string;
  path?: string;
  host?: string;
  method?: string;
  headers?: Record<string, string>;
  /** CA certificates to trust (PEM); without them nothing verifies. */
  ca?: string | Buffer | (string | Buffer)[];
  cert?: Buffer;
  key?: Buffer;
  http2?: boolean;
  body?: string | Buffer;
}

export interface TlsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The leaf the server showed (subject alternative names, fingerprint). */
  peer: { san: string; fingerprint256: string };
  alpn: string | false | null;
  protocol: string | null;
}

function peerOf(socket: tls.TLSSocket): TlsResponse['peer'] {
  const raw = socket.getPeerX509Certificate?.();
  return { san: raw?.subjectAltName ?? '', fingerprint256: raw?.fingerprint256 ?? '' };
}

/** One request; rejects when the handshake or the request fails. */
export function tlsRequest(port: number, r: TlsRequest): Promise<TlsResponse> {
  return r.http2 ? h2Request(port, r) : h1Request(port, r);
}

function h1Request(port: number, r: TlsRequest): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: r.path ?? '/',
        method: r.method ?? 'GET',
        servername: r.servername,
        headers: { host: r.host ?? r.servername, ...r.headers },
        ca: r.ca,
        cert: r.cert,
        key: r.key,
        agent: false,
        // node:https passes TLS options on; its types leave ALPN out.
        ...({ ALPNProtocols: ['http/1.1'] } as https.RequestOptions),
      },
      (res) => {
        const socket = res.socket as tls.TLSSocket;
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(parts),
            peer: peerOf(socket),
            alpn: socket.alpnProtocol,
            protocol: socket.getProtocol(),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(r.body);
  });
}

function h2Request(port: number, r: TlsRequest): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, {
      servername: r.servername,
      ca: r.ca,
      cert: r.cert,
      key: r.key,
    });
    session.on('error', reject);
    const stream = session.request({
      ':method': r.method ?? 'GET',
      ':path': r.path ?? '/',
      ':authority': r.host ?? r.servername,
      ...(r.body !== undefined && { 'content-length': Buffer.byteLength(r.body) }),
      ...r.headers,
    });
    const parts: Buffer[] = [];
    let headers: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (headers = h));
    stream.on('data', (c: Buffer) => parts.push(c));
    stream.on('error', (err: Error) => {
      session.close();
      reject(err);
    });
    stream.on('end', () => {
      const socket = session.socket as tls.TLSSocket;
      const out: TlsResponse = {
        status: Number(headers[':status']),
        headers,
        body: Buffer.concat(parts),
        peer: peerOf(socket),
        alpn: socket.alpnProtocol,
        protocol: socket.getProtocol(),
      };
      session.close();
      resolve(out);
    });
    stream.end(r.body);
  });
}

/** Just the handshake: what certificate and protocol a client gets, or the error it gets. */
export function handshake(
  port: number,
  opts: tls.ConnectionOptions,
): Promise<{ socket: tls.TLSSocket; cert: X509Certificate | undefined }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ...opts }, () =>
      resolve({ socket, cert: socket.getPeerX509Certificate() }),
    );
    socket.once('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('handshake timed out')));
  });
}
