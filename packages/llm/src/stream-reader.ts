import { isAscii } from "node:buffer";
import { createParser, type EventSourceMessage, type EventSourceParser } from "eventsource-parser";
import { asBuffer } from "./common.ts";
import type { FrameBatch, StreamFrame } from "./spec.ts";

/**
 * The text of a body's pieces, a character cut between two pieces included. A piece of ASCII only
 * (nearly every piece an upstream sends) while no character is left open is taken as it is, several
 * times quicker than through the UTF-8 decoder; `ascii` says whether the last piece was.
 */
function utf8Pieces() {
  // A byte order mark is dropped at the start of the body only (as the decoder's default would). Made
  // for the first piece that is not ASCII: a stream of ASCII pieces never needs one.
  let decoder: InstanceType<typeof TextDecoder> | undefined;
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
        text = asBuffer(chunk).toString("latin1");
      } else {
        open = chunk.length > 0 && (chunk[chunk.length - 1] as number) >= 0x80;
        decoder ??= new TextDecoder("utf-8", { ignoreBOM: true });
        text = decoder.decode(chunk, { stream: true });
      }
      if (started || !text) return text;
      started = true;
      return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
    },
    end: () => (decoder ? decoder.decode() : ""),
  };
  return pieces;
}

/** Cuts a body's pieces into frames: what each piece completes, and what is left at the end. */
interface FrameSplitter {
  push(chunk: Uint8Array | string): FrameBatch | undefined;
  end(): FrameBatch | undefined;
}

function ndjsonSplitter(): FrameSplitter {
  const decoder = utf8Pieces();
  let buffer = "";
  return {
    push(chunk) {
      buffer += decoder.text(chunk);
      const frames: StreamFrame[] = [];
      let newline = buffer.indexOf("\n");
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) frames.push({ data: line });
        newline = buffer.indexOf("\n");
      }
      return frames.length ? { frames } : undefined;
    },
    end() {
      const rest = (buffer + decoder.end()).trim();
      buffer = "";
      return rest ? { frames: [{ data: rest }] } : undefined;
    },
  };
}

function sseSplitter(): FrameSplitter {
  const decoder = utf8Pieces();
  let pending: StreamFrame[] = [];
  // The full parser, made for the first piece the quick reader leaves to it: a stream of whole
  // `data:` events (nearly every stream) never needs one.
  let parser: EventSourceParser | undefined;
  const full = () => {
    parser ??= createParser({
      onEvent(message: EventSourceMessage) {
        pending.push(message.event ? { event: message.event, data: message.data } : { data: message.data });
      },
    });
    return parser;
  };
  // Whether the parser holds nothing of an unfinished event (all it was fed ended with a blank line).
  let idle = true;
  const taken = (): FrameBatch | undefined => {
    if (!pending.length) return undefined;
    const frames = pending;
    pending = [];
    return { frames };
  };
  return {
    push(chunk) {
      const text = decoder.text(chunk);
      const quick = idle ? dataEvents(text) : undefined;
      if (quick) {
        // The text of an ASCII piece is its bytes, one character each.
        return quick.canonical && decoder.ascii && typeof chunk !== "string"
          ? { frames: quick.frames, bytes: chunk }
          : { frames: quick.frames };
      }
      if (text) {
        full().feed(text);
        idle = text.endsWith("\n\n");
      }
      return taken();
    },
    end() {
      const rest = decoder.end();
      if (rest || parser) full().feed(rest);
      return taken();
    },
  };
}

const splitterFor = (format: "sse" | "ndjson"): FrameSplitter => (format === "sse" ? sseSplitter() : ndjsonSplitter());

/** A body read by its events, as a Node readable stream is: `data`, `end`, `error` and `close`, with `pause` and `resume`. */
export interface EventedBody {
  on(event: "data", listener: (chunk: Uint8Array | string) => void): unknown;
  on(event: "end" | "close", listener: () => void): unknown;
  on(event: "error", listener: (error: Error) => void): unknown;
  off(event: "data", listener: (chunk: Uint8Array | string) => void): unknown;
  off(event: "end" | "close", listener: () => void): unknown;
  pause(): unknown;
  resume(): unknown;
  destroy?(): unknown;
}

/** What reads a body that hands its pieces to one reader (`DirectBody`): its methods are the events. */
export interface BodyReader {
  onData(chunk: Uint8Array | string): void;
  onEnd(): void;
  onError(error: Error): void;
  onClose(): void;
}

/**
 * A body that hands its pieces straight to one reader, with `pause` and `resume` as an evented body's:
 * no emitter, listeners or closures between them. `readWith(undefined)` lets the reader go.
 */
