import { once } from "node:events";
import { PassThrough } from "node:stream";
import { type ChatChunk, readFrames, type Usage } from "@lyss/llm";
import { attempt, contextFor, type Failure, finalFailure } from "./attempt.ts";
import { type ChatCall, hasContent, type RelayDeps, recordUsage, sendError } from "./call.ts";
import type { StreamEncoder } from "./inbound.ts";
import { estimateUsage } from "./token-count.ts";

/** The client's side of a stream: committed (headers sent) on the first content or keep-alive. */
class Downstream {
  private out: PassThrough | undefined;
  constructor(
    private readonly call: ChatCall,
    private readonly signal: AbortSignal,
  ) {}

  get committed() {
    return this.out !== undefined;
  }

  commit() {
    if (this.out) return;
    this.out = new PassThrough();
    this.call.reply
      .code(200)
      .header("content-type", "text/event-stream; charset=utf-8")
      .header("cache-control", "no-cache")
      .header("x-accel-buffering", "no")
      .send(this.out);
  }

  /** Writes, waiting for the client to drain when it reads slower than the upstream sends. */
  async write(text: string) {
    if (!text || !this.out || this.signal.aborted) return;
    if (!this.out.write(text)) await once(this.out, "drain", { signal: this.signal }).catch(() => undefined);
  }

  end() {
    this.out?.end();
  }
}

interface Accumulated {
  usage?: Usage;
  text: string;
}

function accumulate(state: Accumulated, chunk: ChatChunk) {
  if (chunk.usage) state.usage = chunk.usage;
  for (const choice of chunk.choices) {
    state.text += choice.delta.content ?? "";
    for (const tool of choice.delta.tool_calls ?? []) state.text += tool.function?.arguments ?? "";
  }
}

/**
 * A streamed chat call. Each candidate's stream is read until its first content: an error frame, a
 * refusal or a drop before then moves on to the next candidate. After the first content byte has
 * reached the client there is no retry: a failure becomes an error event in the client's protocol.
 */
export async function relayStream(deps: RelayDeps, call: ChatCall, abort: AbortController, startedAt: number): Promise<unknown> {
  const downstream = new Downstream(call, abort.signal);
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

async function attemptAll(
  deps: RelayDeps,
  call: ChatCall,
  abort: AbortController,
  startedAt: number,
  downstream: Downstream,
  encoder: StreamEncoder,
  failures: Failure[],
  keepAlive: NodeJS.Timeout,
): Promise<unknown> {
  for (const channel of call.candidates.slice(0, deps.maxAttempts)) {
    const context = contextFor(channel, call.publicModel);
    const translated = channel.provider.chat.request({ ...call.body, model: context.model }, context);
    const outcome = await attempt(deps.upstream, deps.stats, channel, translated.request, abort.signal);
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
    const frames = readFrames(outcome.response.body, channel.provider.streamFormat)[Symbol.asyncIterator]();
    const state: Accumulated = { text: "" };
    const buffered: ChatChunk[] = [];
    let ttftMs: number | undefined;
    let finished = false;
    let failure: Failure | undefined;

    // Peek: read until the first content, an error, or the end.
    let sawFinish = false;
    try {
      while (ttftMs === undefined && !failure && !finished) {
        const next = await frames.next();
        if (next.done) {
          failure = sawFinish ? undefined : { status: 502, message: "upstream stream ended before any content" };
          finished = true;
          break;
        }
        const decoded = decoder.decode(next.value);
        if (decoded.error) {
          failure = {
            status: decoded.error.status >= 500 || decoded.error.status === 429 ? decoded.error.status : 502,
            message: decoded.error.message,
          };
          break;
        }
        buffered.push(...decoded.chunks);
        if (decoded.chunks.some((chunk) => chunk.choices.some((choice) => choice.finish_reason !== null))) sawFinish = true;
        if (decoded.chunks.some(hasContent)) ttftMs = performance.now() - startedAt;
        if (decoded.done) finished = true;
      }
    } catch (error) {
      failure = {
        status: 502,
        message: abort.signal.aborted ? "client closed the request" : `upstream stream broke: ${(error as Error).message}`,
      };
    }

    if (abort.signal.aborted) {
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
    for (const chunk of buffered) {
      accumulate(state, chunk);
      await downstream.write(encoder.chunk(chunk));
    }
    let streamError: Failure | undefined;
    try {
      while (!finished && !abort.signal.aborted) {
        const next = await frames.next();
        if (next.done) {
          if (!sawFinish) streamError = { status: 502, message: "upstream stream ended before it was complete" };
          break;
        }
        const decoded = decoder.decode(next.value);
        if (decoded.error) {
          streamError = { status: decoded.error.status, message: decoded.error.message };
          break;
        }
        if (decoded.chunks.some((chunk) => chunk.choices.some((choice) => choice.finish_reason !== null))) sawFinish = true;
        for (const chunk of decoded.chunks) {
          accumulate(state, chunk);
          await downstream.write(encoder.chunk(chunk));
        }
        if (decoded.done) finished = true;
      }
      for (const chunk of decoder.flush()) {
        accumulate(state, chunk);
        await downstream.write(encoder.chunk(chunk));
      }
    } catch (error) {
      streamError = {
        status: 502,
        message: abort.signal.aborted ? "client closed the request" : `upstream stream broke: ${(error as Error).message}`,
      };
    }
    const usage = state.usage ?? (await estimateUsage(call.body, state.text));
    if (abort.signal.aborted) {
      deps.stats.released(channel.id);
      outcome.response.body.destroy();
      recordUsage(deps, call, { channel, status: 499, error: "client closed the request", usage, ttftMs, attempts }, startedAt);
      downstream.end();
      return call.reply;
    }
    if (streamError) {
      deps.stats.failed(channel.id, streamError.message);
      outcome.response.body.destroy();
      await downstream.write(encoder.error(streamError.status, streamError.message));
      recordUsage(deps, call, { channel, status: streamError.status, error: streamError.message, usage, ttftMs, attempts }, startedAt);
    } else {
      deps.stats.succeeded(channel.id, outcome.latencyMs);
      await downstream.write(encoder.end(usage));
      recordUsage(deps, call, { channel, status: 200, usage, ttftMs, attempts }, startedAt);
    }
    downstream.end();
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
