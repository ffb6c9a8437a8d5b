// The end of every chain: files under the site root, with index files, mime types and directory redirects.
// (Validators, ranges, caching and precompressed variants come with the full file server.)
import { createReadStream, promises as fs, type Stats } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import mime from 'mime-types';
import type { Handler } from '../../core/chain.js';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import type { SiteConfig } from '../../core/site.js';
import { joinUnderRoot, realUnderRoot } from './resolve.js';

interface Found {
  file: string;
  stat: Stats;
}

export function staticFiles(site: Readonly<SiteConfig>): Handler {
  const root = site.root;
  const hidden = new Set(site.hiddenFiles);
  const indexFiles = [...site.indexFiles];
  let realRoot: Promise<string> | undefined;
  const getRealRoot = () => (realRoot ??= fs.realpath(root).catch(() => root));

  async function statUnderRoot(file: string): Promise<Found | undefined> {
    try {
      const real = await realUnderRoot(await getRealRoot(), file);
      if (hidden.has(real) || hidden.has(file)) return undefined;
      return { file: real, stat: await fs.stat(real) };
    } catch (err) {
      if (err instanceof HttpError) return undefined;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG' || code === 'ELOOP')
        return undefined;
      if (code === 'EACCES' || code === 'EPERM') throw new HttpError(403, undefined, { cause: err });
      throw err;
    }
  }

  return async (ctx: RequestContext) => {
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD')
      throw new HttpError(405, undefined, { headers: { Allow: 'GET, HEAD' } });
    const urlPath = ctx.path;
    const found = await statUnderRoot(joinUnderRoot(root, urlPath));
    if (!found) throw new HttpError(404);

    if (found.stat.isDirectory()) {
      if (!urlPath.endsWith('/')) return redirect(ctx, `${urlPath}/`);
      for (const name of indexFiles) {
        const candidate = await statUnderRoot(joinUnderRoot(root, urlPath + name));
        if (candidate?.stat.isFile()) return sendFile(ctx, candidate, name);
      }
      throw new HttpError(404);
    }
    if (!found.stat.isFile()) throw new HttpError(404);
    if (urlPath.endsWith('/')) return redirect(ctx, urlPath.replace(/\/+$/, ''));
    return sendFile(ctx, found, urlPath);
  };
}

/** 301 to the canonical form of a path, keeping the site prefix and the query. */
function redirect(ctx: RequestContext, toPath: string): void {
  const prefix = ctx.site.config.address.path;
  const encoded = encodeURI(prefix + toPath)
    .replace(/\?/g, '%3F')
    .replace(/#/g, '%23');
  const location = ctx.query ? `${encoded}?${ctx.query}` : encoded;
  ctx.res.writeHead(301, { Location: location, 'Content-Length': 0 });
  ctx.res.end();
}

async function sendFile(ctx: RequestContext, found: Found, nameForType: string): Promise<void> {
  const { res, req } = ctx;
  const type =
    mime.contentType(nameForType.slice(nameForType.lastIndexOf('/') + 1)) || 'application/octet-stream';
  res.statusCode = 200;
  // A type set by outer middleware (the `mime` directive) wins, as with Go's ServeContent.
  if (!res.hasHeader('content-type')) res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', found.stat.size);
  res.setHeader('Last-Modified', found.stat.mtime.toUTCString());
  if (req.method === 'HEAD' || found.stat.size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(found.file);
  try {
    await pipeline(stream, res);
  } catch (err) {
    // A client that went away is not an error; a read that failed mid-body must not look complete.
    if (!res.destroyed && !res.writableFinished) res.destroy(err as Error);
  }
}