export interface DirectBody {
  readWith(reader: BodyReader | undefined): void;
  pause(): unknown;
  resume(): unknown;
  destroy?(): unknown;
}

/** What a body may be: any iterable of pieces, a body read by its events, or one that hands its pieces to a reader. */
export type UpstreamBodySource = AsyncIterable<Uint8Array | string> | EventedBody | DirectBody;

const isDirect = (body: UpstreamBodySource): body is DirectBody => typeof (body as Partial<DirectBody>).readWith === "function";

const isEvented = (body: UpstreamBodySource): body is EventedBody =>
  typeof (body as Partial<EventedBody>).on === "function" && typeof (body as Partial<EventedBody>).pause === "function";

/**
 * An evented body (a Node readable) as a direct one: `readWith` sets listeners that call the reader, and
 * takes them off again when the reader lets go. The error listener stays on, so that an error the body
 * emits later is not unhandled.
 */
function directFrom(body: EventedBody): DirectBody {
  let listeners: { data(chunk: Uint8Array | string): void; end(): void; close(): void } | undefined;
  return {
    readWith(reader) {
      if (listeners) {
        body.off("data", listeners.data);
        body.off("end", listeners.end);
        body.off("close", listeners.close);
        listeners = undefined;
      }
      if (!reader) return;
      listeners = { data: (chunk) => reader.onData(chunk), end: () => reader.onEnd(), close: () => reader.onClose() };
      body.on("data", listeners.data);
      body.on("end", listeners.end);
      body.on("error", (error: Error) => reader.onError(error));
      body.on("close", listeners.close);
    },
    pause: () => body.pause(),
    resume: () => body.resume(),
    destroy: () => body.destroy?.(),
  };
}

const prematureClose = () => Object.assign(new Error("Premature close"), { code: "ERR_STREAM_PREMATURE_CLOSE" });

/** Batches that may wait for the relay before the body is paused. */
const PAUSE_AT = 8;

/**
 * The batches of a body handed to this reader's methods (a Node readable's events through `directFrom`):
 * one promise per batch the relay waits for, against the several that the stream's async iterator and a generator over it take (the
 * iterator also sets up listeners of its own on each body to watch its end). When several batches
 * the relay has not asked for yet wait (it writes slower than the upstream sends), the body is paused
 * until it has taken them; a pause for every batch that came while the relay was busy cost a resume on
 * the next turn each time.
 */
class EventedBatches implements AsyncIterableIterator<FrameBatch>, BodyReader {
  private readonly ready: FrameBatch[] = [];
  private ended = false;
  private paused = false;
  private failure: Error | undefined;
  private waiting: { resolve(result: IteratorResult<FrameBatch>): void; reject(error: Error): void } | undefined;
  /** The handler batches go to as they come (`forEach`), and how its run ends. */
  private pushing: Pushing | undefined;
  /** The handler asked to wait (a promise it answered) before its next batch. */
  private blocked = false;

