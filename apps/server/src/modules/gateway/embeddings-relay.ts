import type { EmbeddingsRequest, EmbeddingsResponse } from "@lyss/llm";
import { attempt, contextFor, type Failure, finalFailure } from "./attempt.ts";
import { type ChatCall, Outcome, type RelayDeps, recordUsage, sendError, unforeseen, watchClient } from "./call.ts";
import { Cancel } from "./cancel.ts";

/** Embeddings: the same failover as chat, on channels whose provider can embed. */
export async function relayEmbeddings(deps: RelayDeps, call: ChatCall, body: EmbeddingsRequest): Promise<unknown> {
  const startedAt = performance.now();
  const abort = new Cancel();
  watchClient(call, abort);
  try {
    return await relayEmbeddingsTo(deps, call, body, abort, startedAt);
  } catch (error) {
    return unforeseen(deps, call, error, startedAt);
  }
}

async function relayEmbeddingsTo(deps: RelayDeps, call: ChatCall, body: EmbeddingsRequest, abort: Cancel, startedAt: number) {
  const failures: Failure[] = [];
  const candidates = call.candidates.filter((channel) => channel.provider.embeddings);
  for (const channel of candidates.slice(0, deps.maxAttempts)) {
    const embeddings = channel.provider.embeddings;
    if (!embeddings) continue;
    call.attempting = channel;
    const context = contextFor(channel, call.publicModel, call.rawBody);
    const { request } = embeddings.request({ ...body, model: context.model }, context);
    const outcome = await attempt(deps.upstream, deps.stats, channel, request, abort);
    const attempts = failures.length + 1;
    if (outcome.kind === "aborted") {
      recordUsage(deps, call, new Outcome(channel, 499, attempts, "client closed the request"), startedAt);
      return call.reply;
    }
    if (outcome.kind === "caller_error") {
      recordUsage(deps, call, new Outcome(channel, outcome.status, attempts, outcome.message), startedAt);
      return sendError(call, outcome.status, outcome.message, outcome.code, outcome.type);
    }
    if (outcome.kind === "retry") {
      failures.push(outcome.failure);
      continue;
    }
    let result: EmbeddingsResponse;
    try {
      result = embeddings.response(JSON.parse(await outcome.response.body.text()), context);
    } catch {
      deps.stats.failed(channel.id, "malformed embeddings response");
      failures.push({ status: 502, message: "malformed response from upstream" });
      continue;
    }
    deps.stats.succeeded(channel.id, outcome.latencyMs);
    const usage = { prompt_tokens: result.usage.prompt_tokens, completion_tokens: 0, total_tokens: result.usage.total_tokens };
    recordUsage(deps, call, new Outcome(channel, 200, attempts, undefined, usage), startedAt);
    return call.reply.send({ ...result, model: call.publicModel });
  }
  const failure =
    candidates.length === 0 ? { status: 400, message: "no channel serving this model supports embeddings" } : finalFailure(failures);
  recordUsage(deps, call, new Outcome(undefined, failure.status, failures.length, failure.message), startedAt);
  return sendError(call, failure.status, failure.message);
}
