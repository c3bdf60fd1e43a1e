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
   * Writes (the parts of one turn go out in one socket write: the response corks its socket until the
   * next tick), waiting for the client to drain when it reads slower than the upstream sends.
   */
  async write(parts: Part[]) {
    const raw = this.call.reply.raw;
    if (parts.length === 0 || !this.started || this.signal.aborted || raw.destroyed) return;
    let flowing = true;
    for (const part of parts) flowing = raw.write(part);
    if (!flowing) await drained(raw, this.signal);
  }

  /** Ends the response, with the last parts in the same write. */
  end(parts: Part[] = []) {
    const raw = this.call.reply.raw;
    if (!this.started || raw.destroyed || raw.writableEnded) return;
    if (this.signal.aborted || parts.length === 0) {
      raw.end();
      return;
    }
    for (let index = 0; index < parts.length - 1; index++) raw.write(parts[index] as Part);
    raw.end(parts[parts.length - 1]);
  }
}
