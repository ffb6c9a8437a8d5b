// tls off | <email> | self_signed | internal | <cert> <key>  [{ subdirectives }]: a site's certificate and the
// TLS policy of its listener (Caddy v1's `tls`, reference tls.md §1.1–1.2, plus Caddy 2's `internal`).
// Config-only: setup records the site's wishes in ctx.site.tls; app.ts decides which sites are served over
// HTTPS and checks that sites sharing a listener agree; the listener does the rest.
import { isIP } from 'node:net';
import path from 'node:path';
import type { Dispenser } from '../caddyfile/index.js';
import { defineDirective, type SetupContext } from '../core/directive.js';
import { atLine, intArg, oneArg } from '../core/setup-args.js';
import {
  DEFAULT_POLICY,
  type AcmeSettings,
  type CertPair,
  type CertSource,
  type ClientAuthMode,
  type KeyType,
  type SiteTls,
  type TlsPolicy,
  type TlsVersion,
} from '../core/tls/config.js';
import { loadCertFolder, readCaFile, readCertPair } from '../core/tls/pem.js';

const SUBDIRECTIVES = [
  'ca',
  'key_type',
  'protocols',
  'ciphers',
  'curves',
  'clients',
  'load',
  'max_certs',
  'ask',
  'dns',
  'alpn',
  'must_staple',
  'wildcard',
];

const PROTOCOLS: Record<string, TlsVersion> = {
  'tls1.0': 'TLSv1',
  'tls1.1': 'TLSv1.1',
  'tls1.2': 'TLSv1.2',
  'tls1.3': 'TLSv1.3',
};
const VERSION_ORDER: readonly TlsVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Caddy v1's cipher names (Go's) and OpenSSL's for the same suites. */
const CIPHERS: Record<string, string> = {
  'ECDHE-ECDSA-AES256-GCM-SHA384': 'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384': 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-AES128-GCM-SHA256': 'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256': 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-WITH-CHACHA20-POLY1305': 'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-WITH-CHACHA20-POLY1305': 'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES256-CBC-SHA': 'ECDHE-RSA-AES256-SHA',
  'ECDHE-RSA-AES128-CBC-SHA': 'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-CBC-SHA': 'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-ECDSA-AES128-CBC-SHA': 'ECDHE-ECDSA-AES128-SHA',
  'RSA-AES256-CBC-SHA': 'AES256-SHA',
  'RSA-AES128-CBC-SHA': 'AES128-SHA',
  'ECDHE-RSA-3DES-EDE-CBC-SHA': 'ECDHE-RSA-DES-CBC3-SHA',
  'RSA-3DES-EDE-CBC-SHA': 'DES-CBC3-SHA',
};

const CURVES: Record<string, string> = { X25519: 'X25519', P256: 'P-256', P384: 'P-384', P521: 'P-521' };
const KEY_TYPES: Record<string, KeyType> = {
  P256: 'P256',
  P384: 'P384',
  RSA2048: 'RSA2048',
  RSA4096: 'RSA4096',
};
const CLIENT_MODES: Record<string, ClientAuthMode> = {
  request: 'request',
  require: 'require',
  verify_if_given: 'verify_if_given',
};

/** What one site block's `tls` lines add up to while they are read. */
interface Draft {
  off: boolean;
  source: CertSource | undefined;
  pairs: CertPair[];
  keyType: KeyType;
  policy: { -readonly [K in keyof TlsPolicy]: TlsPolicy[K] };
  explicit: Set<keyof TlsPolicy>;
  acme: { -readonly [K in keyof AcmeSettings]: AcmeSettings[K] };
}

