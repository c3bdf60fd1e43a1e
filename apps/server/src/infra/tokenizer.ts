import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { O200K_TOKEN_SPLIT_REGEX } from "gpt-tokenizer/encodingParams/constants";

/**
 * Counts the tokens of a text in the o200k vocabulary (byte-pair encoding, as tiktoken and
 * gpt-tokenizer encode it), from gpt-tokenizer's own vocabulary file and splitting pattern. Only the
 * count is kept, in typed arrays: about 5 MB and tens of milliseconds to load, where gpt-tokenizer's
 * encoder holds 65 MiB in the serving process and takes about 300 ms to load (a stall of every stream
 * on the worker when the first stopped stream needs an estimate). Special tokens count as the text
 * they are (an estimate of what a user wrote must not fail on "<|endoftext|>").
 */

/** The vocabulary: each rank's bytes, and an open-addressing table from bytes to rank. */
interface Vocabulary {
  bytes: Uint8Array;
  /** Token `rank` is `bytes[start[rank]] … bytes[start[rank + 1]]`. */
  start: Uint32Array;
  /** rank + 1 at each slot, 0 where empty. */
  table: Int32Array;
  mask: number;
}

/** Pieces longer than this are counted a window at a time, which bounds the scratch space (an estimate may be one token over at each cut). */
const WINDOW = 65_536;

function hash(data: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ (data[i] as number), 0x01000193);
  return h >>> 0;
}

/** Reads tiktoken's format, one `<base64 bytes> <rank>` line per token, into one buffer of bytes. */
export function parseVocabulary(file: Buffer): Vocabulary {
  // Decoded, a token takes at most three quarters of its line.
  const bytes = Buffer.alloc(Math.ceil((file.length * 3) / 4));
  let start = new Uint32Array(256 * 1024);
  let length = 0;
  let count = 0;
  for (let at = 0; at < file.length; ) {
    const space = file.indexOf(0x20, at);
    if (space < 0) break;
    const end = file.indexOf(0x0a, space);
    const stop = end < 0 ? file.length : end;
    let rank = 0;
    for (let i = space + 1; i < stop; i++) rank = rank * 10 + ((file[i] as number) - 0x30);
    // Ranks come in order; a rank left out is an empty token.
    if (rank < count) throw new Error("vocabulary ranks out of order");
    if (rank + 2 > start.length) {
      const grown = new Uint32Array(start.length * 2);
      grown.set(start);
      start = grown;
    }
    while (count < rank) start[++count] = length;
    length += bytes.write(file.toString("latin1", at, space), length, "base64");
    start[++count] = length;
    at = stop + 1;
  }
  const size = 2 ** Math.ceil(Math.log2(count * 2.5));
  const vocabulary: Vocabulary = {
    // A copy: the buffer's unused end goes.
    bytes: new Uint8Array(bytes.subarray(0, length)),
    start: start.slice(0, count + 1),
    table: new Int32Array(size),
    mask: size - 1,
  };
  for (let rank = 0; rank < count; rank++) {
    const from = vocabulary.start[rank] as number;
    const to = vocabulary.start[rank + 1] as number;
    if (to === from) continue;
    let slot = hash(vocabulary.bytes, from, to) & vocabulary.mask;
    while (vocabulary.table[slot] !== 0) slot = (slot + 1) & vocabulary.mask;
    vocabulary.table[slot] = rank + 1;
  }
  return vocabulary;
}

/** The rank of `data[from … to]`, or -1 when it is no token. */
function rankOf(vocabulary: Vocabulary, data: Uint8Array, from: number, to: number): number {
  const { bytes, start, table, mask } = vocabulary;
  const length = to - from;
  let slot = hash(data, from, to) & mask;
  for (;;) {
    const entry = table[slot] as number;
    if (entry === 0) return -1;
    const at = start[entry - 1] as number;
    if ((start[entry] as number) - at === length) {
      let i = 0;
      while (i < length && bytes[at + i] === data[from + i]) i++;
      if (i === length) return entry - 1;
    }
    slot = (slot + 1) & mask;
  }
}

/** Scratch space for merging pieces of up to WINDOW bytes, grown on demand. */
class Merger {
  private next = new Int32Array(0);
  private prev = new Int32Array(0);
  /** The rank of the pair starting at a part (-1: none; -2: the part was merged into the one before). */
  private pair = new Int32Array(0);
  /** A binary heap of rank × 2^32 + position, the least first: the leftmost pair of least rank. */
  private heap = new Float64Array(0);
  private size = 0;

