// The keep-alive backend of the proxy and tunnel scenarios: answers at once with a small fixed body.
// Run as its own process: node build/bench/backend.js <port>
import http from 'node:http';

const body = Buffer.from('hello from the backend, a small and fast answer\n');
const server = http.createServer({ keepAlive: true }, (req, res) => {
  req.resume();
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
