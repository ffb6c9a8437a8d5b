// The keep-alive backend of the proxy and tunnel scenarios: answers at once with a small fixed body, or with
// a 100 KB HTML page at /page.html (the proxied gzip scenario: compressed by the server in front every time),
// or with n bytes at /bytes?n= (big downloads, bench/cpu.ts), written from one reused buffer.
// Run as its own process: node build/bench/backend.js <port>
import http from 'node:http';

const body = Buffer.from('hello from the backend, a small and fast answer\n');
const chunk = Buffer.alloc(256 * 1024, 'backend bytes ');
const para = '<p>The quick brown fox jumps over the lazy dog, again and again, for the compressor.</p>\n';
let html = '<!doctype html><html><head><title>bench</title></head><body>\n';
for (let i = 0; html.length < 100 * 1024; i++) html += para.replace('again', `again ${i}`);
const page = Buffer.from(`${html.slice(0, 100 * 1024 - 15)}</body></html>\n`);

const server = http.createServer({ keepAlive: true }, (req, res) => {
  req.resume();
  if (req.url?.startsWith('/bytes?n=')) {
    let left = Number(req.url.slice(9)) || 0;
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': left });
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return;
      }
      res.end();
    };
    res.on('drain', pump);
    pump();
    return;
  }
  if (req.url === '/page.html') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length });
    res.end(page);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
