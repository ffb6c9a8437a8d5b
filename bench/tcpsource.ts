// The TCP service of the TCP-tunnel scenarios: every connection gets an endless stream of bytes (one
// 256 KiB buffer written again and again, as fast as the reader takes it) until the reader hangs up.
// Run as its own process: node build/bench/tcpsource.js <port>
import net from 'node:net';

const chunk = Buffer.alloc(256 * 1024, 'tcp-tunnel-bench ');

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.on('error', () => socket.destroy());
  const pump = () => {
    while (!socket.destroyed && socket.write(chunk));
  };
  socket.on('drain', pump);
  pump();
});
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
