// Routes a request to a site: by Host (exact, then wildcard labels from the left, then catch-alls),
// then by the longest site path prefix. Built once per config load; route() does no allocation-heavy work.
import type { Site } from './site.js';

/** Hosts that catch every request not claimed by a more specific site. */
const CATCH_ALL_HOSTS = ['0.0.0.0', '::', '', '*'];

export class VhostRouter {
  /** host → sites sorted by path length, longest first. */
  private readonly byHost = new Map<string, Site[]>();
  /** Whether any site has a `*` label; if none does, requests skip the wildcard search. */
  private readonly hasWildcards: boolean;

  constructor(sites: readonly Site[]) {
    for (const site of sites) {
      const host = site.config.address.host;
      const list = this.byHost.get(host) ?? [];
      list.push(site);
      this.byHost.set(host, list);
    }
    for (const list of this.byHost.values()) {
      list.sort((a, b) => b.config.address.path.length - a.config.address.path.length);
    }
    this.hasWildcards = [...this.byHost.keys()].some((host) => host.includes('*') && host !== '*');
  }

  /** The site for a Host header and raw request path, or undefined (→ 404 "not served on this interface"). */
  route(hostHeader: string | undefined, rawPath: string): Site | undefined {
    const host = hostOnly(hostHeader ?? '');
    const exact = this.byHost.get(host);
    if (exact) {
      const site = matchPath(exact, rawPath);
      if (site) return site;
    }
    if (this.hasWildcards) {
      for (const candidate of wildcardForms(host)) {
        const list = this.byHost.get(candidate);
        const site = list && matchPath(list, rawPath);
        if (site) return site;
      }
    }
    for (const fallback of CATCH_ALL_HOSTS) {
      const list = this.byHost.get(fallback);
      const site = list && matchPath(list, rawPath);
      if (site) return site;
    }
    return undefined;
  }
}

/** Longest byte-prefix match, case-sensitive and not segment-aware, as Caddy v1's vhost trie. */
function matchPath(sites: readonly Site[], rawPath: string): Site | undefined {
  for (const site of sites) {
    const prefix = site.config.address.path;
    if (!prefix || rawPath.startsWith(prefix)) return site;
  }
  return undefined;
}

/** Lower-cased host without port; IPv6 without brackets. */
export function hostOnly(hostHeader: string): string {
  let h = hostHeader;
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    h = close > 0 ? h.slice(1, close) : h.slice(1);
  } else {
    const colon = h.indexOf(':');
    if (colon >= 0) h = h.slice(0, colon);
  }
  return h.toLowerCase();
}

/** `a.b.example.com` → `*.b.example.com`, `*.*.example.com`, `*.*.*.com`, `*.*.*.*` (cumulative, from the left). */
function* wildcardForms(host: string): Generator<string> {
  if (!host) return;
  const labels = host.split('.');
  for (let i = 0; i < labels.length; i++) {
    labels[i] = '*';
    yield labels.join('.');
  }
}
