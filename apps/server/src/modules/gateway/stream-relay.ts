import { type FrameBatch, forEachBatch, readFrameBatches, STOP_BATCHES } from "@lyss/llm";
import { attempt, contextFor, type Failure, finalFailure } from "./attempt.ts";
import { type ChatCall, internalError, Outcome, type RelayDeps, recordUsage, sendError } from "./call.ts";
import type { Cancel } from "./cancel.ts";
import { Downstream, type Part } from "./downstream.ts";
import type { StreamEncoder } from "./inbound.ts";
import { type Accumulated, encodeChunks, relayBatch } from "./stream-batch.ts";
import { estimateUsage } from "./token-count.ts";
import type { UpstreamBody } from "./upstream-body.ts";

/** How long an upstream may hold its stream open after the relay is done with it. */
const FINISH_GRACE_MS = 1000;

/**
 * Lets go of an upstream body the relay is done with by reading it to its end: after `[DONE]` that is
 * only the end of the response (tens of microseconds later), and the reader, the body and the attempt's
 * deadline are then done with. Left suspended with the end unread, the reader kept the upstream's
 * response open until the deadline. Destroying the body at once instead costs an error and undici's
 * abort path (about 90 k instructions a request); an upstream that holds its stream open past the end
 * is cut after a grace period.
 */
function finish(batches: AsyncIterator<FrameBatch>, body: UpstreamBody) {
  // Ended already (a stream that came in one piece, say): nothing left to read or to time.
  if (!body.readableEnded && !body.destroyed) void drain(batches, body);
}

async function drain(batches: AsyncIterator<FrameBatch>, body: UpstreamBody) {
  const cut = setTimeout(() => body.destroy(), FINISH_GRACE_MS);
  try {
    while (!(await batches.next()).done) {
      // what an upstream sends after it is done is not the client's
    }
  } catch {
    // a body cut or broken after the relay was done with it
  } finally {
    clearTimeout(cut);
  }
}

/** The client's encoder: one per attempt, so what an attempt that failed before its content encoded goes with it. */
export const encoderFor = (call: ChatCall): StreamEncoder =>
  call.inbound.streamEncoder(call.publicModel, Boolean(call.body.stream_options?.include_usage));

/**
 * A streamed chat call. Each candidate's stream is read until its first content: an error frame, a
 * refusal or a drop before then moves on to the next candidate. After the first content byte has
 * reached the client there is no retry: a failure becomes an error event in the client's protocol.
 */
export async function relayStream(deps: RelayDeps, call: ChatCall, abort: Cancel, startedAt: number): Promise<unknown> {
  const downstream = new Downstream(call, abort);
  const failures: Failure[] = [];
  // Until content flows, a comment every few seconds keeps proxies and clients from giving up.
  const keepAlive = setInterval(() => {
    downstream.commit();
    void downstream.write([": keep-alive\n\n"]);
  }, deps.keepAliveMs);
  try {
    return await attemptAll(deps, call, abort, startedAt, downstream, failures, keepAlive);
  } finally {
    clearInterval(keepAlive);
  }
}

