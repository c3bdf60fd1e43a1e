import type { ChatChunk, ChatRequest, Usage } from "@lyss/llm";
import type { FastifyReply } from "fastify";
import type { Logger } from "pino";
import { type Clock, isoNow } from "../../infra/clock.ts";
import type { Metrics } from "../../infra/metrics.ts";
import type { RuntimeChannel } from "../channels/catalog.ts";
import type { PriceBook } from "../pricing/service.ts";
import type { Billing } from "../quota/admission.ts";
import type { RateLimiter } from "../quota/rate-limits.ts";
import type { QuotaService } from "../quota/service.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import type { UsageRecorder } from "../usage/recorder.ts";
import type { Cancel } from "./cancel.ts";
import type { ChannelStats } from "./channel-stats.ts";
import type { InboundProtocol } from "./inbound.ts";
import type { UpstreamClient } from "./upstream.ts";

export interface RelayDeps {
  quota: QuotaService;
  prices: PriceBook;
  rates: RateLimiter;
  metrics: Pick<Metrics, "rejected">;
  upstream: UpstreamClient;
  stats: ChannelStats;
  usage: UsageRecorder;
  logger: Logger;
  maxAttempts: number;
  keepAliveMs: number;
  clock: Clock;
}

export interface ChatCall {
  token: RuntimeToken;
  publicModel: string;
  /** The request in OpenAI's format (translated already when the client spoke another protocol). */
  body: ChatRequest;
  /** The client's own JSON text of the request as it came, when the client spoke OpenAI's format. */
  rawBody?: Uint8Array | undefined;
  candidates: RuntimeChannel[];
  inbound: InboundProtocol;
  endpoint: string;
  requestId: string;
  warnings: string[];
  reply: FastifyReply;
  /** Prices the usage and settles quotas; absent for calls that were never admitted. */
  billing?: Billing;
  /** Its usage record written and its quotas settled (once per call). */
  recorded: boolean;
  /** The channel of the attempt in hand, for the record of a throw nothing expected. */
  attempting: RuntimeChannel | undefined;
}

/**
 * What a finished call records. A class, so that every outcome has the same fields in the same order
 * (one hidden class): outcomes written as object literals of different fields gave the optimized code
 * that reads them a shape it had not met whenever a rarer ending came (a client gone mid-answer, as at
 * the end of every load run), which threw that code away and compiled it again (tens of milliseconds
 * on a compiler thread, the requests in between run unoptimized).
 */
export class Outcome {
  constructor(
    readonly channel: RuntimeChannel | undefined,
    readonly status: number,
    readonly attempts: number,
    readonly error?: string,
    readonly usage?: Usage,
    readonly ttftMs?: number,
  ) {}
}

const settlementFailed = (deps: RelayDeps, requestId: string, error: Error) =>
  deps.logger.error({ err: error, request_id: requestId }, "quota settlement failed");

export function recordUsage(
  deps: RelayDeps,
  call: Omit<ChatCall, "reply" | "inbound" | "candidates" | "warnings">,
  outcome: Outcome,
  startedAt: number,
) {
  const usage = outcome.usage;
  let cost = 0;
  try {
    cost = call.billing?.cost(usage, outcome.channel) ?? 0;
  } catch (error) {
    settlementFailed(deps, call.requestId, error as Error);
  }
  try {
    const settled = call.billing?.settle(outcome.status, usage, cost, outcome.channel);
    if (settled instanceof Promise) settled.catch((error: Error) => settlementFailed(deps, call.requestId, error));
  } catch (error) {
    settlementFailed(deps, call.requestId, error as Error);
  }
  // Settled: a throw from here on must not settle or record the call again.
  call.recorded = true;
  deps.usage.record({
    tenant_id: call.token.tenantId,
    user_id: call.token.userId,
    token_id: call.token.id,
    channel_id: outcome.channel?.id ?? null,
    provider: outcome.channel?.provider.id ?? null,
    endpoint: call.endpoint,
    requested_model: call.publicModel,
    upstream_model: outcome.channel ? (outcome.channel.mapping[call.publicModel] ?? call.publicModel) : null,
    stream: call.body.stream ? 1 : 0,
    status_code: outcome.status,
    error: outcome.error?.slice(0, 1000) ?? null,
    latency_ms: Math.round(performance.now() - startedAt),
    ttft_ms: outcome.ttftMs === undefined ? null : Math.round(outcome.ttftMs),
    prompt_tokens: usage?.prompt_tokens ?? 0,
    completion_tokens: usage?.completion_tokens ?? 0,
    cached_tokens: usage?.prompt_tokens_details?.cached_tokens ?? 0,
    reasoning_tokens: usage?.completion_tokens_details?.reasoning_tokens ?? 0,
    total_tokens: usage?.total_tokens ?? (usage ? usage.prompt_tokens + usage.completion_tokens : 0),
    attempts: outcome.attempts,
    cost_micro_usd: cost,
    request_id: call.requestId,
    created_at: isoNow(deps.clock),
  });
}

/** What a usage record says of a throw nothing expected. */
export const internalError = (error: unknown) => `internal error: ${error instanceof Error ? error.message : String(error)}`;

/**
 * A call that threw where no path of its relay expected it to: its quotas are settled and its record
 * written as a 500 with the channel of the attempt in hand (once: not when the call was recorded
 * before it threw), so its reservation is not held for good. An answer not yet begun is the error
 * handler's to give, in the client's protocol; a stream already begun ends with `closing`'s error event.
 */
export function unforeseen(
  deps: RelayDeps,
  call: ChatCall,
  error: unknown,
  startedAt: number,
  closing?: (message: string) => string,
): unknown {
  if (!call.recorded) recordUsage(deps, call, new Outcome(call.attempting, 500, 1, internalError(error)), startedAt);
  const raw = call.reply.raw;
  if (!raw.headersSent) throw error;
  deps.logger.error({ err: error, request_id: call.requestId }, "gateway error after the answer began");
  if (!raw.writableEnded && !raw.destroyed) raw.end(closing?.(`internal error (request ${call.requestId})`));
  return call.reply;
}

export function sendError(call: ChatCall, status: number, message: string, code: string | null = null, type?: string) {
  return call.reply
    .code(status)
    .type("application/json; charset=utf-8")
    .send(call.inbound.errorBody(status, message, code, type));
}

export const hasContent = (chunk: ChatChunk) =>
  chunk.choices.some(
    (choice) =>
      Boolean(choice.delta.content) ||
      Boolean(choice.delta.tool_calls?.length) ||
      Boolean(choice.delta.reasoning_content) ||
      choice.finish_reason !== null,
  );

/**
 * Why a call is cancelled when its client goes: an error without a stack. Node's streams read the
 * stack of the error they are destroyed with, so one captured here (or undici's own error, made when
 * the cancel carries no reason) is also formatted, for every stream a client leaves.
 */
function clientClosed(): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const error = new Error("client closed the request");
  Error.stackTraceLimit = limit;
  return error;
}

/** Aborts the upstream side as soon as the client goes away, and lets go of the client's socket. */
export function watchClient(call: ChatCall, abort: Cancel) {
  call.reply.raw.on("close", () => {
    if (call.reply.raw.writableFinished) return;
    abort.abort(clientClosed());
    call.reply.raw.socket?.destroy();
  });
}
