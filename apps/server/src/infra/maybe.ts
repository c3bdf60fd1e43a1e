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

/**
 * Runs both steps, the second even when the first throws: one promise when either needs one, which
 * fails with a failure of either; otherwise a failure is thrown once both have run.
 */
export function both(first: () => Maybe<void>, second: () => Maybe<void>): Maybe<void> {
  let failure: { error: unknown } | undefined;
  const run = (step: () => Maybe<void>) => {
    try {
      return step();
    } catch (error) {
      failure ??= { error };
      return undefined;
    }
  };
  const one = run(first);
  const other = run(second);
  if (one instanceof Promise || other instanceof Promise) {
    return Promise.all([one, other]).then(() => {
      if (failure) throw failure.error;
    });
  }
  if (failure) throw failure.error;
}
