import type { ChatCompletion } from "@lyss/llm";
import { attempt, contextFor, type Failure, finalFailure } from "./attempt.ts";
import { type ChatCall, Outcome, type RelayDeps, recordUsage, sendError, unforeseen, watchClient } from "./call.ts";
import { Cancel } from "./cancel.ts";
import { encoderFor, relayStream } from "./stream-relay.ts";
import { estimateUsage } from "./token-count.ts";

const completionText = (completion: ChatCompletion) =>
  completion.choices
    .map(
      (choice) =>
        `${choice.message.content ?? ""}${(choice.message.tool_calls ?? []).map((tool) => tool.function?.arguments ?? "").join("")}`,
    )
    .join("");

/**
 * Runs a chat call: tries the candidates in order, failing over on errors that another channel
 * might not have, up to the attempt bound; answers plain or streamed in the client's protocol.
 */
export async function relayChat(deps: RelayDeps, call: ChatCall): Promise<unknown> {
  const startedAt = performance.now();
  const abort = new Cancel();
  watchClient(call, abort);
  if (call.warnings.length) call.reply.header("x-lyss-warnings", call.warnings.join("; ").replace(/[^\x20-\x7e]/g, "?"));
  try {
    return await (call.body.stream ? relayStream(deps, call, abort, startedAt) : relayPlain(deps, call, abort, startedAt));
  } catch (error) {
    return unforeseen(deps, call, error, startedAt, (message) => encoderFor(call).error(500, message));
  }
}

async function relayPlain(deps: RelayDeps, call: ChatCall, abort: Cancel, startedAt: number): Promise<unknown> {
  const failures: Failure[] = [];
  for (const channel of call.candidates.slice(0, deps.maxAttempts)) {
    call.attempting = channel;
    const context = contextFor(channel, call.publicModel, call.rawBody);
    const translated = channel.provider.chat.request(call.body, context);
    const outcome = await attempt(deps.upstream, deps.stats, channel, translated.request, abort);
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
    let completion: ChatCompletion;
    let text: string;
    let parsed: { object?: unknown };
    try {
      text = await outcome.response.body.text();
      parsed = JSON.parse(text);
      completion = channel.provider.chat.response(parsed, context);
    } catch (error) {
      deps.stats.failed(channel.id, `malformed response: ${(error as Error).message}`);
      failures.push({ status: 502, message: "malformed response from upstream" });
      continue;
    }
    deps.stats.succeeded(channel.id, outcome.latencyMs);
    const usage = completion.usage ?? (await estimateUsage(call.body, completionText(completion)));
    recordUsage(deps, call, new Outcome(channel, 200, attempts, undefined, usage), startedAt);
    for (const warning of translated.warnings) call.warnings.push(warning);
    if (call.warnings.length) call.reply.header("x-lyss-warnings", call.warnings.join("; ").replace(/[^\x20-\x7e]/g, "?"));
    // An OpenAI-format answer that carried its own usage goes out as it came (public model name put in).
    const passed =
      completion.usage && parsed.object === "chat.completion" && channel.provider.capabilities.openAIFormat
        ? call.inbound.passThrough?.(text, completion.model, call.publicModel)
        : undefined;
    if (passed !== undefined) return call.reply.type("application/json; charset=utf-8").send(passed);
    return call.reply.send(call.inbound.completion({ ...completion, usage }, call.publicModel));
  }
  const failure = finalFailure(failures);
  recordUsage(deps, call, new Outcome(undefined, failure.status, failures.length, failure.message), startedAt);
  return sendError(call, failure.status, failure.message, null, failure.type);
}
