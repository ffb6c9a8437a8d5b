// PHP scripts the FastCGI tests run through a real php-fpm, written into a temporary document root.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const SCRIPTS: Record<string, string> = {
  'echo.php': `<?php header('Content-Type: text/plain; charset=utf-8'); echo 'hello ', $_GET['name'] ?? 'world';`,
  // Every CGI parameter PHP saw, as JSON.
  'server.php': `<?php header('Content-Type: application/json'); echo json_encode($_SERVER);`,
  'post.php': `<?php header('Content-Type: application/json');
echo json_encode(['post' => $_POST, 'raw' => file_get_contents('php://input'), 'method' => $_SERVER['REQUEST_METHOD']]);`,
  'upload.php': `<?php header('Content-Type: application/json'); $f = $_FILES['file'] ?? null;
echo json_encode(['name' => $f['name'] ?? null, 'size' => $f['size'] ?? null, 'error' => $f['error'] ?? null,
  'sha256' => $f ? hash_file('sha256', $f['tmp_name']) : null, 'note' => $_POST['note'] ?? null]);`,
  // Hashes the raw body as it streams in.
  'hash.php': `<?php $h = hash_init('sha256'); $n = 0; $in = fopen('php://input', 'rb');
while (!feof($in)) { $d = fread($in, 65536); if ($d === false || $d === '') break; $n += strlen($d); hash_update($h, $d); }
echo $n, ' ', hash_final($h);`,
  'status.php': `<?php http_response_code((int)($_GET['code'] ?? 200)); echo 'status ', http_response_code();`,
  'headers.php': `<?php setcookie('first', 'one'); setcookie('second', 'two');
header('X-Custom: yes'); header('X-Multi: a'); header('X-Multi: b', false); echo 'with headers';`,
  'redirect.php': `<?php header('Location: /echo.php?name=redirected'); echo 'moved';`,
  'status-header.php': `<?php header('Status: 418 I am a teapot'); echo 'teapot';`,
  // mb megabytes of output, one flushed megabyte at a time.
  'stream.php': `<?php while (ob_get_level()) ob_end_flush(); header('Content-Type: application/octet-stream'); $chunk = str_repeat('0123456789abcdef', 65536);
for ($i = 0, $n = (int)($_GET['mb'] ?? 1); $i < $n; $i++) { echo $chunk; flush(); }`,
  'sleep.php': `<?php while (ob_get_level()) ob_end_flush(); echo 'before '; flush(); usleep((int)($_GET['ms'] ?? 0) * 1000); echo 'after';`,
  // Every byte value, ?n times over (256 * n bytes).
  'bytes.php': `<?php header('Content-Type: application/octet-stream'); $s = ''; for ($i = 0; $i < 256; $i++) $s .= chr($i);
echo str_repeat($s, (int)($_GET['n'] ?? 1));`,
  'slow-start.php': `<?php usleep((int)($_GET['ms'] ?? 0) * 1000); echo 'late';`,
  'fatal.php': `<?php echo_nonexistent_function_for_test();`,
  'stderr.php': `<?php error_log('a message on stderr for the test'); echo 'logged';`,
  'pool.php': `<?php echo getenv('FPM_POOL');`,
  'index.php': `<?php header('Content-Type: application/json');
echo json_encode(['front' => true, 'PATH_INFO' => $_SERVER['PATH_INFO'] ?? null, 'SCRIPT_NAME' => $_SERVER['SCRIPT_NAME'],
  'SCRIPT_FILENAME' => $_SERVER['SCRIPT_FILENAME'], 'REQUEST_URI' => $_SERVER['REQUEST_URI'],
  'QUERY_STRING' => $_SERVER['QUERY_STRING'], 'DOCUMENT_URI' => $_SERVER['DOCUMENT_URI']]);`,
  'sub/index.php': `<?php echo 'sub index at ', $_SERVER['SCRIPT_NAME'];`,
  'style.css': `body { color: red }`,
  'noindex/readme.txt': `plain`,
};

/** Writes the scripts into `root` (created if needed). */
export function writePhpApp(root: string): void {
  for (const [name, text] of Object.entries(SCRIPTS)) {
    const file = path.join(root, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}
