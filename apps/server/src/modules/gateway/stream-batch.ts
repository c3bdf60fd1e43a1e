import type { ChatChunk, DecodedFrames, FrameBatch, StreamDecoder, Usage } from "@lyss/llm";
import { hasContent } from "./call.ts";
import type { Part } from "./downstream.ts";
import type { StreamEncoder } from "./inbound.ts";

/** What a stream has said so far: its usage, once sent, and its text, for an estimate without one. */
export interface Accumulated {
  usage?: Usage;
  text: string;
  /** Pieces added to the text so far. */
  pieces: number;
}

/** Pieces between two flattenings of a stream's text. */
const FLATTEN_EVERY = 64;

/**
 * Adds a piece to the stream's text. A string grown by `+=` is a chain of one 32-byte node per piece
 * over the pieces themselves: a 2,000-chunk answer of 10,000 characters held 112 KB until the stream
 * ended. Reading a character of the chain makes V8 copy it into one flat string, so every 64 pieces
 * the text is read once and stays near its length (11 KB for the same answer), for about 0.06 µs a
 * piece.
 */
export function addText(state: Accumulated, piece: string) {
  if (!piece) return;
  state.text += piece;
  state.pieces++;
  if (state.pieces % FLATTEN_EVERY === 0) state.text.charCodeAt(0);
}

function accumulate(state: Accumulated, chunk: ChatChunk) {
  if (chunk.usage) state.usage = chunk.usage;
  for (const choice of chunk.choices) {
    const { content, tool_calls: tools } = choice.delta;
    if (content) addText(state, content);
    if (tools) for (const tool of tools) addText(state, tool.function?.arguments ?? "");
  }
}

/** Whether a chunk ends one of its choices. */
function finishes(chunk: ChatChunk): boolean {
  for (const choice of chunk.choices) if (choice.finish_reason !== null) return true;
  return false;
}

/** What one batch of upstream frames came to; decoding stops at an error or the end. */
export interface RelayedBatch {
  /** For the client, in order. */
  parts: Part[];
  /** A chunk with content (or a finish) came. */
  content: boolean;
  finish: boolean;
  error?: { status: number; message: string };
  done: boolean;
}

/**
 * Adds a part to a batch's. A batch mostly has one (a stream a chunk at a time: one frame a piece), and
 * the first push into an empty array makes room for 17: the first part goes in an array of its own size.
 */
function addPart(out: RelayedBatch, part: Part) {
  if (out.parts.length === 0) out.parts = [part];
  else out.parts.push(part);
}

/** The bytes from `start` to `end` of a piece: the piece itself when that is all of it (no view made). */
const bytesOf = (bytes: Uint8Array, start: number, end: number) =>
  start === 0 && end === bytes.length ? bytes : bytes.subarray(start, end);

/**
 * Decodes one batch of upstream frames, adds its chunks to what the stream has said, and encodes them
 * for the client. A frame the encoder would send as it came (`asIs`) goes out as the upstream's own
 * bytes, with the frames around it that do too, in one slice of the piece: no text to build, join or
 * encode again for them. (Called for every piece of a stream: it makes no closure, and no array or view
 * larger than its parts need.)
 */
export function relayBatch(decoder: StreamDecoder, encoder: StreamEncoder, state: Accumulated, batch: FrameBatch): RelayedBatch {
  const out: RelayedBatch = { parts: [], content: false, finish: false, done: false };
  const asIs = encoder.asIs;
  const bytes = asIs ? batch.bytes : undefined;
  let encoded = "";
  // Where the run of frames passed on as their bytes starts (-1: none open), and where this frame does.
  let run = -1;
  let at = 0;
  // The decoder's text chunk last looked at, and whether it goes out as it came.
  let seen: ChatChunk | undefined;
  let seenPasses = false;
  for (const frame of batch.frames) {
    const size = frame.data.length + 8; // with `data: ` and the blank line
    const template = asIs && bytes ? decoder.textChunk?.() : undefined;
    if (template && template !== seen) {
      seen = template;
      seenPasses = asIs?.(template) ?? false;
    }
    const text = template && seenPasses ? decoder.textOf?.(frame.data) : undefined;
    let decoded: DecodedFrames | undefined;
    let passes = text !== undefined;
    if (text !== undefined) {
      // The text chunk again: what `accumulate` and the flags would make of it, without building it.
      if (template?.choices[0]?.delta.content !== undefined) addText(state, text);
      if (text) out.content = true;
    } else {
      // (The frame did not fit the template: the decoder need not compare it again.)
      decoded = decoder.decode(frame, template !== undefined && seenPasses);
      for (const chunk of decoded.chunks) {
        accumulate(state, chunk);
        if (!out.finish && finishes(chunk)) out.finish = true;
        if (!out.content && hasContent(chunk)) out.content = true;
      }
      passes =
        Boolean(bytes) && decoded.chunks.length === 1 && decoded.raw === frame.data && (asIs?.(decoded.chunks[0] as ChatChunk) ?? false);
    }
    if (passes) {
      // Passed on as its bytes: a run opens here, after the text encoded so far.
      if (run < 0) {
        if (encoded) addPart(out, encoded);
        encoded = "";
        run = at;
      }
    } else if (decoded) {
      if (bytes && run >= 0) addPart(out, bytesOf(bytes, run, at));
      run = -1;
      const raw = decoded.chunks.length === 1 ? decoded.raw : undefined;
      for (const chunk of decoded.chunks) encoded += encoder.chunk(chunk, raw);
    }
    at += size;
    if (!decoded) continue;
    if (decoded.error) {
      out.error = { status: decoded.error.status, message: decoded.error.message };
      break;
    }
    if (decoded.done) {
      out.done = true;
      break;
    }
  }
  if (bytes && run >= 0) addPart(out, bytesOf(bytes, run, at));
  if (encoded) addPart(out, encoded);
  return out;
}

/** Adds chunks to what the stream has said and encodes them for the client. */
export function encodeChunks(encoder: StreamEncoder, state: Accumulated, chunks: ChatChunk[]): string {
  let text = "";
  for (const chunk of chunks) {
    accumulate(state, chunk);
    text += encoder.chunk(chunk);
  }
  return text;
}
