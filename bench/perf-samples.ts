import fs from "node:fs";
import readline from "node:readline";

/** A function of a sampled stack: its symbol (perf's name, offset dropped) and where its code lives. */
export interface Frame {
  symbol: string;
  dso: string;
  /** Where the sample's code was (its address). */
  ip: number;
}

/** One sample of `perf script -F tid,ip,sym,dso`: its thread and its stack, where it landed first. */
export interface Sample {
  tid: string;
  frames: Frame[];
}

const FRAME = /^\s*([0-9a-f]+)\s+(.*?)\s+\(([^()]*)\)\s*$/;
/** A sample on one line (recorded without call graphs): `tid ip symbol (dso)`. */
const FLAT = /^(\d+)\s+([0-9a-f]+\s+.*\([^()]*\)\s*)$/;
/** The head of a sample recorded with call graphs (`-g`): the thread alone, its stack on the lines below. */
const HEAD = /^\s*(\d+)\s*$/;

/** What stands for the stack of a sample perf could not unwind (its time still counts on its thread). */
const UNKNOWN: Frame = { symbol: "[unknown]", dso: "[unknown]", ip: 0 };

/** The sample as read, a stack perf did not unwind given as one unknown frame. */
const whole = (sample: Sample): Sample => (sample.frames.length > 0 ? sample : { tid: sample.tid, frames: [UNKNOWN] });

const frameOf = (line: string): Frame | undefined => {
  const match = FRAME.exec(line);
  return match
    ? { symbol: (match[2] as string).replace(/\+0x[0-9a-f]+$/, ""), dso: match[3] as string, ip: Number.parseInt(match[1] as string, 16) }
    : undefined;
};

/**
 * The samples of a `perf script -F tid,ip,sym,dso` listing, read a line at a time (with call graphs a
 * few seconds of samples make a listing larger than a string may be): one line a sample without call
 * graphs, a head line and the stack's lines (innermost first) with them. Every sample has a frame.
 */
export async function* readSamples(file: string): AsyncGenerator<Sample> {
  let current: Sample | undefined;
  for await (const line of readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })) {
    const head = HEAD.exec(line);
    if (head) {
      if (current) yield whole(current);
      current = { tid: head[1] as string, frames: [] };
      continue;
    }
    // (A stack's lines start with a tab; a one-line sample with the thread's number, perhaps indented.)
    const flat = line.startsWith("\t") ? null : FLAT.exec(line.trimStart());
    if (flat) {
      if (current) yield whole(current);
      current = undefined;
      const frame = frameOf(flat[2] as string);
      if (frame) yield { tid: flat[1] as string, frames: [frame] };
      continue;
    }
    const frame = current ? frameOf(line) : undefined;
    if (frame) current?.frames.push(frame);
  }
  if (current) yield whole(current);
}

/**
 * The JavaScript function a sample's time is put to: the innermost JavaScript frame of its stack, so
 * that the builtins, V8's runtime and the native code a function called count as that function's (and
 * what TurboFan inlined into it, which has no frame of its own). Undefined when no JavaScript is on the
 * stack (V8's tasks, libuv's polling).
 */
export const callerOf = (sample: Sample): Frame | undefined => sample.frames.find((frame) => frame.symbol.startsWith("JS:"));

/**
 * Names JIT code by address from a `--perf-basic-prof` map (`<start> <size> <name>` a line, in the order
 * V8 made the code), the newest code at an address winning. Code the collector freed leaves its line,
 * and code made later at the same address adds another: perf's own lookup can answer either, which put
 * samples of one shape's requests to functions only the other shape runs (3 % of a plain request's
 * serving thread to `relayBatch`). Given the map as it was when a recording stopped, the newest line that
 * holds an address is the code that ran there during the recording, unless that code was made while
 * it ran.
 */
export function jitNames(map: string): (ip: number) => string | undefined {
  const starts: number[] = [];
  const ends: number[] = [];
  const names: string[] = [];
  for (const line of map.split("\n")) {
    const match = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
    if (!match) continue;
    const start = Number.parseInt(match[1] as string, 16);
    starts.push(start);
    ends.push(start + Number.parseInt(match[2] as string, 16));
    names.push(match[3] as string);
  }
  // The lines by where their code starts; the longest code bounds how far back an address's lines begin.
  const byStart = starts.map((_, index) => index).sort((a, b) => (starts[a] as number) - (starts[b] as number));
  const longest = starts.reduce((most, start, index) => Math.max(most, (ends[index] as number) - start), 0);
  const known = new Map<number, string | undefined>();
  return (ip) => {
    if (known.has(ip)) return known.get(ip);
    let low = 0;
    let high = byStart.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((starts[byStart[middle] as number] as number) <= ip) low = middle + 1;
      else high = middle;
    }
    let newest = -1;
    for (let at = low - 1; at >= 0; at--) {
      const line = byStart[at] as number;
      if ((starts[line] as number) < ip - longest) break;
      if ((ends[line] as number) > ip && line > newest) newest = line;
    }
    const name = newest < 0 ? undefined : names[newest];
    known.set(ip, name);
    return name;
  };
}
