import type { OutgoingHttpHeaders, ServerResponse } from "node:http";
import { type ChatChunk, readFrameBatches, type StreamDecoder, type StreamFrame, type Usage } from "@lyss/llm";
import { attempt, contextFor, type Failure, finalFailure } from "./attempt.ts";
import { type ChatCall, hasContent, type RelayDeps, recordUsage, sendError } from "./call.ts";
import type { Cancel } from "./cancel.ts";
import type { StreamEncoder } from "./inbound.ts";
import { estimateUsage } from "./token-count.ts";

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

/**
 * The client's side of a stream, written straight to the socket's response (no intermediate stream
 * per request): committed (status and headers, with those set on the reply so far) on the first
 * content or keep-alive comment.
 */
class Downstream {
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

  /** Writes, waiting for the client to drain when it reads slower than the upstream sends. */
  async write(text: string) {
    const raw = this.call.reply.raw;
    if (!text || !this.started || this.signal.aborted || raw.destroyed) return;
    if (!raw.write(text)) await drained(raw, this.signal);
  }

  /** Ends the response, with the last text in the same write. */
  end(text = "") {
    const raw = this.call.reply.raw;
    if (!this.started || raw.destroyed || raw.writableEnded) return;
    if (text && !this.signal.aborted) raw.end(text);
    else raw.end();
  }
}

interface Accumulated {
  usage?: Usage;
  text: string;
}

function accumulate(state: Accumulated, chunk: ChatChunk) {
  if (chunk.usage) state.usage = chunk.usage;
  for (const choice of chunk.choices) {
    const { content, tool_calls: tools } = choice.delta;
    if (content) state.text += content;
    if (tools) for (const tool of tools) state.text += tool.function?.arguments ?? "";
  }
}

/** Whether a chunk ends one of its choices. */
function finishes(chunk: ChatChunk): boolean {
  for (const choice of chunk.choices) if (choice.finish_reason !== null) return true;
  return false;
}

/**
 * A streamed chat call. Each candidate's stream is read until its first content: an error frame, a
 * refusal or a drop before then moves on to the next candidate. After the first content byte has
 * reached the client there is no retry: a failure becomes an error event in the client's protocol.
 */
export async function relayStream(deps: RelayDeps, call: ChatCall, abort: Cancel, startedAt: number): Promise<unknown> {
  const downstream = new Downstream(call, abort);
  const failures: Failure[] = [];
  const includeUsage = Boolean(call.body.stream_options?.include_usage);
  const encoder: StreamEncoder = call.inbound.streamEncoder(call.publicModel, includeUsage);
  // Until content flows, a comment every few seconds keeps proxies and clients from giving up.
  const keepAlive = setInterval(() => {
    downstream.commit();
    void downstream.write(": keep-alive\n\n");
  }, deps.keepAliveMs);
  try {
    return await attemptAll(deps, call, abort, startedAt, downstream, encoder, failures, keepAlive);
  } finally {
    clearInterval(keepAlive);
  }
}

/** What one batch of upstream frames decoded to; decoding stops at an error or the end. */
interface DecodedBatch {
  chunks: ChatChunk[];
  /** Each chunk's JSON text as the upstream sent it, where that is already OpenAI's format. */
  raws: (string | undefined)[];
  error?: { status: number; message: string };
  done: boolean;
  finish: boolean;
}

function decodeBatch(decoder: StreamDecoder, frames: StreamFrame[]): DecodedBatch {
  const batch: DecodedBatch = { chunks: [], raws: [], done: false, finish: false };
  for (const frame of frames) {
    const decoded = decoder.decode(frame);
    for (const chunk of decoded.chunks) {
      batch.chunks.push(chunk);
      batch.raws.push(decoded.chunks.length === 1 ? decoded.raw : undefined);
      if (finishes(chunk)) batch.finish = true;
    }
    if (decoded.error) {
      batch.error = { status: decoded.error.status, message: decoded.error.message };
      return batch;
    }
    if (decoded.done) {
      batch.done = true;
      return batch;
    }
  }
  return batch;
}

