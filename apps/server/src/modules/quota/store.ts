import type { Redis } from "ioredis";
import type { Maybe } from "../../infra/maybe.ts";

/** One amount to reserve against one counter, refused if it would pass `max`. */
export interface Charge {
  key: string;
  tenantId: string;
  max: number;
  amount: number;
  /** Seconds the counter must live (until its window is over), 0 for ever. */
  ttlSeconds: number;
}

/** A reservation turned into actual use: `reserved` released, `used` added. */
export interface Settlement {
  key: string;
  tenantId: string;
  reserved: number;
  used: number;
  ttlSeconds: number;
}

export interface CounterState {
  used: number;
  reserved: number;
}

/**
 * Quota counters: `used` (settled) and `reserved` (admitted, not yet settled). `reserve` checks and
 * adds every charge atomically, all or none; `settle` turns a reservation into actual use.
 */
export interface QuotaStore {
  /** On success, `totals` holds each counter's used + reserved right after this reservation. */
  reserve(charges: Charge[]): Maybe<{ ok: true; totals: number[] } | { ok: false; key: string }>;
  /** Answers each counter's settled use right after this settlement, in the same order. */
  settle(settlements: Settlement[]): Maybe<number[]>;
  read(keys: string[]): Promise<Map<string, CounterState>>;
  /** Seeds a counter's settled use from the database when this store has not seen it yet. */
  seed(key: string, used: number, ttlSeconds: number): Promise<void>;
  known(key: string): boolean;
}

/** Counters in this process: JavaScript runs one callback at a time, so check-and-add is atomic. */
export function createMemoryQuotaStore(): QuotaStore {
  const counters = new Map<string, CounterState>();
  const get = (key: string) => {
    let counter = counters.get(key);
    if (!counter) {
      counter = { used: 0, reserved: 0 };
      counters.set(key, counter);
    }
    return counter;
  };
  return {
    reserve(charges) {
      // The counters looked up once, checked all, then added to: all or none.
      const found: CounterState[] = new Array(charges.length);
      for (let index = 0; index < charges.length; index++) {
        const charge = charges[index] as Charge;
        const counter = get(charge.key);
        if (counter.used + counter.reserved + charge.amount > charge.max) return { ok: false, key: charge.key };
        found[index] = counter;
      }
      const totals: number[] = new Array(charges.length);
      for (let index = 0; index < charges.length; index++) {
        const counter = found[index] as CounterState;
        counter.reserved += (charges[index] as Charge).amount;
        totals[index] = counter.used + counter.reserved;
      }
      return { ok: true, totals };
    },
    settle(settlements) {
      const used: number[] = new Array(settlements.length);
      for (let index = 0; index < settlements.length; index++) {
        const settlement = settlements[index] as Settlement;
        const counter = get(settlement.key);
        counter.reserved = Math.max(0, counter.reserved - settlement.reserved);
        counter.used += settlement.used;
        used[index] = counter.used;
      }
      return used;
    },
    async read(keys) {
      return new Map(keys.map((key) => [key, { ...get(key) }]));
    },
    async seed(key, used) {
      if (!counters.has(key)) counters.set(key, { used, reserved: 0 });
    },
    known: (key) => counters.has(key),
  };
}

const RESERVE = `
for i = 1, #KEYS do
  local used = tonumber(redis.call('HGET', KEYS[i], 'used') or '0')
  local reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0')
  if used + reserved + tonumber(ARGV[i * 3 - 1]) > tonumber(ARGV[i * 3 - 2]) then return i end
end
local totals = {}
for i = 1, #KEYS do
  local reserved = redis.call('HINCRBY', KEYS[i], 'reserved', ARGV[i * 3 - 1])
  totals[i] = reserved + tonumber(redis.call('HGET', KEYS[i], 'used') or '0')
  local ttl = tonumber(ARGV[i * 3])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return totals`;

const SETTLE = `
local used = {}
for i = 1, #KEYS do
  local reserved = redis.call('HINCRBY', KEYS[i], 'reserved', 0 - tonumber(ARGV[i * 3 - 2]))
  if reserved < 0 then redis.call('HSET', KEYS[i], 'reserved', 0) end
  used[i] = redis.call('HINCRBY', KEYS[i], 'used', ARGV[i * 3 - 1])
  local ttl = tonumber(ARGV[i * 3])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return used`;

/** Counters shared by every instance through Redis; each operation is one atomic Lua script. */
export function createRedisQuotaStore(redis: Redis, prefix: string): QuotaStore {
  const seen = new Set<string>();
  const name = (key: string) => `${prefix}quota:${key}`;
  return {
    async reserve(charges) {
      const args = charges.flatMap((charge) => [charge.max, charge.amount, charge.ttlSeconds]);
      const reply = await redis.eval(RESERVE, charges.length, ...charges.map((charge) => name(charge.key)), ...args);
      if (Array.isArray(reply)) return { ok: true, totals: reply.map(Number) };
      return { ok: false, key: (charges[Number(reply) - 1] as Charge).key };
    },
    async settle(settlements) {
      if (settlements.length === 0) return [];
      const args = settlements.flatMap((item) => [Math.round(item.reserved), Math.round(item.used), item.ttlSeconds]);
      const used = (await redis.eval(SETTLE, settlements.length, ...settlements.map((item) => name(item.key)), ...args)) as number[];
      return used.map(Number);
    },
    async read(keys) {
      const pipeline = redis.pipeline();
      for (const key of keys) pipeline.hmget(name(key), "used", "reserved");
      const results = (await pipeline.exec()) ?? [];
      return new Map(
        keys.map((key, index) => {
          const [used, reserved] = (results[index]?.[1] as (string | null)[] | undefined) ?? [];
          return [key, { used: Number(used ?? 0), reserved: Number(reserved ?? 0) }];
        }),
      );
    },
    async seed(key, used, ttlSeconds) {
      await redis.hsetnx(name(key), "used", used);
      if (ttlSeconds > 0) await redis.expire(name(key), ttlSeconds, "NX");
      seen.add(key);
    },
    known: (key) => seen.has(key),
  };
}