function parseLine(d: Dispenser, ctx: SetupContext, draft: Draft): void {
  const args = d.remainingArgs();
  switch (args.length) {
    case 0:
      break;
    case 1:
      if (args[0] === 'off') draft.off = true;
      else if (args[0] === 'self_signed') draft.source = { kind: 'self_signed' };
      else if (args[0] === 'internal') draft.source = { kind: 'internal' };
      else if (args[0].includes('@')) draft.acme.email = args[0];
      else
        throw d.err(
          `expected an email address, off, self_signed, internal or <cert> <key>, got '${args[0]}'`,
        );
      break;
    case 2: {
      const site = ctx.site.address.host || ctx.site.address.original;
      draft.pairs.push(
        atLine(
          d,
          () => readCertPair(ctx.cwd, args[0], args[1]),
          `Unable to load certificate and key files for '${site}': `,
        ),
      );
      break;
    }
    default:
      throw d.err('too many arguments; expected: tls off | <email> | self_signed | internal | <cert> <key>');
  }
  let block = false;
  while (d.nextBlock()) {
    // Caddy v1 returns at once for `tls off` and leaves a block after it unread; we say so instead.
    if (draft.off) throw d.err("'tls off' takes no block");
    block = true;
    parseSubdirective(d, ctx, draft);
  }
  // `tls` alone is an argument error (Caddy v1).
  if (args.length === 0 && !block) throw d.argErr();
}