  constructor(
    private readonly body: DirectBody,
    private readonly splitter: FrameSplitter,
  ) {
    body.readWith(this);
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  next(): Promise<IteratorResult<FrameBatch>> {
    const batch = this.ready.shift();
    if (batch) {
      if (this.paused && !this.ready.length && !this.ended) {
        this.paused = false;
        this.body.resume();
      }
      return Promise.resolve({ done: false, value: batch });
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  /** Given up before its end (a `break` out of a loop over it): the body is destroyed, as its own iterator would. */
  return(): Promise<IteratorResult<FrameBatch>> {
    const open = !this.ended && !this.failure;
    this.ended = true;
    this.ready.length = 0;
    this.detach();
    if (open) this.body.destroy?.();
    return Promise.resolve({ done: true, value: undefined });
  }

  /** See `forEachBatch`. */
  forEach(handle: BatchHandler): Promise<"end" | "stop"> {
    return new Promise((resolve, reject) => {
      this.pushing = { handle, resolve, reject };
      this.pump();
    });
  }

  /** Hands the handler what is ready, then settles its run if the body is done, or lets the body go on. */
  private pump() {
    while (this.pushing && !this.blocked && this.ready.length > 0) this.hand(this.ready.shift() as FrameBatch);
    const pushing = this.pushing;
    if (!pushing || this.blocked) return;
    if (this.failure) {
      this.pushing = undefined;
      pushing.reject(this.failure);
    } else if (this.ended) {
      this.pushing = undefined;
      pushing.resolve("end");
    } else if (this.paused) {
      this.paused = false;
      this.body.resume();
    }
  }

  private hand(batch: FrameBatch) {
    const pushing = this.pushing as Pushing;
    let answer: BatchAnswer;
    try {
      answer = pushing.handle(batch);
    } catch (error) {
      this.pushing = undefined;
      pushing.reject(error as Error);
      return;
    }
    if (answer === STOP_BATCHES) {
      this.pushing = undefined;
      pushing.resolve("stop");
    } else if (answer) {
      this.blocked = true;
      const go = () => {
        this.blocked = false;
        this.pump();
      };
      answer.then(go, (error: Error) => {
        this.blocked = false;
        if (this.pushing === pushing) this.pushing = undefined;
        pushing.reject(error);
      });
    }
  }

  private deliver(batch: FrameBatch) {
    if (this.pushing && !this.blocked && this.ready.length === 0) {
      this.hand(batch);
      return;
    }
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting.resolve({ done: false, value: batch });
      return;
    }
    this.ready.push(batch);
    if (this.ready.length >= PAUSE_AT && !this.paused) {
      this.paused = true;
      this.body.pause();
    }
  }

  onData(chunk: Uint8Array | string) {
    const batch = this.splitter.push(chunk);
    if (batch) this.deliver(batch);
  }

  onEnd() {
    const rest = this.splitter.end();
    if (rest) this.deliver(rest);
    this.ended = true;
    this.detach();
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve({ done: true, value: undefined });
    this.pump();
  }

  onError(error: Error) {
    this.fail(error);
  }

  /** A body closed before its end (destroyed, say) broke off. */
  onClose() {
    if (!this.ended) this.fail(prematureClose());
  }

  private fail(error: Error) {
    if (this.ended || this.failure) return;
    this.failure = error;
    this.detach();
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
    // A run waiting on its handler's promise hands on what is ready first; the failure comes after it.
    this.pump();
  }

  /** Stops reading the body. */
  private detach() {
    this.body.readWith(undefined);
  }
}

/** A batch handler's answer that ends its run (`forEachBatch`). */
export const STOP_BATCHES: unique symbol = Symbol("stop");
/** Nothing (the next batch when it comes), a promise to wait for first, or `STOP_BATCHES`. */
export type BatchAnswer = undefined | Promise<void> | typeof STOP_BATCHES;
export type BatchHandler = (batch: FrameBatch) => BatchAnswer;
interface Pushing {
  handle: BatchHandler;
  resolve(how: "end" | "stop"): void;
  reject(error: Error): void;
}

/**
 * Hands each batch of `batches` to `handle`, in order, until the body ends ("end") or the handler answers
 * `STOP_BATCHES` ("stop"); rejects with the body's error (or the handler's). Batches of a body read by
 * its events go to the handler from the body's `data` event itself, as they come: no promise, iterator
 * result or turn of the microtask queue per batch, as a loop over `next()` takes (a stream sent a chunk
 * at a time is a batch a chunk). A promise the handler answers holds the next batch back until it
 * settles (the body pauses once several wait). Other iterators are read with `next()`.
 */
export function forEachBatch(batches: AsyncIterator<FrameBatch>, handle: BatchHandler): Promise<"end" | "stop"> {
  return batches instanceof EventedBatches ? batches.forEach(handle) : loopBatches(batches, handle);
}

async function loopBatches(batches: AsyncIterator<FrameBatch>, handle: BatchHandler): Promise<"end" | "stop"> {
  for (;;) {
    const next = await batches.next();
    if (next.done) return "end";
    const answer = handle(next.value);
    if (answer === STOP_BATCHES) return "stop";
    if (answer) await answer;
  }
}

async function* iteratedBatches(body: AsyncIterable<Uint8Array | string>, splitter: FrameSplitter): AsyncGenerator<FrameBatch> {
  for await (const chunk of body) {
    const batch = splitter.push(chunk);
    if (batch) yield batch;
  }
  const rest = splitter.end();
  if (rest) yield rest;
}

/**
 * Reads an upstream body as frames (server-sent events, or one JSON object per line), in batches: the
 * frames completed by each piece the upstream sent. A relay handles a batch at once and writes it to
 * its client in one go, instead of one socket write per frame.
 */
export function readFrameBatches(body: UpstreamBodySource, format: "sse" | "ndjson"): AsyncIterableIterator<FrameBatch> {
  const splitter = splitterFor(format);
  if (isDirect(body)) return new EventedBatches(body, splitter);
  return isEvented(body) ? new EventedBatches(directFrom(body), splitter) : iteratedBatches(body, splitter);
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
export async function* readFrames(body: UpstreamBodySource, format: "sse" | "ndjson"): AsyncGenerator<StreamFrame> {
  for await (const batch of readFrameBatches(body, format)) yield* batch.frames;
}

/** One server-sent event in OpenAI's framing. */
export const sseData = (payload: unknown): string => `data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`;
