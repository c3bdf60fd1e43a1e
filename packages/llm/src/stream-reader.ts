import { isAscii } from "node:buffer";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { StreamFrame } from "./spec.ts";

/**
 * The text of a body's pieces, a character cut between two pieces included. A piece of ASCII only
 * (nearly every piece an upstream sends) while no character is left open is taken as it is, several
 * times quicker than through the UTF-8 decoder.
 */
function utf8Pieces() {
  // A byte order mark is dropped at the start of the body only (as the decoder's default would).
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  let started = false;
  // Whether the decoder may hold the first bytes of a character (the last piece ended on a non-ASCII byte).
  let open = false;
  const decode = (chunk: Uint8Array): string => {
    if (!open && isAscii(chunk)) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
    open = chunk.length > 0 && (chunk[chunk.length - 1] as number) >= 0x80;
    return decoder.decode(chunk, { stream: true });
  };
  return {
    text(chunk: Uint8Array | string): string {
      const text = typeof chunk === "string" ? chunk : decode(chunk);
      if (started || !text) return text;
      started = true;
      return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    },
    end: () => decoder.decode(),
  };
}

/**
 * Reads an upstream body as frames (server-sent events, or one JSON object per line), in batches: the
 * frames completed by each piece the upstream sent. A relay handles a batch at once and writes it to
 * its client in one go, instead of one socket write per frame.
 */
export async function* readFrameBatches(body: AsyncIterable<Uint8Array | string>, format: "sse" | "ndjson"): AsyncGenerator<StreamFrame[]> {
  const decoder = utf8Pieces();
  if (format === "ndjson") {
    let buffer = "";
    for await (const chunk of body) {
      buffer += decoder.text(chunk);
      const batch: StreamFrame[] = [];
      let newline = buffer.indexOf("\n");
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) batch.push({ data: line });
        newline = buffer.indexOf("\n");
      }
      if (batch.length) yield batch;
    }
    const rest = (buffer + decoder.end()).trim();
    if (rest) yield [{ data: rest }];
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
      yield quick;
      continue;
    }
    if (text) {
      parser.feed(text);
      idle = text.endsWith("\n\n");
    }
    if (pending.length) {
      const batch = pending;
      pending = [];
      yield batch;
    }
  }
  parser.feed(decoder.end());
  if (pending.length) yield pending;
}

/**
 * The events of a piece that is only whole `data: …` events of one line each, as upstreams send them;
 * undefined for anything else (comments, event names, several lines, CR, an event cut off), which the
 * full parser reads.
 */
function dataEvents(text: string): StreamFrame[] | undefined {
  if (!text.endsWith("\n\n") || text.includes("\r")) return undefined;
  const frames: StreamFrame[] = [];
  for (let at = 0; at < text.length; ) {
    if (text.slice(at, at + 5) !== "data:") return undefined;
    // One space after the colon is not part of the data.
    const start = text.charCodeAt(at + 5) === 32 ? at + 6 : at + 5;
    const end = text.indexOf("\n", start);
    if (text.charCodeAt(end + 1) !== 10) return undefined;
    frames.push({ data: text.slice(start, end) });
    at = end + 2;
  }
  return frames;
}

/** Reads an upstream body frame by frame. */
export async function* readFrames(body: AsyncIterable<Uint8Array | string>, format: "sse" | "ndjson"): AsyncGenerator<StreamFrame> {
  for await (const batch of readFrameBatches(body, format)) yield* batch;
}

/** One server-sent event in OpenAI's framing. */
export const sseData = (payload: unknown): string => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`;
