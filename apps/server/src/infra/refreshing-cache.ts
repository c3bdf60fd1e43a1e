import { LRUCache } from "lru-cache";
import type { Maybe } from "./maybe.ts";

const MISSING = Symbol("missing");
type Held<T> = Exclude<T, undefined> | typeof MISSING;

export interface RefreshingCacheOptions<T> {
  /** Reads the value of a key (`undefined`: there is none). */
  load: (key: string) => Promise<T>;
  /** Entries held at most; the least recently used goes first. */
  max: number;
  /** How long a value is fresh (default: until it is dropped or pushed out). */
  ttlMs?: number;
  /** How long "there is none" is fresh (default: `ttlMs`). */
  missingTtlMs?: number;
  /** The time in milliseconds (default: `performance.now`), for tests. */
  now?: () => number;
}

/**
 * Values loaded from the database, kept in memory by key. Once a key's value has been loaded, asking
 * for it never waits: past its time to live it is answered as it is while one load refreshes it behind
 * the caller (a refresh that fails leaves it as it was, for the next caller to try again). A key never
 * loaded, dropped by `delete`/`clear` (a change seen on the bus), or known to have no value past that
 * knowledge's time to live waits for its load, and every caller asking meanwhile shares that one load. A plain TTL cache made every request in flight
 * when an entry expired query the database at once, and wait for it, on the gateway's hot path.
 */
export class RefreshingCache<T extends NonNullable<unknown> | undefined> {
  readonly #values: LRUCache<string, Held<T>>;
  readonly #load: (key: string) => Promise<T>;
  readonly #missingTtl: number | undefined;
  readonly #loading = new Map<string, Promise<T>>();
  /** Counts drops: a load that started before one does not keep what it read. */
  #epoch = 0;

  constructor(options: RefreshingCacheOptions<T>) {
    const now = options.now;
    // Bounded by a count through `maxSize` rather than `max`: with `max` the cache allocates its index
    // arrays for every entry it could hold when it is made (about 5.5 MB for 200,000, and 3 MB more for
    // the TTL arrays once an entry has a time to live), where most instances hold a few hundred entries.
    this.#values = new LRUCache<string, Held<T>>({
      maxSize: options.max,
      sizeCalculation: () => 1,
      ...(options.ttlMs ? { ttl: options.ttlMs } : {}),
      allowStale: true,
      noDeleteOnStaleGet: true,
      // A given clock is read at every look (lru-cache otherwise reuses one reading for a millisecond).
      ...(now ? { perf: { now }, ttlResolution: 0 } : {}),
    });
    this.#missingTtl = options.missingTtlMs ?? options.ttlMs;
    this.#load = options.load;
  }

  /**
   * The value of `key` (`undefined`: there is none), from memory without a promise whenever one is
   * held, fresh or not; otherwise the promise of its load, shared by every caller until it settles.
   */
  get(key: string): Maybe<T> {
    const held = this.#values.get(key);
    if (held === undefined) return this.#loadOnce(key);
    if (this.#values.getRemainingTTL(key) <= 0) {
      // "There is none" past its time waits for the one load: a key made meanwhile is not refused again.
      if (held === MISSING) return this.#loadOnce(key);
      this.#loadOnce(key).catch(() => undefined);
    }
    return (held === MISSING ? undefined : held) as T;
  }

  /** Keeps a value, fresh from now (`undefined`: there is none). */
  set(key: string, value: T) {
    if (value === undefined) this.#values.set(key, MISSING, this.#missingTtl ? { ttl: this.#missingTtl } : {});
    else this.#values.set(key, value as Exclude<T, undefined>);
  }

  /** Drops a key: its next caller waits for a load. */
  delete(key: string) {
    this.#epoch++;
    this.#loading.delete(key);
    this.#values.delete(key);
  }

  clear() {
    this.#epoch++;
    this.#loading.clear();
    this.#values.clear();
  }

  get size() {
    return this.#values.size;
  }

  #loadOnce(key: string): Promise<T> {
    const pending = this.#loading.get(key);
    if (pending) return pending;
    const epoch = this.#epoch;
    const loading = this.#load(key).then(
      (value) => {
        if (this.#loading.get(key) === loading) this.#loading.delete(key);
        if (this.#epoch === epoch) this.set(key, value);
        return value;
      },
      (error: unknown) => {
        if (this.#loading.get(key) === loading) this.#loading.delete(key);
        throw error;
      },
    );
    this.#loading.set(key, loading);
    return loading;
  }
}
