import { EventEmitter } from "node:events";
import type { BodyReader, DirectBody } from "@lyss/llm";
import { errors } from "undici";

/** Bytes held for a body nobody reads yet before the upstream's socket is paused (a Readable's default). */
const HIGH_WATER_MARK = 64 * 1024;

/** What reading the text of a body waits on. */
interface Collector {
  parts: Uint8Array[];
  resolve(text: string): void;
  reject(error: Error): void;
}

/**
 * An upstream response's body, fed by the upstream client's handler as undici parses the response: the
 * events of a Node readable (`data`, `end`, `error`, `close`, with `pause` and `resume`), handed to one
 * reader's methods (`readWith`, as the stream relay's frame reader takes them: no emitter, listeners or
 * closures between them) or emitted to listeners (`close` is emitted to them either way), and `text()`;
 * without a stream's machinery between the socket and the reader (its state, buffer, ticks, and undici's
 * response handler and parsed headers: about 5 µs a request in a loop).
 *
 * Like a Readable it flows once a reader or a `data` listener is added (a turn of the microtask queue
 * later, so a reader adds all its listeners first), holds what comes before (pausing the upstream's
 * socket past 64 KiB), ends with `end` then `close`, and, destroyed before its end, aborts the upstream
 * request.
 */
export class UpstreamBody extends EventEmitter implements DirectBody {
  readableEnded = false;
  destroyed = false;
  /** What came while nobody read it, or while the reader paused. */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  private flowing = false;
  private paused = false;
  /** The upstream sent all of it. */
  private complete = false;
  /** The socket was paused for the reader and waits for `resume`. */
  private waiting = false;
  private flushing = false;
  /** `close` was emitted (once). */
  private closed = false;
  private collector: Collector | undefined;
  /** Who `data`, `end` and `error` go to instead of the listeners, and `close` after them (`readWith`). */
  private reader: BodyReader | undefined;

  constructor(
    /** Resumes the upstream's socket after a push answered false. */
    private readonly resumeUpstream: () => void,
    /** Aborts the upstream request (its connection is not reused). */
    private readonly abortUpstream: (reason: Error) => void,
  ) {
    super();
  }

  override on(event: string | symbol, listener: (...args: never[]) => void): this {
    super.on(event, listener as (...args: unknown[]) => void);
    if (event === "data" && !this.flowing) this.flow();
    return this;
  }

  /** As `on` (which Node's emitter names twice). */
  override addListener(event: string | symbol, listener: (...args: never[]) => void): this {
    return this.on(event, listener);
  }

  /** Hands the events to `reader`'s methods from now on (undefined: to nobody); the body flows. */
  readWith(reader: BodyReader | undefined) {
    this.reader = reader;
    if (reader && !this.flowing) this.flow();
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (this.paused) {
      this.paused = false;
      if (this.flowing) this.schedule();
    }
    return this;
  }

  /** The body's text (UTF-8, a byte order mark at its start dropped), once the upstream has sent all of it. */
  text(): Promise<string> {
    if (this.readableEnded || this.destroyed || this.flowing) return Promise.reject(new TypeError("the body was read or closed already"));
    return new Promise((resolve, reject) => {
      this.collector = { parts: [], resolve, reject };
      this.flow();
    });
  }

  /** A piece from the upstream; false asks the upstream client to pause the socket until `resume`. */
  push(chunk: Uint8Array): boolean {
    if (this.destroyed) return false;
    if (this.flowing && !this.paused && this.held.length === 0) {
      this.deliver(chunk);
      if (!this.paused) return true;
      this.waiting = true;
      return false;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (this.paused || this.heldBytes >= HIGH_WATER_MARK) {
      this.waiting = true;
      return false;
    }
    return true;
  }

  /** The upstream sent all of it. */
  end() {
    this.complete = true;
    if (this.flowing && !this.paused && this.held.length === 0) this.ended();
  }

  /** The exchange failed after the response began (a broken connection, a timeout, an abort). */
  fail(error: Error) {
    if (this.destroyed) return;
    this.close(error);
  }

  /** Done with before its end: the upstream request is aborted. */
  destroy(error?: Error): this {
    if (this.destroyed) return this;
    // Closed first: undici reports the abort back through `fail`, at once.
    this.close(error);
    if (!this.complete) this.abortUpstream(error ?? new errors.RequestAbortedError());
    return this;
  }

  private flow() {
    this.flowing = true;
    this.schedule();
  }

  private schedule() {
    if (this.flushing) return;
    this.flushing = true;
    queueMicrotask(() => this.flush());
  }

  /** Hands over what was held, then the end if it came, or lets the upstream send more. */
  private flush() {
    this.flushing = false;
    while (this.held.length > 0 && !this.paused && !this.destroyed) {
      const chunk = this.held.shift() as Uint8Array;
      this.heldBytes -= chunk.length;
      this.deliver(chunk);
    }
    if (this.paused || this.destroyed || this.held.length > 0) return;
    if (this.complete) this.ended();
    else if (this.waiting) {
      this.waiting = false;
      this.resumeUpstream();
    }
  }

  private deliver(chunk: Uint8Array) {
    if (this.collector) this.collector.parts.push(chunk);
    else if (this.reader) this.reader.onData(chunk);
    else this.emit("data", chunk);
  }

  private ended() {
    if (this.readableEnded) return;
    this.readableEnded = true;
    const collector = this.collector;
    if (collector) {
      this.collector = undefined;
      const bytes = Buffer.concat(collector.parts);
      const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
      collector.resolve(bytes.toString("utf8", bom ? 3 : 0));
    }
    if (this.reader) this.reader.onEnd();
    else this.emit("end");
    this.destroyed = true;
    this.emitClose();
  }

  private emitClose() {
    if (this.closed) return;
    this.closed = true;
    // Its listeners too: those who watch the exchange's end (the attempt's deadline, the upstream client).
    this.emit("close");
    this.reader?.onClose();
  }

  private close(error: Error | undefined) {
    this.destroyed = true;
    this.held = [];
    this.heldBytes = 0;
    const collector = this.collector;
    this.collector = undefined;
    collector?.reject(error ?? new errors.RequestAbortedError());
    // An error nobody listens for is the reader's to see through `close` before the end.
    if (error && this.reader) this.reader.onError(error);
    else if (error && this.listenerCount("error") > 0) this.emit("error", error);
    this.emitClose();
  }
}