async function attemptAll(
  deps: RelayDeps,
  call: ChatCall,
  abort: Cancel,
  startedAt: number,
  downstream: Downstream,
  failures: Failure[],
  keepAlive: NodeJS.Timeout,
): Promise<unknown> {
  for (const channel of call.candidates.slice(0, deps.maxAttempts)) {
    call.attempting = channel;
    const context = contextFor(channel, call.publicModel, call.rawBody);
    const translated = channel.provider.chat.request(call.body, context);
    const outcome = await attempt(deps.upstream, deps.stats, channel, translated.request, abort);
    const attempts = failures.length + 1;
    if (outcome.kind === "aborted") {
      recordUsage(deps, call, new Outcome(channel, 499, attempts, "client closed the request"), startedAt);
      downstream.end();
      return call.reply;
    }
    if (outcome.kind === "caller_error") {
      recordUsage(deps, call, new Outcome(channel, outcome.status, attempts, outcome.message), startedAt);
      if (downstream.committed) {
        downstream.end([encoderFor(call).error(outcome.status, outcome.message)]);
        return call.reply;
      }
      return sendError(call, outcome.status, outcome.message, outcome.code, outcome.type);
    }
    if (outcome.kind === "retry") {
      failures.push(outcome.failure);
      continue;
    }

    const batches = readFrameBatches(outcome.response.body, channel.provider.streamFormat)[Symbol.asyncIterator]();
    // Every field spelled (usage comes later): one hidden class for every stream's state (see Outcome).
    const state: Accumulated = { usage: undefined, text: "", pieces: 0 };
    let ttftMs: number | undefined;
    // The channel's statistics told how the attempt ended (which frees its place in flight).
    let reported = false;
    try {
      const encoder = encoderFor(call);
      const decoder = channel.provider.chat.stream(context, call.body);
      // What the batches before the first content came to, for the client once it is committed.
      const held: Part[] = [];
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
          const batch = relayBatch(decoder, encoder, state, next.value);
          for (const part of batch.parts) held.push(part);
          if (batch.finish) sawFinish = true;
          if (batch.content) ttftMs = performance.now() - startedAt;
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
        reported = true;
        deps.stats.released(channel.id);
        outcome.response.body.destroy();
        recordUsage(deps, call, new Outcome(channel, 499, attempts, "client closed the request"), startedAt);
        downstream.end();
        return call.reply;
      }
      if (failure && ttftMs === undefined) {
        reported = true;
        deps.stats.failed(channel.id, failure.message);
        outcome.response.body.destroy();
        failures.push(failure);
        continue;
      }

      // From here on the client has content and there is no going back.
      clearInterval(keepAlive);
      // What is held back to go out with the closing events; the first batch already ended the stream
      // when it held the end (or an error after the content): then it all goes out at the end, at once.
      let tail = held;
      if (!finished && !streamError) {
        downstream.commit();
        const draining = downstream.write(held);
        if (draining) await draining;
        tail = [];
      }
      try {
        if (!finished && !streamError && !abort.aborted) {
          // Each batch as it comes, straight from the body's events (no promise a batch).
          const how = await forEachBatch(batches, (value) => {
            if (abort.aborted) return STOP_BATCHES;
            const batch = relayBatch(decoder, encoder, state, value);
            if (batch.finish) sawFinish = true;
            if (batch.error) streamError = batch.error;
            if (batch.done) finished = true;
            if (!batch.error && !batch.done) return downstream.write(batch.parts);
            // The last batch goes out with the closing events, in one write.
            tail = batch.parts;
            return STOP_BATCHES;
          });
          if (how === "end" && !sawFinish) streamError = { status: 502, message: "upstream stream ended before it was complete" };
        }
        const owed = encodeChunks(encoder, state, decoder.flush());
        if (owed) tail.push(owed);
      } catch (error) {
        streamError = {
          status: 502,
          message: abort.aborted ? "client closed the request" : `upstream stream broke: ${(error as Error).message}`,
        };
      }
      const usage = state.usage ?? (await estimateUsage(call.body, state.text));
      if (abort.aborted) {
        reported = true;
        deps.stats.released(channel.id);
        outcome.response.body.destroy();
        recordUsage(deps, call, new Outcome(channel, 499, attempts, "client closed the request", usage, ttftMs), startedAt);
        downstream.end();
        return call.reply;
      }
      if (streamError) {
        reported = true;
        deps.stats.failed(channel.id, streamError.message);
        outcome.response.body.destroy();
        recordUsage(deps, call, new Outcome(channel, streamError.status, attempts, streamError.message, usage, ttftMs), startedAt);
        tail.push(encoder.error(streamError.status, streamError.message));
      } else {
        reported = true;
        deps.stats.succeeded(channel.id, outcome.latencyMs);
        recordUsage(deps, call, new Outcome(channel, 200, attempts, undefined, usage, ttftMs), startedAt);
        tail.push(encoder.end(usage));
      }
      downstream.finish(tail);
      return call.reply;
    } catch (error) {
      // A throw nothing above expected: what this attempt delivered is recorded with its channel (the
      // client has its content), and relayChat's guard ends the stream.
      if (!reported) deps.stats.released(channel.id);
      if (!call.recorded) {
        const usage = ttftMs === undefined ? undefined : (state.usage ?? (await estimateUsage(call.body, state.text)));
        recordUsage(deps, call, new Outcome(channel, 500, attempts, internalError(error), usage, ttftMs), startedAt);
      }
      throw error;
    } finally {
      finish(batches, outcome.response.body);
    }
  }

  const failure = finalFailure(failures);
  recordUsage(deps, call, new Outcome(undefined, failure.status, failures.length, failure.message), startedAt);
  if (downstream.committed) {
    downstream.end([encoderFor(call).error(failure.status, failure.message)]);
    return call.reply;
  }
  return sendError(call, failure.status, failure.message, null, failure.type);
}
