import { isAscii } from "node:buffer";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { FrameBatch, StreamFrame } from "./spec.ts";

/**
 * The text of a body's pieces, a character cut between two pieces included. A piece of ASCII only
 * (nearly every piece an upstream sends) while no character is left open is taken as it is, several
 * times quicker than through the UTF-8 decoder; `ascii` says whether the last piece was.
 */
function utf8Pieces() {
  // A byte order mark is dropped at the start of the body only (as the decoder's default would).
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  let started = false;
  // Whether the decoder may hold the first bytes of a character (the last piece ended on a non-ASCII byte).
  let open = false;
  const pieces = {
    ascii: false,
    text(chunk: Uint8Array | string): string {
      pieces.ascii = false;
      let text: string;
      if (typeof chunk === "string") text = chunk;
      else if (!open && isAscii(chunk)) {
        pieces.ascii = true;
        text = (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)).toString("latin1");
      } else {
        open = chunk.length > 0 && (chunk[chunk.length - 1] as number) >= 0x80;
        text = decoder.decode(chunk, { stream: true });
      }
      if (started || !text) return text;
      started = true;
      return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    },
    end: () => decoder.decode(),
  };
  return pieces;
}

/**
 * Reads an upstream body as frames (server-sent events, or one JSON object per line), in batches: the
 * frames completed by each piece the upstream sent. A relay handles a batch at once and writes it to
 * its client in one go, instead of one socket write per frame.
 */
export async function* readFrameBatches(body: AsyncIterable<Uint8Array | string>, format: "sse" | "ndjson"): AsyncGenerator<FrameBatch> {
  const decoder = utf8Pieces();
  if (format === "ndjson") {
    let buffer = "";
    for await (const chunk of body) {
      buffer += decoder.text(chunk);
      const frames: StreamFrame[] = [];
      let newline = buffer.indexOf("\n");
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) frames.push({ data: line });
        newline = buffer.indexOf("\n");
      }
      if (frames.length) yield { frames };
    }
    const rest = (buffer + decoder.end()).trim();
    if (rest) yield { frames: [{ data: rest }] };
    return;
  }
  let pending: StreamFrame[] = [];
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      pending.push(message.event ? { event: message.event, data: message.data } : { data: message.data });
    },
  });
  // Whether the parser holds nothing of an unfinished event (all it was fed ended with a blank line).
  let idle = true;
  for await (const chunk of body) {
    const text = decoder.text(chunk);
    const quick = idle ? dataEvents(text) : undefined;
    if (quick) {
      // The text of an ASCII piece is its bytes, one character each.
      yield quick.canonical && decoder.ascii && typeof chunk !== "string"
        ? { frames: quick.frames, bytes: chunk }
        : { frames: quick.frames };
      continue;
    }
    if (text) {
      parser.feed(text);
      idle = text.endsWith("\n\n");
    }
    if (pending.length) {
      const frames = pending;
      pending = [];
      yield { frames };
    }
  }
  parser.feed(decoder.end());
  if (pending.length) yield { frames: pending };
}

/** Whether `data:` starts at `at` (compared a character at a time: no string is made for it). */
const isDataField = (text: string, at: number) =>
  text.charCodeAt(at) === 100 && // d
  text.charCodeAt(at + 1) === 97 && // a
  text.charCodeAt(at + 2) === 116 && // t
  text.charCodeAt(at + 3) === 97 && // a
  text.charCodeAt(at + 4) === 58; // :

/**
 * The events of a piece that is only whole `data: …` events of one line each, as upstreams send them,
 * and whether each is spelled `data: <data>\n\n` (one space after the colon); undefined for anything
 * else (comments, event names, several lines, CR, an event cut off), which the full parser reads.
 */
function dataEvents(text: string): { frames: StreamFrame[]; canonical: boolean } | undefined {
  if (!text.endsWith("\n\n") || text.includes("\r")) return undefined;
  const frames: StreamFrame[] = [];
  let canonical = true;
  for (let at = 0; at < text.length; ) {
    if (!isDataField(text, at)) return undefined;
    // One space after the colon is not part of the data.
    const spaced = text.charCodeAt(at + 5) === 32;
    if (!spaced) canonical = false;
    const start = spaced ? at + 6 : at + 5;
    const end = text.indexOf("\n", start);
    if (text.charCodeAt(end + 1) !== 10) return undefined;
    frames.push({ data: text.slice(start, end) });
    at = end + 2;
  }
  return { frames, canonical };
}

/** Reads an upstream body frame by frame. */
export async function* readFrames(body: AsyncIterable<Uint8Array | string>, format: "sse" | "ndjson"): AsyncGenerator<StreamFrame> {
  for await (const batch of readFrameBatches(body, format)) yield* batch.frames;
}

/** One server-sent event in OpenAI's framing. */
export const sseData = (payload: unknown): string => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`;
