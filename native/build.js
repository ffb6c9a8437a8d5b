// Builds build/native/deflate.node, the libdeflate binding that gzip uses for whole bodies (native/deflate.c).
//
// It needs a C compiler, libdeflate (Debian: libdeflate-dev) and the running Node's headers (include/node
// beside its binary, where every Node distribution puts them). Without them nodecaddy works the same, with
// node:zlib for every body; so this prints why it did not build and exits 0, unless the binding is required
// (`--require`, or CI=1): then a missing part is an error, so that CI and the published package never lose the
// binding without anyone noticing.
//
// libdeflate is linked statically where its archive is there, so that the binding needs nothing at run time
// but the C library; N-API keeps one binding good for every Node version from 20 on.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const root = path.join(path.dirname(self), '..');
const source = path.join(root, 'native', 'deflate.c');
const target = path.join(root, 'build', 'native', 'deflate.node');
const required = process.argv.includes('--require') || process.env.CI === '1';
const headers = path.join(path.dirname(process.execPath), '..', 'include', 'node');

function skip(why) {
  if (required) {
    process.stderr.write(`native/build.js: cannot build ${path.relative(root, target)}: ${why}\n`);
    process.exit(1);
  }
  process.stderr.write(
    `native/build.js: ${path.relative(root, target)} not built (${why}); gzip uses node:zlib\n`,
  );
  process.exit(0);
}

function mtime(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

if (mtime(target) > Math.max(mtime(source), mtime(self))) process.exit(0);
if (!fs.existsSync(path.join(headers, 'node_api.h'))) skip(`no node_api.h in ${headers}`);
fs.mkdirSync(path.dirname(target), { recursive: true });

const cc = process.env.CC || 'cc';
const flags = ['-std=c11', '-O2', '-fPIC', '-shared', '-fvisibility=hidden', '-Wall', '-Wextra', '-Werror'];
const errors = [];
for (const lib of ['-l:libdeflate.a', '-ldeflate']) {
  try {
    execFileSync(cc, [...flags, '-I', headers, source, '-o', target, lib], { stdio: 'pipe' });
    process.exit(0);
  } catch (err) {
    errors.push(
      err.code === 'ENOENT' ? `no C compiler (${cc})` : String(err.stderr).trim().split('\n').at(-1),
    );
  }
}
skip(`${errors.at(-1)}; install a C compiler and libdeflate (Debian: apt-get install gcc libdeflate-dev)`);
