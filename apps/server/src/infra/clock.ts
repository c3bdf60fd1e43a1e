/** Time as the app sees it; tests inject a clock they can move. */
export interface Clock {
  now(): Date;
  /** The same instant in milliseconds since the epoch, without a Date (about 700 instructions each). */
  ms(): number;
}

export const systemClock: Clock = { now: () => new Date(), ms: Date.now };

let cachedSecond = Number.NaN;
let cachedPrefix = "";

/**
 * A date as `toISOString` writes it. The first 20 characters (`YYYY-MM-DDTHH:MM:SS.`) hold for a whole
 * second and are kept: a usage record's timestamp then costs a few additions instead of V8's formatter
 * (about 4 k instructions, through `vsnprintf`). Years beyond 9999 or before 0 (written with a sign and
 * six digits) and invalid dates go to `toISOString` itself.
 */
export function isoString(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    const full = new Date(ms).toISOString();
    if (full.length === 24) {
      cachedSecond = second;
      cachedPrefix = full.slice(0, 20);
    }
    return full;
  }
  const milli = ms - second * 1000;
  return `${cachedPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}

export const isoNow = (clock: Clock) => isoString(clock.ms());

export function isoIn(clock: Clock, seconds: number): string {
  return isoString(clock.ms() + seconds * 1000);
}
