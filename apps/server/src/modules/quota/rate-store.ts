import type { Redis } from "ioredis";
import type { Maybe } from "../../infra/maybe.ts";

/** One sliding-window rule to apply to a request: at most `limit` per minute. */
export interface RateCheck {
  key: string;
  limit: number;
  amount: number;
}

export type RateResult =
  | { ok: true; remaining: number[]; resetMs: number }
  | { ok: false; index: number; retryAfterMs: number; remaining: number[]; resetMs: number };

/**
 * Per-minute rates over a sliding window, estimated from this minute's count and the last minute's
 * weighted by how much of it still overlaps the window. `consume` checks every rule and counts the
 * request against all of them only if all allow it.
 */
export interface RateStore {
  consume(checks: RateCheck[], nowMs: number): Maybe<RateResult>;
  /** Corrects the current minute of a rule (tokens: the estimate against the actual count). */
  adjust(key: string, delta: number, nowMs: number): Maybe<void>;
}

const WINDOW_MS = 60_000;

function position(nowMs: number) {
  const bucket = Math.floor(nowMs / WINDOW_MS);
  const elapsed = nowMs - bucket * WINDOW_MS;
  return { bucket, elapsed, weight: 1 - elapsed / WINDOW_MS };
}

/** How long until the estimate has room for `amount` again. */
function waitMs(limit: number, current: number, previous: number, amount: number, elapsed: number): number {
  const room = limit - current - amount;
  // This minute alone is full: wait until it becomes the previous one.
  if (room < 0 || previous <= 0) return WINDOW_MS - elapsed;
  return Math.max(0, WINDOW_MS * (1 - room / previous) - elapsed);
}

/** `counts`: each check's count in this minute and in the last one, in pairs (current, previous, …). */
function evaluate(checks: RateCheck[], counts: number[], nowMs: number): RateResult {
  const { elapsed, weight } = position(nowMs);
  const remaining: number[] = new Array(checks.length);
  let refused = -1;
  for (let index = 0; index < checks.length; index++) {
    const check = checks[index] as RateCheck;
    const estimate = (counts[index * 2] ?? 0) + (counts[index * 2 + 1] ?? 0) * weight;
    remaining[index] = Math.max(0, Math.floor(check.limit - estimate - check.amount));
    if (refused < 0 && estimate + check.amount > check.limit) refused = index;
  }
  const resetMs = WINDOW_MS - elapsed;
  if (refused < 0) return { ok: true, remaining, resetMs };
  const check = checks[refused] as RateCheck;
  const retryAfterMs = waitMs(check.limit, counts[refused * 2] ?? 0, counts[refused * 2 + 1] ?? 0, check.amount, elapsed);
  return { ok: false, index: refused, retryAfterMs, remaining, resetMs };
}

/** A rule's count in its current minute and in the minute before. */
interface Window {
  bucket: number;
  current: number;
  previous: number;
}

export function createMemoryRateStore(): RateStore {
  const windows = new Map<string, Window>();
  let sweptBucket = 0;
  const windowOf = (key: string, bucket: number) => {
    let window = windows.get(key);
    if (!window) {
      window = { bucket, current: 0, previous: 0 };
      windows.set(key, window);
    } else if (window.bucket !== bucket) {
      window.previous = window.bucket === bucket - 1 ? window.current : 0;
      window.current = 0;
      window.bucket = bucket;
    }
    return window;
  };
  const sweep = (bucket: number) => {
    if (bucket === sweptBucket) return;
    sweptBucket = bucket;
    for (const [key, window] of windows) if (window.bucket < bucket - 1) windows.delete(key);
  };
  return {
    consume(checks, nowMs) {
      const { bucket } = position(nowMs);
      sweep(bucket);
      const found: Window[] = new Array(checks.length);
      const counts: number[] = new Array(checks.length * 2);
      for (let index = 0; index < checks.length; index++) {
        const window = windowOf((checks[index] as RateCheck).key, bucket);
        found[index] = window;
        counts[index * 2] = window.current;
        counts[index * 2 + 1] = window.previous;
      }
      const result = evaluate(checks, counts, nowMs);
      if (result.ok)
        for (let index = 0; index < checks.length; index++) (found[index] as Window).current += (checks[index] as RateCheck).amount;
      return result;
    },
    adjust(key, delta, nowMs) {
      const window = windowOf(key, position(nowMs).bucket);
      window.current = Math.max(0, window.current + delta);
    },
  };
}

const CONSUME = `
local n = #KEYS / 2
local weight = tonumber(ARGV[1])
local counts = {}
for i = 1, n do
  local current = tonumber(redis.call('GET', KEYS[i * 2 - 1]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[i * 2]) or '0')
  counts[#counts + 1] = current
  counts[#counts + 1] = previous
end
local allowed = 1
for i = 1, n do
  if counts[i * 2 - 1] + counts[i * 2] * weight + tonumber(ARGV[i * 2 + 1]) > tonumber(ARGV[i * 2]) then allowed = 0 end
end
if allowed == 1 then
  for i = 1, n do
    redis.call('INCRBY', KEYS[i * 2 - 1], ARGV[i * 2 + 1])
    redis.call('PEXPIRE', KEYS[i * 2 - 1], 130000)
  end
end
counts[#counts + 1] = allowed
return counts`;

/** The same windows in Redis, shared by every instance; one Lua script checks and counts. */
export function createRedisRateStore(redis: Redis, prefix: string): RateStore {
  const name = (key: string, bucket: number) => `${prefix}rate:${key}@${bucket}`;
  return {
    async consume(checks, nowMs) {
      const { bucket, weight } = position(nowMs);
      const keys = checks.flatMap((check) => [name(check.key, bucket), name(check.key, bucket - 1)]);
      const args = [weight, ...checks.flatMap((check) => [check.limit, check.amount])];
      const reply = (await redis.eval(CONSUME, keys.length, ...keys, ...args)) as number[];
      // The script counted the request when it allowed it; evaluate on the counts it saw.
      return evaluate(checks, reply.slice(0, checks.length * 2).map(Number), nowMs);
    },
    async adjust(key, delta, nowMs) {
      const current = name(key, position(nowMs).bucket);
      const value = await redis.incrby(current, Math.round(delta));
      if (value < 0) await redis.set(current, 0, "KEEPTTL");
      await redis.pexpire(current, 130_000);
    },
  };
}