async function attemptAll(
  deps: RelayDeps,
  call: ChatCall,
  abort: Cancel,
  startedAt: number,
  downstream: Downstream,
  encoder: StreamEncoder,
  failures: Failure[],
  keepAlive: NodeJS.Timeout,
): Promise<unknown> {
  for (const channel of call.candidates.slice(0, deps.maxAttempts)) {
    const context = contextFor(channel, call.publicModel);
    const translated = channel.provider.chat.request(call.body, context);
    const outcome = await attempt(deps.upstream, deps.stats, channel, translated.request, abort);
    const attempts = failures.length + 1;
    if (outcome.kind === "aborted") {
      recordUsage(deps, call, { channel, status: 499, error: "client closed the request", attempts }, startedAt);
      downstream.end();
      return call.reply;
    }
    if (outcome.kind === "caller_error") {
      recordUsage(deps, call, { channel, status: outcome.status, error: outcome.message, attempts }, startedAt);
      if (downstream.committed) {
        await downstream.write(encoder.error(outcome.status, outcome.message));
        downstream.end();
        return call.reply;
      }
      return sendError(call, outcome.status, outcome.message, outcome.code, outcome.type);
    }
    if (outcome.kind === "retry") {
      failures.push(outcome.failure);
      continue;
    }

    const decoder = channel.provider.chat.stream(context, call.body);
    const batches = readFrameBatches(outcome.response.body, channel.provider.streamFormat)[Symbol.asyncIterator]();
    const state: Accumulated = { text: "" };
    const buffered: Pick<DecodedBatch, "chunks" | "raws"> = { chunks: [], raws: [] };
    let ttftMs: number | undefined;
    let finished = false;
    let sawFinish = false;
    let failure: Failure | undefined;
    // An error frame that came after content in the batch that held the first content.
    let streamError: Failure | undefined;

    // Peek: read until the first content, an error, or the end.
    try {
      while (ttftMs === undefined && !failure && !finished) {
        const next = await batches.next();
        if (next.done) {
          failure = sawFinish ? undefined : { status: 502, message: "upstream stream ended before any content" };
          finished = true;
          break;
        }
        const batch = decodeBatch(decoder, next.value);
        buffered.chunks.push(...batch.chunks);
        buffered.raws.push(...batch.raws);
        if (batch.finish) sawFinish = true;
        if (batch.chunks.some(hasContent)) ttftMs = performance.now() - startedAt;
        if (batch.error) {
          const status = batch.error.status >= 500 || batch.error.status === 429 ? batch.error.status : 502;
          if (ttftMs === undefined) failure = { status, message: batch.error.message };
          else streamError = batch.error;
        }
        if (batch.done) finished = true;
      }
    } catch (error) {
      failure = {
        status: 502,
        message: abort.aborted ? "client closed the request" : `upstream stream broke: ${(error as Error).message}`,
      };
    }

    if (abort.aborted) {
      deps.stats.released(channel.id);
      outcome.response.body.destroy();
      recordUsage(deps, call, { channel, status: 499, error: "client closed the request", attempts }, startedAt);
      downstream.end();
      return call.reply;
    }
    if (failure && ttftMs === undefined) {
      deps.stats.failed(channel.id, failure.message);
      outcome.response.body.destroy();
      failures.push(failure);
      continue;
    }

    // Committed: from here on the client has content and there is no going back.
    clearInterval(keepAlive);
    downstream.commit();
    // Text held back to go out with the closing events; the first batch already ended the stream when
    // it held the end (or an error after the content).
    let tail = encodeAll(encoder, state, buffered);
    if (!finished && !streamError) {
      await downstream.write(tail);
      tail = "";
    }
    try {
      while (!finished && !streamError && !abort.aborted) {
        const next = await batches.next();
        if (next.done) {
          if (!sawFinish) streamError = { status: 502, message: "upstream stream ended before it was complete" };
          break;
        }
        const batch = decodeBatch(decoder, next.value);
        if (batch.finish) sawFinish = true;
        const text = encodeAll(encoder, state, batch);
        if (batch.error) streamError = batch.error;
        if (batch.done) finished = true;
        // The last batch goes out with the closing events, in one write.
        if (batch.error || batch.done) tail = text;
        else await downstream.write(text);
      }
      const owed = decoder.flush();
      tail += encodeAll(encoder, state, { chunks: owed, raws: [] });
    } catch (error) {
      streamError = {
        status: 502,
        message: abort.aborted ? "client closed the request" : `upstream stream broke: ${(error as Error).message}`,
      };
    }
    const usage = state.usage ?? (await estimateUsage(call.body, state.text));
    if (abort.aborted) {
      deps.stats.released(channel.id);
      outcome.response.body.destroy();
      recordUsage(deps, call, { channel, status: 499, error: "client closed the request", usage, ttftMs, attempts }, startedAt);
      downstream.end();
      return call.reply;
    }
    if (streamError) {
      deps.stats.failed(channel.id, streamError.message);
      outcome.response.body.destroy();
      recordUsage(deps, call, { channel, status: streamError.status, error: streamError.message, usage, ttftMs, attempts }, startedAt);
      downstream.end(tail + encoder.error(streamError.status, streamError.message));
    } else {
      deps.stats.succeeded(channel.id, outcome.latencyMs);
      recordUsage(deps, call, { channel, status: 200, usage, ttftMs, attempts }, startedAt);
      downstream.end(tail + encoder.end(usage));
    }
    return call.reply;
  }

  const failure = finalFailure(failures);
  recordUsage(deps, call, { status: failure.status, error: failure.message, attempts: failures.length }, startedAt);
  if (downstream.committed) {
    await downstream.write(encoder.error(failure.status, failure.message));
    downstream.end();
    return call.reply;
  }
  return sendError(call, failure.status, failure.message, null, failure.type);
}

/** Accumulates the chunks and encodes them for the client as one piece of text. */
function encodeAll(encoder: StreamEncoder, state: Accumulated, batch: Pick<DecodedBatch, "chunks" | "raws">): string {
  let text = "";
  for (let index = 0; index < batch.chunks.length; index++) {
    const chunk = batch.chunks[index] as ChatChunk;
    accumulate(state, chunk);
    text += encoder.chunk(chunk, batch.raws[index]);
  }
  return text;
}