function parseSubdirective(d: Dispenser, ctx: SetupContext, draft: Draft): void {
  const what = d.val();
  const policy = draft.policy;
  switch (what) {
    case 'ca': {
      const url = oneArg(d);
      if (!/^https?:\/\//i.test(url)) throw d.err(`ca must be an ACME directory URL, got '${url}'`);
      draft.acme.ca = url;
      return;
    }
    case 'key_type': {
      const value = oneArg(d);
      const t = KEY_TYPES[value.toUpperCase()];
      if (!t) throw d.err(`Wrong key type name or key type not supported: '${value}'`);
      draft.keyType = t;
      return;
    }
    case 'protocols': {
      const args = d.remainingArgs();
      if (args.length < 1 || args.length > 2) throw d.argErr();
      const [min, max] = args.map((a) => {
        const v = PROTOCOLS[a.toLowerCase()];
        if (!v) throw d.err(`Wrong protocol name or protocol not supported: '${a}'`);
        return v;
      });
      policy.minVersion = min;
      policy.maxVersion = max ?? min;
      if (VERSION_ORDER.indexOf(policy.minVersion) > VERSION_ORDER.indexOf(policy.maxVersion))
        throw d.err('Minimum protocol version cannot be higher than maximum (reverse the order)');
      draft.explicit.add('minVersion');
      return;
    }
    case 'ciphers': {
      const names = d.remainingArgs().map((name) => {
        const openssl = CIPHERS[name.toUpperCase()];
        if (!openssl) throw d.err(`Wrong cipher name or cipher not supported: '${name}'`);
        return openssl;
      });
      if (names.length > 0) {
        policy.ciphers = names.join(':');
        draft.explicit.add('ciphers');
      }
      return;
    }
    case 'curves': {
      const names = d.remainingArgs().map((name) => {
        const openssl = CURVES[name.toUpperCase()];
        if (!openssl) throw d.err(`Wrong curve name or curve not supported: '${name}'`);
        return openssl;
      });
      if (names.length > 0) {
        policy.curves = names.join(':');
        draft.explicit.add('curves');
      }
      return;
    }
    case 'clients': {
      const args = d.remainingArgs();
      if (args.length === 0) throw d.argErr();
      const keyword = CLIENT_MODES[args[0]];
      const mode: ClientAuthMode = keyword ?? 'require_and_verify';
      const files = keyword ? args.slice(1) : args;
      if ((mode === 'require_and_verify' || mode === 'verify_if_given') && files.length === 0)
        throw d.err(
          `clients ${keyword ?? ''}: at least one CA certificate file is required`.replace('  ', ' '),
        );
      const ca = files.flatMap((f) => atLine(d, () => readCaFile(ctx.cwd, f), 'clients: '));
      policy.clientAuth = { mode, ca };
      draft.explicit.add('clientAuth');
      return;
    }
    case 'load': {
      const dir = oneArg(d);
      draft.pairs.push(...atLine(d, () => loadCertFolder(path.resolve(ctx.cwd, dir)), 'load: '));
      return;
    }
    case 'max_certs': {
      draft.acme.maxCerts = intArg(d, oneArg(d), 1, 'max_certs');
      return;
    }
    case 'ask': {
      const url = oneArg(d);
      if (!/^https?:\/\//i.test(url)) throw d.err('ask URL must use http or https');
      draft.acme.ask = url;
      return;
    }
    case 'dns': {
      const args = d.remainingArgs();
      if (args.length === 0) throw d.argErr();
      if (args[0] === 'exec') {
        if (args.length < 2) throw d.err('dns exec: the command to run is missing');
      } else if (args.length !== 1) throw d.argErr();
      else throw d.err(`Unknown DNS provider by name '${args[0]}' (nodecaddy has 'dns exec <command>')`);
      draft.acme.dns = args.slice(1);
      return;
    }
    case 'alpn': {
      const protos = d.remainingArgs();
      if (protos.length === 0) throw d.argErr();
      for (const p of protos)
        if (p !== 'h2' && p !== 'http/1.1') throw d.err(`alpn: nodecaddy speaks h2 and http/1.1, not '${p}'`);
      policy.alpn = protos;
      draft.explicit.add('alpn');
      return;
    }
    case 'must_staple':
      if (d.remainingArgs().length > 0) throw d.argErr();
      draft.acme.mustStaple = true;
      // Let's Encrypt refuses Must-Staple orders since May 2025 and has no OCSP any more; we staple nothing.
      ctx.warn(`${d.file()}:${d.line()}: must_staple is ignored: certificates are ordered without it`);
      return;
    case 'wildcard': {
      if (d.remainingArgs().length > 0) throw d.argErr();
      const host = ctx.site.address.host;
      if (!host || host === 'localhost' || isIP(host) || host === '*')
        throw d.err(
          `Hostname '${host}' does not qualify for managed TLS, so cannot manage wildcard certificate for it`,
        );
      if (host.startsWith('*.')) throw d.err(`Hostname '${host}' already has a wildcard label`);
      if (host.split('.').length < 3)
        throw d.err(`Hostname '${host}' has too few labels for a wildcard certificate`);
      draft.acme.wildcard = true;
      return;
    }
    default:
      throw d.unknownSubdirective(SUBDIRECTIVES);
  }
}

export const tls = defineDirective<SiteTls>({
  name: 'tls',
  setup(d, ctx) {
    const draft: Draft = {
      off: false,
      source: undefined,
      pairs: [],
      keyType: 'P256',
      policy: { ...DEFAULT_POLICY },
      explicit: new Set(),
      acme: {
        email: undefined,
        ca: undefined,
        mustStaple: false,
        maxCerts: undefined,
        ask: undefined,
        dns: undefined,
        wildcard: false,
      },
    };
    let where = '';
    while (d.next()) {
      where ||= `${d.file()}:${d.line()}`;
      parseLine(d, ctx, draft);
    }
    if (draft.pairs.length > 0) {
      if (draft.source)
        throw d.err(`tls: a certificate from files and '${draft.source.kind}' cannot be combined`);
      draft.source = { kind: 'files', pairs: draft.pairs };
      for (const p of draft.pairs) {
        ctx.dependOn(p.certFile);
        ctx.dependOn(p.keyFile);
      }
    }
    // TLS 1.0 and 1.1 need OpenSSL's lowest security level (their suites and signatures are legacy).
    if (VERSION_ORDER.indexOf(draft.policy.minVersion) < VERSION_ORDER.indexOf('TLSv1.2'))
      draft.policy.ciphers = `${draft.policy.ciphers}:@SECLEVEL=0`;
    const site: SiteTls = {
      off: draft.off,
      source: draft.off ? undefined : draft.source,
      keyType: draft.keyType,
      policy: draft.policy,
      explicit: [...draft.explicit],
      acme: draft.acme,
      where,
    };
    ctx.site.tls = site;
    return site;
  },
});
