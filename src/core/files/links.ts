// Symlinks below a site root: where they lead, whether their owner owns what they point to, and the aliases
// they make for the file cache's invalidation. fs.watch follows symlinks, so a directory watched through a
// link reports changes under the joined names the cache keys entries by, but it watches the target's inode:
// once the target path itself is replaced (renamed away, another put there), that watcher is stale. So the
// cache also watches each link target's name in its parent, and LinkAliases turns a change at a target (or
// below it) into a change at the joined path of every link that leads there.
import { promises as fs } from 'node:fs';
import { isSameOrBelow, isUnder } from './paths.js';

export interface Link {
  /** The link, as joined under root (a cache key's prefix). */
  readonly at: string;
  /** Its resolved target. */
  readonly target: string;
}

/** What the symlinks below root on a path's way do. */
export interface LinkFacts {
  /** The first link whose target is outside the real root. */
  readonly leavesRootAt: string | undefined;
  /** The first link whose owner does not own what it points to (nginx's `disable_symlinks if_not_owner`). */
  readonly foreignLinkAt: string | undefined;
  readonly links: readonly Link[];
}

export const NO_LINKS: LinkFacts = { leavesRootAt: undefined, foreignLinkAt: undefined, links: [] };

/**
 * Walks the components of `full` below root (root's own path is the admin's choice and is not checked) and
 * notes every symlink. Only called for paths whose real path shows that a link is on the way.
 */
export async function linksOn(root: string, full: string, realRoot: string): Promise<LinkFacts> {
  let leavesRootAt: string | undefined;
  let foreignLinkAt: string | undefined;
  const links: Link[] = [];
  let at = root;
  for (const name of full.slice(root.length).split('/')) {
    if (!name) continue;
    at = at.endsWith('/') ? at + name : `${at}/${name}`;
    const link = await fs.lstat(at);
    if (!link.isSymbolicLink()) continue;
    const [target, pointee] = await Promise.all([fs.realpath(at), fs.stat(at)]);
    if (pointee.uid !== link.uid) foreignLinkAt ??= at;
    if (!isUnder(realRoot, target)) leavesRootAt ??= at;
    links.push({ at, target });
  }
  return { leavesRootAt, foreignLinkAt, links };
}

/** `p` (at or under `from`) moved onto `to`: where it would be if no symlink were on its way. */
export function rebase(from: string, to: string, p: string): string {
  const rest = p.slice(from.endsWith('/') ? from.length - 1 : from.length);
  if (to.endsWith('/')) return rest ? to.slice(0, -1) + rest : to;
  return to + rest;
}

export interface Alias {
  readonly path: string;
  /** The link itself now leads elsewhere (its target or an ancestor changed): drop watchers below it too. */
  readonly replaced: boolean;
}

/** The links the cache has seen, by target, to translate changes at targets into changes at joined paths. */
export class LinkAliases {
  private readonly byTarget = new Map<string, Set<string>>();
  private count = 0;

  constructor(private readonly max: number) {}

  /** Remembers a link; false when the table is full (then entries through it must not be cached). */
  add(link: Link): boolean {
    let ats = this.byTarget.get(link.target);
    if (ats?.has(link.at)) return true;
    if (this.count >= this.max) return false;
    if (!ats) this.byTarget.set(link.target, (ats = new Set()));
    ats.add(link.at);
    this.count++;
    return true;
  }

  /** The joined paths a change at the real path `changed` also concerns. */
  aliasesOf(changed: string): Alias[] {
    const out: Alias[] = [];
    for (const [target, ats] of this.byTarget) {
      if (isSameOrBelow(changed, target)) {
        for (const at of ats) out.push({ path: at, replaced: true });
      } else if (isSameOrBelow(target, changed)) {
        const rest = changed.slice(target.endsWith('/') ? target.length - 1 : target.length);
        for (const at of ats) out.push({ path: at + rest, replaced: false });
      }
    }
    return out;
  }

  clear(): void {
    this.byTarget.clear();
    this.count = 0;
  }
}
