export type Window = "total" | "day" | "month";

interface LocalDate {
  year: number;
  month: number;
  day: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string) {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, format);
  }
  return format;
}

function localParts(at: Date, timeZone: string) {
  const parts = Object.fromEntries(
    formatter(timeZone)
      .formatToParts(at)
      .map((part) => [part.type, part.value]),
  );
  return {
    year: Number(parts.year),
    month: Number(parts.month),
    day: Number(parts.day),
    hour: Number(parts.hour),
    minute: Number(parts.minute),
    second: Number(parts.second),
  };
}

/** The zone's offset from UTC at an instant, in milliseconds. */
function offsetMs(at: Date, timeZone: string): number {
  const local = localParts(at, timeZone);
  const asUtc = Date.UTC(local.year, local.month - 1, local.day, local.hour, local.minute, local.second);
  return asUtc - Math.floor(at.getTime() / 1000) * 1000;
}

/** The instant a local calendar date begins in the zone. */
function startOfLocalDay(date: LocalDate, timeZone: string): Date {
  const guess = Date.UTC(date.year, date.month - 1, date.day);
  const first = guess - offsetMs(new Date(guess), timeZone);
  return new Date(guess - offsetMs(new Date(first), timeZone));
}

const pad = (value: number) => String(value).padStart(2, "0");

interface Bucket {
  bucket: string;
  resetsAt: string | null;
}

/** The bucket last computed per window and zone, with the instants between which it holds. */
const recent = new Map<string, { from: number; until: number; value: Bucket }>();
const TOTAL: Bucket = { bucket: "total", resetsAt: null };

/**
 * The calendar bucket of a window in the tenant's time zone (`2026-11-23`, `2026-11`, `total`) and
 * when it resets. Asked on every request: the answer is reused until its window is over.
 */
export function windowBucket(window: Window, at: Date, timeZone: string): Bucket {
  if (window === "total") return TOTAL;
  const key = `${window}|${timeZone}`;
  const time = at.getTime();
  const hit = recent.get(key);
  if (hit && time >= hit.from && time < hit.until) return hit.value;
  const value = computeBucket(window, at, timeZone);
  const local = localParts(at, timeZone);
  const from = startOfLocalDay({ year: local.year, month: local.month, day: window === "day" ? local.day : 1 }, timeZone).getTime();
  recent.set(key, { from, until: Date.parse(value.resetsAt as string), value });
  return value;
}

function computeBucket(window: Exclude<Window, "total">, at: Date, timeZone: string): Bucket {
  const local = localParts(at, timeZone);
  if (window === "day") {
    const next = new Date(Date.UTC(local.year, local.month - 1, local.day + 1));
    const resetsAt = startOfLocalDay({ year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: next.getUTCDate() }, timeZone);
    return { bucket: `${local.year}-${pad(local.month)}-${pad(local.day)}`, resetsAt: resetsAt.toISOString() };
  }
  const next = new Date(Date.UTC(local.year, local.month, 1));
  const resetsAt = startOfLocalDay({ year: next.getUTCFullYear(), month: next.getUTCMonth() + 1, day: 1 }, timeZone);
  return { bucket: `${local.year}-${pad(local.month)}`, resetsAt: resetsAt.toISOString() };
}