  constructor(private readonly vocabulary: Vocabulary) {}

  /**
   * The tokens of `data[from … to]`: tiktoken's merge, the adjacent pair of least rank first (the
   * leftmost of equals), until no pair is a token, through a heap rather than a scan per merge
   * (a piece of Chinese text runs to thousands of bytes).
   */
  count(data: Uint8Array, from: number, to: number): number {
    const length = to - from;
    if (length <= 1 || rankOf(this.vocabulary, data, from, to) >= 0) return Math.min(length, 1);
    if (this.next.length < length + 1) {
      this.next = new Int32Array(length + 1);
      this.prev = new Int32Array(length + 1);
      this.pair = new Int32Array(length + 1);
      // The first pairs, then at most two new ones a merge: stale entries stay until they surface.
      this.heap = new Float64Array(3 * length);
    }
    const { next, prev, pair } = this;
    this.size = 0;
    for (let i = 0; i < length; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
      const rank = i + 2 <= length ? rankOf(this.vocabulary, data, from + i, from + i + 2) : -1;
      pair[i] = rank;
      if (rank >= 0) this.push(rank, i);
    }
    let parts = length;
    while (this.size > 0) {
      const top = this.pop();
      const at = top % 2 ** 32;
      const rank = (top - at) / 2 ** 32;
      if (pair[at] !== rank) continue; // stale: merged away, or its pair changed since
      const gone = next[at] as number;
      const after = next[gone] as number;
      pair[gone] = -2;
      next[at] = after;
      if (after < length) prev[after] = at;
      parts--;
      const merged = after < length ? rankOf(this.vocabulary, data, from + at, from + (next[after] as number)) : -1;
      pair[at] = merged;
      if (merged >= 0) this.push(merged, at);
      const before = prev[at] as number;
      if (before >= 0) {
        const joined = rankOf(this.vocabulary, data, from + before, from + after);
        pair[before] = joined;
        if (joined >= 0) this.push(joined, before);
      }
    }
    return parts;
  }

  private push(rank: number, at: number) {
    const heap = this.heap;
    const key = rank * 2 ** 32 + at;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((heap[parent] as number) <= key) break;
      heap[i] = heap[parent] as number;
      i = parent;
    }
    heap[i] = key;
  }

  private pop(): number {
    const heap = this.heap;
    const top = heap[0] as number;
    const last = heap[--this.size] as number;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.size) break;
      if (child + 1 < this.size && (heap[child + 1] as number) < (heap[child] as number)) child++;
      if ((heap[child] as number) >= last) break;
      heap[i] = heap[child] as number;
      i = child;
    }
    heap[i] = last;
    return top;
  }
}

export interface TokenCounter {
  count(text: string): number;
}

/** A counter over a parsed vocabulary, splitting text as o200k does. */
export function counterFor(vocabulary: Vocabulary): TokenCounter {
  const encoder = new TextEncoder();
  let buffer = new Uint8Array(1024);
  const merger = new Merger(vocabulary);
  const split = new RegExp(O200K_TOKEN_SPLIT_REGEX.source, "gu");
  return {
    count(text) {
      let total = 0;
      split.lastIndex = 0;
      for (let match = split.exec(text); match; match = split.exec(text)) {
        const piece = match[0];
        // UTF-8 takes at most three bytes for each UTF-16 unit.
        if (buffer.length < piece.length * 3) buffer = new Uint8Array(piece.length * 3);
        const length = encoder.encodeInto(piece, buffer).written;
        for (let from = 0; from < length; from += WINDOW) total += merger.count(buffer, from, Math.min(length, from + WINDOW));
      }
      return total;
    },
  };
}

/** A counter over the vocabulary in a file of tiktoken's format. */
export const loadCounter = async (file: string): Promise<TokenCounter> => counterFor(parseVocabulary(await readFile(file)));

let loading: Promise<TokenCounter> | undefined;

/** The o200k counter, its vocabulary read from gpt-tokenizer's data file on first use (and again after a failed read). */
export function tokenCounter(): Promise<TokenCounter> {
  loading ??= loadCounter(createRequire(import.meta.url).resolve("gpt-tokenizer/data/o200k_base.tiktoken")).catch((error: unknown) => {
    loading = undefined;
    throw error;
  });
  return loading;
}
