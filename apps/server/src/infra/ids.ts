import { randomFillSync } from "node:crypto";
import { v7 } from "uuid";

/**
 * Random bytes for ids, drawn from a pool refilled 256 ids at a time: each fill is a synchronous call
 * into the crypto library that costs about as much whatever its size, and uuid's own pool holds 16.
 */
const pool = new Uint8Array(4096);
let taken = pool.length;
function randomBytes16(): Uint8Array {
  if (taken + 16 > pool.length) {
    randomFillSync(pool);
    taken = 0;
  }
  const bytes = pool.subarray(taken, taken + 16);
  taken += 16;
  return bytes;
}

/** The time and counter of the last id, kept as uuid keeps them: ids made in one millisecond still ascend. */
let lastMs = Number.NEGATIVE_INFINITY;
let sequence = 0;

/** Time-ordered UUIDs (v7): primary keys sort by creation, which keyset pagination relies on. */
export function newId(): string {
  const random = randomBytes16();
  const now = Date.now();
  if (now > lastMs) {
    sequence = ((random[6] as number) << 23) | ((random[7] as number) << 16) | ((random[8] as number) << 8) | (random[9] as number);
    lastMs = now;
  } else {
    sequence = (sequence + 1) | 0;
    if (sequence === 0) lastMs++;
  }
  return v7({ random, msecs: lastMs, seq: sequence });
}
