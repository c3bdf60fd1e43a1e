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

/** What the next id is made of: its random bytes, and the time and counter that put it after the last one. */
function nextV7() {
  const random = randomBytes16();
  const now = Date.now();
  if (now > lastMs) {
    sequence = ((random[6] as number) << 23) | ((random[7] as number) << 16) | ((random[8] as number) << 8) | (random[9] as number);
    lastMs = now;
  } else {
    sequence = (sequence + 1) | 0;
    if (sequence === 0) lastMs++;
  }
  return { random, msecs: lastMs, seq: sequence };
}

/** Time-ordered UUIDs (v7): primary keys sort by creation, which keyset pagination relies on. */
export function newId(): string {
  return v7(nextV7());
}

const bytes = new Uint8Array(16);
const HEX = Array.from("0123456789abcdef", (char) => char.charCodeAt(0));
const DASH = 45;

/**
 * Writes the next id's text (36 ASCII characters, as `newId` would answer it) into `target` at `at`:
 * for a caller that keeps ids as bytes (the usage recorder), without making the string.
 */
export function writeNewId(target: Uint8Array, at: number): void {
  v7(nextV7(), bytes);
  let out = at;
  for (let index = 0; index < 16; index++) {
    if (index === 4 || index === 6 || index === 8 || index === 10) target[out++] = DASH;
    const byte = bytes[index] as number;
    target[out++] = HEX[byte >> 4] as number;
    target[out++] = HEX[byte & 15] as number;
  }
}
