// node:http as our code must load it: through require, never an ESM import. Why: from Node 22 an ESM import
// of a builtin builds its namespace by reading every export, and node:http's lazy WebSocket, MessageEvent and
// CloseEvent getters then load undici, which nothing here uses (nodejs/node#59686): 15 MB more RSS in every
// process (each worker, the tunnel client) on Node 26. Types still come from `import type … 'node:http'`,
// which leaves no import behind; lint refuses any other import of node:http in src.
import { createRequire } from 'node:module';
import type * as NodeHttp from 'node:http';

const http = createRequire(import.meta.url)('node:http') as typeof NodeHttp;
export default http;
export const { STATUS_CODES, ServerResponse, validateHeaderName, validateHeaderValue } = http;
