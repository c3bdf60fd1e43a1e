import { createParser, type EventSourceMessage } from "eventsource-parser";
import type { StreamFrame } from "./spec.ts";

/** Reads an upstream body as frames: server-sent events, or one JSON object per line. */
export async function* readFrames(body: AsyncIterable<Uint8Array | string>, format: "sse" | "ndjson"): AsyncGenerator<StreamFrame> {
  const decoder = new TextDecoder();
  if (format === "ndjson") {
    let buffer = "";
    for await (const chunk of body) {
      buffer += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
      let newline = buffer.indexOf("\n");
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield { data: line };
        newline = buffer.indexOf("\n");
      }
    }
    const rest = (buffer + decoder.decode()).trim();
    if (rest) yield { data: rest };
    return;
  }
  const pending: StreamFrame[] = [];
  const parser = createParser({
    onEvent(message: EventSourceMessage) {
      pending.push(message.event ? { event: message.event, data: message.data } : { data: message.data });
    },
  });
  for await (const chunk of body) {
    parser.feed(typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true }));
    while (pending.length) yield pending.shift() as StreamFrame;
  }
  parser.feed(decoder.decode());
  while (pending.length) yield pending.shift() as StreamFrame;
}

/** One server-sent event in OpenAI's framing. */
export const sseData = (payload: unknown): string => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`;
