// Environment substitution at parse time, as Caddy v1's replaceEnvVars: `{%NAME%}` first, then `{$NAME}`.

export type Env = Record<string, string | undefined>;

/**
 * Guard for Caddy's restart-the-scan QUIRK: after each replacement the scan starts again from the beginning, so a
 * value that itself contains `{$…}` is expanded again. Caddy v1 loops forever on a self-reference (`X={$X}`); we
 * stop after this many replacements, or when the text outgrows MAX_EXPANDED_LENGTH, and report an error instead.
 */
export const MAX_ENV_REPLACEMENTS = 100;
export const MAX_EXPANDED_LENGTH = 1 << 20;

export class EnvExpansionError extends Error {
  constructor(text: string) {
    super(
      `Environment variable expansion of '${text}' does not terminate (a variable refers to itself?); ` +
        `gave up after ${MAX_ENV_REPLACEMENTS} replacements or ${MAX_EXPANDED_LENGTH} characters`,
    );
    this.name = 'EnvExpansionError';
  }
}

function lookup(env: Env, name: string): string {
  const v = Object.hasOwn(env, name) ? env[name] : undefined;
  return typeof v === 'string' ? v : ''; // unset means empty, as os.Getenv
}

function replaceRefs(s: string, refStart: string, refEnd: string, env: Env, original: string): string {
  let replacements = 0;
  let index = s.indexOf(refStart);
  while (index !== -1) {
    // The end is searched from the start of the reference (so `{{ .Name }} {$X}` works).
    const endIndex = s.indexOf(refEnd, index);
    if (endIndex === -1) break; // no closing: left literally
    if (endIndex <= index + refStart.length) return s; // empty name (`{$}`, `{%%}`): left literally, scan stops
    const ref = s.slice(index, endIndex + refEnd.length);
    const value = lookup(env, ref.slice(refStart.length, ref.length - refEnd.length));
    s = s.split(ref).join(value); // every occurrence of the same reference
    if (++replacements > MAX_ENV_REPLACEMENTS || s.length > MAX_EXPANDED_LENGTH) {
      throw new EnvExpansionError(original);
    }
    index = s.indexOf(refStart); // QUIRK: the scan restarts from the beginning
  }
  return s;
}

/** Expands `{%NAME%}` then `{$NAME}` in one token's text. Throws EnvExpansionError on runaway self-reference. */
export function replaceEnvVars(s: string, env: Env): string {
  if (!s.includes('{')) return s;
  const original = s;
  s = replaceRefs(s, '{%', '%}', env, original);
  return replaceRefs(s, '{$', '}', env, original);
}
