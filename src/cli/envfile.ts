// -envfile: KEY=VALUE lines loaded into the environment before the Caddyfile is parsed (Caddy v1 rules).
import { readFileSync } from 'node:fs';

export function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) throw new Error(`Can't parse line ${i + 1}; line should be in KEY=VALUE format`);
    const key = line.slice(0, eq);
    if (!key) throw new Error(`Can't parse line ${i + 1}; key should not be empty string`);
    if (/\s/.test(key)) throw new Error(`Can't parse line ${i + 1}; key should not contain whitespace`);
    vars.set(key, line.slice(eq + 1));
  });
  return vars;
}

export function loadEnvFile(file: string, env: NodeJS.ProcessEnv): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`reading envfile ${file}: ${(err as Error).message}`, { cause: err });
  }
  for (const [k, v] of parseEnvFile(text)) env[k] = v;
}
