import { type Accumulated, addText } from "../modules/gateway/stream-batch.ts";

/**
 * Heap bytes per stream of the text kept by `addText` for 1,000 streams of 2,000 five-character pieces
 * each, all held at once (`node --expose-gc --import tsx text-memory.ts`): prints the figure.
 */
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error("run with --expose-gc");
const STREAMS = 1000;
const PIECES = 2000;
gc();
const before = process.memoryUsage().heapUsed;
const states: Accumulated[] = Array.from({ length: STREAMS }, () => ({ text: "", pieces: 0 }));
for (let piece = 0; piece < PIECES; piece++) {
  // A fresh string per piece, as a decoded frame's text is.
  for (const state of states) addText(state, `tok ${String.fromCharCode(97 + ((piece + state.pieces) % 26))}`.slice(0, 5));
}
gc();
const perStream = (process.memoryUsage().heapUsed - before) / STREAMS;
if (states.some((state) => state.text.length !== PIECES * 5)) throw new Error("text lost");
process.stdout.write(`${Math.round(perStream)}\n`);
