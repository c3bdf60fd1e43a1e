import fs from "node:fs";
import readline from "node:readline";

/** A function of a sampled stack: its symbol (perf's name, offset dropped) and where its code lives. */
export interface Frame {
  symbol: string;
  dso: string;
}

/** One sample of `perf script -F tid,ip,sym,dso`: its thread and its stack, where it landed first. */
export interface Sample {
  tid: string;
  frames: Frame[];
}

const FRAME = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^()]*)\)\s*$/;
/** A sample on one line (recorded without call graphs): `tid ip symbol (dso)`. */
const FLAT = /^(\d+)\s+([0-9a-f]+\s+.*\([^()]*\)\s*)$/;
/** The head of a sample recorded with call graphs (`-g`): the thread alone, its stack on the lines below. */
const HEAD = /^\s*(\d+)\s*$/;

/** What stands for the stack of a sample perf could not unwind (its time still counts on its thread). */
const UNKNOWN: Frame = { symbol: "[unknown]", dso: "[unknown]" };

/** The sample as read, a stack perf did not unwind given as one unknown frame. */
const whole = (sample: Sample): Sample => (sample.frames.length > 0 ? sample : { tid: sample.tid, frames: [UNKNOWN] });

const frameOf = (line: string): Frame | undefined => {
  const match = FRAME.exec(line);
  return match ? { symbol: (match[1] as string).replace(/\+0x[0-9a-f]+$/, ""), dso: match[2] as string } : undefined;
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
