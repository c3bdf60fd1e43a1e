/**
 * A value now, or a promise of it. The gateway's caches and counters answer from memory in the steady
 * state and need a promise only on a miss or with a shared store (Redis, the cluster primary): each
 * `await` of a value that is already there costs a promise, a microtask and the objects they hold.
 */
export type Maybe<T> = T | Promise<T>;

/** Goes on with a value at once, or when its promise settles. */
export function after<T, R>(value: Maybe<T>, next: (value: T) => Maybe<R>): Maybe<R> {
  return value instanceof Promise ? value.then(next) : next(value);
}
