import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { ChatCall } from "./call.ts";
import type { Cancel } from "./cancel.ts";

/** Until the client has read what was written, or the call is cancelled, or the socket closes. */
function drained(raw: ServerResponse, cancel: Cancel): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      raw.off("drain", done);
      raw.off("close", done);
      cancel.off("abort", done);
      resolve();
    };
    raw.once("drain", done);
    raw.once("close", done);
    cancel.once("abort", done);
  });
}

/** What goes to the client, in order: encoded text, and frames passed on as the upstream's own bytes. */
export type Part = string | Uint8Array;

/**
 * Several parts as one: each `write` of a chunked response costs its own pass through the response's
 * stream and its own chunk header, and each piece of text its own encoding in the native write.
 */
function joined(parts: Part[]): Part {
  if (parts.length === 1) return parts[0] as Part;
  if (parts.every((part) => typeof part === "string")) return parts.join("");
  return Buffer.concat(parts.map((part) => (typeof part === "string" ? Buffer.from(part) : part)));
}

/**
 * The client's side of a stream, written straight to the socket's response (no intermediate stream
 * per request): committed (status and headers, with those set on the reply so far) on the first
 * content or keep-alive comment.
 */
export class Downstream {
  private started = false;
  constructor(
    private readonly call: ChatCall,
    private readonly signal: Cancel,
  ) {}

  get committed() {
    return this.started;
  }

  commit() {
    if (this.started) return;
    this.started = true;
    const reply = this.call.reply;
    reply.hijack();
    // getHeaders answers a fresh object: the stream's own headers go into it.
    const headers = reply.getHeaders() as OutgoingHttpHeaders;
    headers["content-type"] = "text/event-stream; charset=utf-8";
    headers["cache-control"] = "no-cache";
    headers["x-accel-buffering"] = "no";
    reply.raw.writeHead(200, headers);
  }

  /**
   * Writes the parts as one. Answers a promise only when the client reads slower than the upstream
   * sends and must drain first: a chunk that goes straight out costs no promise and no turn of the
   * microtask queue (a streamed answer is tens to thousands of chunks).
   */
  write(parts: Part[]): Promise<void> | undefined {
    const raw = this.call.reply.raw;
    if (parts.length === 0 || !this.started || this.signal.aborted || raw.destroyed) return undefined;
    return raw.write(joined(parts)) ? undefined : drained(raw, this.signal);
  }

  /** Ends the response, with the last parts in the same write. */
  end(parts: Part[] = []) {
    const raw = this.call.reply.raw;
    if (!this.started || raw.destroyed || raw.writableEnded) return;
    if (this.signal.aborted || parts.length === 0) {
      raw.end();
      return;
    }
    raw.end(joined(parts));
  }
}
