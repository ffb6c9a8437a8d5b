// Flat config: typescript-eslint's type-checked rules over src and test, and the layering rules of
// docs/architecture.md as import restrictions (a layer importing one above it, or a directive importing
// another directive, fails lint).
import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** `no-restricted-imports` with these import-string patterns (regular expressions) and one message. */
function restrict(message, ...regexes) {
  return { 'no-restricted-imports': ['error', { patterns: regexes.map((regex) => ({ regex, message })) }] };
}

const ABOVE_MIDDLEWARE = String.raw`(^|/)(app|engine|runtime|cli)\.js$|(^|/)(cluster|cli)/`;
const directiveFolders = readdirSync('src/middleware', { withFileTypes: true })
  .filter((e) => e.isDirectory())
  .map((e) => e.name);

const layers = [
  {
    files: ['src/caddyfile/**/*.ts'],
    rules: restrict('src/caddyfile imports nothing else of the project.', String.raw`^\.\./`),
  },
  {
    files: ['src/core/**/*.ts'],
    rules: restrict(
      'src/core never imports a directive, the tunnel, or the layers above it.',
      String.raw`(^|/)(middleware|tunnel)/`,
      ABOVE_MIDDLEWARE,
    ),
  },
  {
    files: ['src/tunnel/**/*.ts'],
    rules: restrict(
      'src/tunnel (the wire protocol) imports core only.',
      String.raw`(^|/)middleware/`,
      ABOVE_MIDDLEWARE,
    ),
  },
  {
    // A single-file directive: anything beside it in src/middleware is another directive.
    files: ['src/middleware/*.ts'],
    ignores: ['src/middleware/index.ts'],
    rules: restrict(
      'A directive imports core and its own files only, never another directive (DESIGN.md).',
      String.raw`^\./`,
      ABOVE_MIDDLEWARE,
    ),
  },
  ...directiveFolders.flatMap((dir) => [
    {
      files: [`src/middleware/${dir}/*.ts`],
      rules: restrict(
        'A directive imports core and its own files only, never another directive (DESIGN.md).',
        String.raw`^\.\./[^.]`,
        ABOVE_MIDDLEWARE,
      ),
    },
    {
      files: [`src/middleware/${dir}/*/**/*.ts`],
      rules: restrict(
        'A directive imports core and its own files only, never another directive (DESIGN.md).',
        String.raw`^\.\./\.\./[^.]`,
        ABOVE_MIDDLEWARE,
      ),
    },
  ]),
];

export default tseslint.config(
  { ignores: ['build/', 'node_modules/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // node:test's test()/describe() return promises the runner awaits itself.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            {
              from: 'package',
              package: 'node:test',
              name: ['test', 'it', 'describe', 'suite', 'before', 'after'],
            },
          ],
        },
      ],
      '@typescript-eslint/require-await': 'off',
    },
  },
  ...layers,
  {
    // See src/core/node-http.ts: an ESM import of node:http costs every process 15 MB on Node 26.
    files: ['src/**/*.ts'],
    ignores: ['src/core/node-http.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: ['node:http', 'http'].map((name) => ({
            name,
            allowTypeImports: true,
            message: 'Import node:http from src/core/node-http.ts (an ESM import of it loads undici).',
          })),
        },
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
