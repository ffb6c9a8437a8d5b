// The server of an HTTPS listener: node:http2's secure server, which speaks HTTP/2 and, for clients that do not
// ask for h2 by ALPN, HTTP/1.1 (with our response classes either way). Certificates are picked per handshake by
// SNI from the listener's current routing table, so a reload (or a renewal) swaps them for new handshakes while
// open connections keep theirs.
import http from '../node-http.js';
import http2 from 'node:http2';
import type { ListenerSettings } from '../listener-settings.js';
import { createSecureContext as tlsCreateSecureContext, type SecureContext, type TLSSocket } from 'node:tls';
import { HookedHttp2Response, HookedResponse } from '../response.js';
import { contextOptionsOf, type TlsPolicy } from './config.js';
import { findAlpnChallenge, hasChallengeSource } from './challenge-lookup.js';
import { alpnChallenges, certificateRequests } from './managed.js';
import type { CertificateIndex } from './sni.js';

/** ALPN of ACME's TLS-ALPN-01 validation (RFC 8737). */
const ACME_TLS_ALPN = 'acme-tls/1';

/** What the server asks its listener on each handshake. */
export interface SecureServerHooks {
  /** The current table's certificates and policy. */
  current(): { certs: CertificateIndex; policy: TlsPolicy };
  /** A TLS handshake failed (a scanner, a bad client; `unknownName` when we had no certificate for it). */
  onTlsError(err: NodeJS.ErrnoException, socket: TLSSocket, unknownName: string | undefined): void;
}

/**
 * HTTP/2 limits against abuse (tls.md §4.6): a bounded number of concurrent streams (nginx's 128), no server
 * push, the header list no larger than HTTP/1.1's header limit. Node's rapid-reset mitigation (nghttp2 ≥ 1.57)
 * and its 10 MB per-session memory cap stay on.
 */
const MAX_CONCURRENT_STREAMS = 128;
/** A client has this long to finish its TLS handshake (Node's default is 120 s), or `timeouts header` if less. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

export function createSecureServer(
  policy: TlsPolicy,
  settings: ListenerSettings | undefined,
  hooks: SecureServerHooks,
): http2.Http2SecureServer {
  const maxHeaderSize = settings?.maxHeaderSize ?? http.maxHeaderSize;
  // A handshake counts as part of the request head: `timeouts header` shortens it too.
  const header = settings?.timeouts.header ?? 0;
  const server = http2.createSecureServer({
    allowHTTP1: true,
    Http1ServerResponse: HookedResponse,
    Http2ServerResponse: HookedHttp2Response,
    settings: {
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      enablePush: false,
      maxHeaderListSize: maxHeaderSize,
    },
    handshakeTimeout: header > 0 ? Math.min(header, HANDSHAKE_TIMEOUT_MS) : HANDSHAKE_TIMEOUT_MS,
    ...clientAuthOptions(policy),
    ALPNCallback(this: TLSSocket, { servername, protocols }) {
      // An ACME CA validating a name we have a TLS-ALPN-01 challenge for: it gets the challenge certificate
      // (SNICallback runs after this one) and the connection ends after the handshake.
      // With a shared storage the challenge may be another instance's: looked up in SNICallback.
      if (
        protocols.includes(ACME_TLS_ALPN) &&
        (alpnChallenges.has(servername?.toLowerCase() ?? '') || hasChallengeSource())
      ) {
        acmeSockets.add(this);
        return ACME_TLS_ALPN;
      }
      // ALPN by the listener's policy (`alpn`): our order of preference among what the client offers. Nothing in
      // common: undefined, a no_application_protocol alert (RFC 7301). Anything the client did not offer would
      // be thrown by Node (an uncaught exception on Node < 20.20, a connection reset after).
      return hooks.current().policy.alpn.find((p) => protocols.includes(p));
    },
    SNICallback(servername, cb) {
      try {
        const socket = this as unknown as TLSSocket;
        if (acmeSockets.has(socket)) {
          const held = alpnChallenges.get(servername.toLowerCase());
          if (held || !hasChallengeSource()) cb(null, held);
          else
            void findAlpnChallenge(servername).then((found) =>
              cb(null, found ?? emptyContext(hooks.current().policy)),
            );
          return;
        }
        const { certs, policy } = hooks.current();
        const cert = certs.lookup(servername, socket.localAddress);
        if (cert) {
          cb(null, cert.context);
          return;
        }
        const requests = certificateRequests();
        if (servername && requests && certs.wantsOnDemand(servername)) {
          // On-demand TLS: the handshake waits for the certificate (the handshake timeout bounds the wait).
          requests.need(servername).then(
            (ok) => {
              const now = hooks.current();
              const issued = ok && now.certs.lookup(servername, socket.localAddress);
              if (!issued) unknownNames.set(socket, servername);
              cb(null, issued ? issued.context : emptyContext(now.policy));
            },
            (err: unknown) => cb(err as Error),
          );
          return;
        }
        // No certificate for the name: a context without one makes OpenSSL end the handshake with a
        // handshake_failure alert; never another site's certificate.
        unknownNames.set(socket, servername);
        cb(null, emptyContext(policy));
      } catch (err) {
        cb(err as Error);
      }
    },
  } as http2.SecureServerOptions);
  // The validation connection has done its job once the handshake is through; http2 would otherwise start a
  // session on it.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === ACME_TLS_ALPN) socket.destroy();
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    hooks.onTlsError(err, socket, unknownNames.get(socket));
    socket.destroy();
  });
  applyDefaultContext(server, hooks.current().certs, policy);
  return server;
}

/** Handshakes of an ACME CA validating a TLS-ALPN-01 challenge. */
const acmeSockets = new WeakSet<TLSSocket>();

/** The SNI name of handshakes that found no certificate (for the log line). */
const unknownNames = new WeakMap<TLSSocket, string>();

/** A context with the policy and no certificate, per policy. */
const emptyContexts = new WeakMap<TlsPolicy, SecureContext>();
function emptyContext(policy: TlsPolicy): SecureContext {
  let ctx = emptyContexts.get(policy);
  if (!ctx) emptyContexts.set(policy, (ctx = tlsCreateSecureContext(contextOptionsOf(policy))));
  return ctx;
}

/** Server-level options of the `clients` modes (Caddy v1, Go's ClientAuthType). */
function clientAuthOptions(policy: TlsPolicy): { requestCert: boolean; rejectUnauthorized: boolean } {
  const mode = policy.clientAuth?.mode;
  return { requestCert: mode !== undefined, rejectUnauthorized: mode === 'require_and_verify' };
}

/**
 * After a reload: the new table's client-auth mode and default certificate (for clients that send no SNI). The
 * session ticket keys are kept: Node makes new ones with a new default context, which would end every
 * resumption (and the keys cluster workers share).
 */
export function updateSecureServer(
  server: http2.Http2SecureServer,
  certs: CertificateIndex,
  policy: TlsPolicy,
): void {
  const s = server as unknown as { requestCert: boolean; rejectUnauthorized: boolean };
  Object.assign(s, clientAuthOptions(policy));
  const keys = server.getTicketKeys();
  applyDefaultContext(server, certs, policy);
  server.setTicketKeys(keys);
}

function applyDefaultContext(
  server: http2.Http2SecureServer,
  certs: CertificateIndex,
  policy: TlsPolicy,
): void {
  const fallback = certs.lookup(undefined, undefined);
  server.setSecureContext({ ...contextOptionsOf(policy), ...(fallback?.pem ?? {}) });
}
