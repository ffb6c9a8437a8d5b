// The end of every chain: files under the site root, with index files, mime types, directory redirects,
// validators and conditional requests, ranges and precompressed sidecars. What the file system said is
// cached per root (src/core/files) and trusted until a directory watcher reports a change.
import path from 'node:path';
import type { OutgoingHttpHeaders } from 'node:http';
import mime from 'mime-types';
import type { Handler } from '../../core/chain.js';
import type { RequestContext } from '../../core/context.js';
import { HttpError } from '../../core/errors.js';
import { siteFiles, type FileInfo, type SiteFiles } from '../../core/files/index.js';
import type { SiteConfig } from '../../core/site.js';
import { preconditions, rangeStillValid } from './conditional.js';
import { chooseVariant, variantsOf } from './encoding.js';
import { parseRange, type RangeResult } from './range.js';
import { openSource, sendMultipart, sendRange, sendWhole, type Source } from './send.js';
import { refuseDeclaredOversize } from '../../core/body.js';

export function staticFiles(site: Readonly<SiteConfig>): Handler {
  const files = siteFiles(site);
  const indexFiles = [...site.indexFiles];
  const indexSet = new Set(indexFiles);
  const prefix = site.address.path === '/' ? '' : site.address.path;

  return async (ctx: RequestContext) => {
    if (ctx.maxBodyBytes !== Infinity) refuseDeclaredOversize(ctx);
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD')
      throw new HttpError(405, undefined, { headers: { Allow: 'GET, HEAD' } });
    const urlPath = ctx.path;
    const full = files.join(urlPath);
    let info = files.lookup(full);
    if (info instanceof Promise) info = await info;
    if (!info) throw new HttpError(404);

    if (info.isDir) {
      if (!urlPath.endsWith('/')) return redirect(ctx, prefix, `${urlPath}/`);
      for (const name of indexFiles) {
        let candidate = files.lookup(path.join(full, name));
        if (candidate instanceof Promise) candidate = await candidate;
        if (candidate?.isFile) return serveFile(ctx, files, candidate, name);
      }
      throw new HttpError(404);
    }
    if (!info.isFile) throw new HttpError(404);

    // Canonical form: no trailing slash on a file, and `/dir/` rather than `/dir/index.html`.
    let canonical = urlPath;
    while (canonical.length > 1 && canonical.endsWith('/')) canonical = canonical.slice(0, -1);
    const base = canonical.slice(canonical.lastIndexOf('/') + 1);
    // Not after a rewrite: `rewrite / /index.html` would otherwise loop (a known Caddy v1 trap).
    if (indexSet.has(base) && !wasRewritten(ctx, prefix)) canonical = canonical.slice(0, -base.length);
    if (canonical !== urlPath) return redirect(ctx, prefix, canonical);
    return serveFile(ctx, files, info, base);
  };
}

function wasRewritten(ctx: RequestContext, prefix: string): boolean {
  const original = ctx.originalPath;
  return original.length !== prefix.length + ctx.path.length || !original.endsWith(ctx.path);
}

/** 301 to the canonical form of a path, keeping the site prefix and the query. */
function redirect(ctx: RequestContext, prefix: string, toPath: string): void {
  // Collapse leading slashes: `//evil.example/` must not become a protocol-relative Location.
  const encoded = encodeURI(prefix + toPath.replace(/^\/+/, '/'))
    .replace(/\?/g, '%3F')
    .replace(/#/g, '%23');
  const location = ctx.query ? `${encoded}?${ctx.query}` : encoded;
  ctx.res.writeHead(301, { Location: location, 'Content-Length': 0 });
  ctx.res.end();
}

async function serveFile(ctx: RequestContext, files: SiteFiles, info: FileInfo, name: string): Promise<void> {
  const { req, res } = ctx;
  const method = req.method ?? 'GET';
  let variants = variantsOf(files, info);
  if (variants instanceof Promise) variants = await variants;
  const chosen = variants.length === 0 ? undefined : chooseVariant(req.headers['accept-encoding'], variants);
  const rep = chosen?.info ?? info;

  const pre = preconditions(req.headers, rep, method);
  if (pre === 412) throw new HttpError(412);
  const headers: OutgoingHttpHeaders = { ETag: rep.etag, 'Last-Modified': rep.lastModified };
  if (variants.length !== 0) headers.Vary = withVary(res.getHeader('vary'));
  if (pre === 304) {
    res.removeHeader('content-type');
    res.removeHeader('content-length');
    res.writeHead(304, headers);
    res.end();
    return;
  }
  // A `mime` directive sets the type before us; otherwise the original's name decides (also for sidecars).
  headers['Content-Type'] = res.getHeader('content-type') ?? typeFor(name);
  headers['Accept-Ranges'] = 'bytes';
  if (chosen) headers['Content-Encoding'] = chosen.encoding;

  let ranges: RangeResult = 'ignore';
  const range = req.headers.range;
  if (range !== undefined && rangeStillValid(req.headers['if-range'] as string | undefined, rep))
    ranges = parseRange(range, rep.size);
  if (ranges === 'unsatisfiable')
    throw new HttpError(416, undefined, { headers: { 'Content-Range': `bytes */${rep.size}` } });

  const source: Source = method === 'HEAD' ? undefined : await openSource(files, rep);
  if (ranges === 'ignore') return sendWhole(res, headers, rep, source);
  if (ranges.length === 1) return sendRange(res, headers, rep, source, ranges[0]);
  return sendMultipart(res, headers, rep, source, ranges);
}

function withVary(existing: number | string | string[] | undefined): string {
  if (existing === undefined) return 'Accept-Encoding';
  const value = Array.isArray(existing) ? existing.join(', ') : String(existing);
  return /(^|,)\s*accept-encoding\s*(,|$)/i.test(value) ? value : `${value}, Accept-Encoding`;
}

/** mime-types adds `charset=utf-8` to text types. One lookup per extension, ever. */
const types = new Map<string, string>();

function typeFor(name: string): string {
  const ext = path.extname(name).toLowerCase();
  let type = types.get(ext);
  if (type === undefined) {
    type = (ext && mime.contentType(ext)) || 'application/octet-stream';
    if (types.size < 1024) types.set(ext, type);
  }
  return type;
}
