// The tunnel registry's Redis scripts (each one atomic). An entry `t/<site>/<host>` is JSON
// {i: instance id, a: its relay address, t: client token, s: secret id, o: owning process}; `inst/<id>` exists
// while the instance lives; `s/<site>/<secret id>` is a sorted set of the secret's names, scored by expiry.
import { createHash } from 'node:crypto';
import type { RedisLink } from '../redis.js';

/** What a registry entry holds (short field names: it is read on every uncached lookup). */
export interface Entry {
  /** Instance id. */
  i: string;
  /** The instance's relay address (host:port). */
  a: string;
  /** The client's token. */
  t: string;
  /** Secret id. */
  s: string;
  /** The process of the instance that holds the session (a worker), so a sibling's late release is a no-op. */
  o: string;
}

const NOW = `local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)`;

/**
 * KEYS: entry, secret's set. ARGV: new entry, ttl ms, max sessions, take same token (1/0), inst key prefix,
 * set key prefix, host. Free, held by a dead instance, held by this instance, or the same client with ARGV[4]: take
 * it (if the secret's live names leave room). Another client on a live instance: 'taken'. The same client on
 * another live instance: 'evict' (the caller closes that session, then claims again with ARGV[4] = 1).
 */
const CLAIM = `local new = cjson.decode(ARGV[1])
local raw = redis.call('GET', KEYS[1])
local cur = raw and cjson.decode(raw)
if cur and cur.i ~= new.i and redis.call('EXISTS', ARGV[5] .. cur.i) == 1 then
  if cur.t ~= new.t then return {'taken', raw} end
  if ARGV[4] ~= '1' then return {'evict', raw} end
end
${NOW}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local host = ARGV[7]
if not redis.call('ZSCORE', KEYS[2], host) and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return {'too-many-sessions', ''}
end
if cur and cur.s ~= new.s then redis.call('ZREM', ARGV[6] .. cur.s, host) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), host)
return {'ok', raw or ''}`;

/**
 * KEYS: the instance key, then n entries, then their n sets. ARGV: instance value, instance ttl, entry ttl,
 * then per entry its JSON and host. Per entry: 'ok' (still ours, expiry pushed), 'restored' (gone, e.g. a
 * restarted Redis: written again) or 'lost' (names someone else now: the session must close).
 */
const RENEW = `local n = (#KEYS - 1) / 2
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local ttl = tonumber(ARGV[3])
${NOW}
local out = {}
for k = 1, n do
  local mine = ARGV[2 + 2 * k]
  local host = ARGV[3 + 2 * k]
  local raw = redis.call('GET', KEYS[1 + k])
  local result = 'lost'
  if not raw then
    redis.call('SET', KEYS[1 + k], mine, 'PX', ttl)
    result = 'restored'
  else
    local cur = cjson.decode(raw)
    local m = cjson.decode(mine)
    if cur.i == m.i and cur.o == m.o and cur.t == m.t then
      redis.call('PEXPIRE', KEYS[1 + k], ttl)
      result = 'ok'
    end
  end
  if result ~= 'lost' then redis.call('ZADD', KEYS[1 + n + k], now + ttl, host) end
  out[k] = result
end
return out`;

/** KEYS: entry, set. ARGV: instance, owner, token, host. Deletes the entry only if it is still this one's. */
const RELEASE = `local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local cur = cjson.decode(raw)
if cur.i ~= ARGV[1] or cur.o ~= ARGV[2] or cur.t ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[4])
return 1`;

/** KEYS: entry. ARGV: inst key prefix. The entry ('' if none) and whether its instance lives (1/0). */
const LOOKUP = `local raw = redis.call('GET', KEYS[1])
if not raw then return {'', 0} end
local cur = cjson.decode(raw)
return {raw, redis.call('EXISTS', ARGV[1] .. cur.i)}`;

/** A TCP port entry `tp/<site>/<port>`: which tunnel of which instance listens on the site's public port. */
export interface PortEntry {
  /** Site key. */
  k: string;
  /** The tunnel's public host. */
  h: string;
  /** The port. */
  p: number;
  /** Instance id. */
  i: string;
  /** The instance's relay address. */
  a: string;
  /** The owning process of the instance. */
  o: string;
}

/**
 * KEYS: port entry, the set of port entry keys. ARGV: new entry, ttl ms, inst key prefix. Takes the port
 * unless another live instance has it (1 taken, 0 refused). Within one instance the bind is the lock already.
 */
const CLAIM_PORT = `local new = cjson.decode(ARGV[1])
local raw = redis.call('GET', KEYS[1])
if raw then
  local cur = cjson.decode(raw)
  if cur.i ~= new.i and redis.call('EXISTS', ARGV[3] .. cur.i) == 1 then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1])
return 1`;

/**
 * KEYS: the set of port entry keys, then port entries. ARGV: ttl, then each entry's JSON. Per entry 'ok',
 * 'restored' or 'lost' (as RENEW).
 */
const RENEW_PORTS = `local out = {}
for k = 2, #KEYS do
  local raw = redis.call('GET', KEYS[k])
  if not raw then
    redis.call('SET', KEYS[k], ARGV[k], 'PX', ARGV[1])
    redis.call('SADD', KEYS[1], KEYS[k])
    out[k - 1] = 'restored'
  elseif raw == ARGV[k] then
    redis.call('PEXPIRE', KEYS[k], ARGV[1])
    out[k - 1] = 'ok'
  else
    out[k - 1] = 'lost'
  end
end
return out`;

/** KEYS: the set of port entry keys. Every live port entry (JSON); expired ones leave the set. */
const LIST_PORTS = `local out = {}
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local raw = redis.call('GET', key)
  if raw then out[#out + 1] = raw else redis.call('SREM', KEYS[1], key) end
end
return out`;

/** KEYS: port entry. ARGV: the entry as written. Deletes it only if it is still that one. */
const RELEASE_PORT = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`;

type Client = RedisLink['client'];

class Script {
  private readonly sha: string;
  constructor(private readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex');
  }

  /** EVALSHA, and EVAL once when Redis does not know the script yet (a fresh or restarted Redis). */
  async run(client: Client, keys: string[], args: string[]): Promise<unknown> {
    try {
      return await client.evalSha(this.sha, { keys, arguments: args });
    } catch (err) {
      if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
      return client.eval(this.source, { keys, arguments: args });
    }
  }
}

export const scripts = {
  claim: new Script(CLAIM),
  renew: new Script(RENEW),
  release: new Script(RELEASE),
  lookup: new Script(LOOKUP),
  claimPort: new Script(CLAIM_PORT),
  renewPorts: new Script(RENEW_PORTS),
  releasePort: new Script(RELEASE_PORT),
  listPorts: new Script(LIST_PORTS),
};
