import type { CallContext, UpstreamRequest } from "@lyss/llm";
import { errors } from "undici";
import type { RuntimeChannel } from "../channels/catalog.ts";
import { Cancel } from "./cancel.ts";
import type { ChannelStats } from "./channel-stats.ts";
import { isTransportError, type UpstreamClient, type UpstreamResponse } from "./upstream.ts";

/** Why an attempt failed in a way another channel might not: the status the client sees if all fail. */
export interface Failure {
  status: number;
  message: string;
  type?: string;
}

export type AttemptOutcome =
  | { kind: "response"; response: UpstreamResponse; latencyMs: number }
  | { kind: "retry"; failure: Failure }
  | { kind: "caller_error"; status: number; message: string; type: string; code: string | null }
  | { kind: "aborted" };

/**
 * Outcomes of every kind are made here, with the fields of every kind (those of other kinds empty) in
 * one order: the relays read outcomes in their optimized code, and one of a kind with fields of its own
 * (a client gone before the answer, at the end of every load run) was a shape that code had not met,
 * which threw it away to be compiled again.
 */
const outcome = {
  response: (response: UpstreamResponse, latencyMs: number) => shaped("response", response, latencyMs),
  retry: (failure: Failure) => shaped("retry", undefined, 0, failure),
  callerError: (status: number, message: string, type: string, code: string | null) =>
    shaped("caller_error", undefined, 0, undefined, status, message, type, code),
  aborted: () => shaped("aborted"),
};

function shaped(
  kind: AttemptOutcome["kind"],
  response?: UpstreamResponse,
  latencyMs = 0,
  failure?: Failure,
  status = 0,
  message = "",
  type = "",
  code: string | null = null,
): AttemptOutcome {
  return { kind, response, latencyMs, failure, status, message, type, code } as AttemptOutcome;
}

/** Statuses that are the caller's fault: answered as they are, never retried elsewhere. */
const CALLER_ERRORS = new Set([400, 404, 413, 422]);

export function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * What the channel's adapter needs for one call; the client's own request text (`rawBody`, when kept)
 * only when the channel knows the model by its public name, so that the text names the upstream model.
 */
export function contextFor(channel: RuntimeChannel, publicModel: string, rawBody?: Uint8Array): CallContext {
  const model = channel.mapping[publicModel] ?? publicModel;
  return {
    baseUrl: channel.baseUrl,
    credentials: channel.credentials,
    model,
    extraHeaders: channel.extraHeaders,
    rawBody: model === publicModel ? rawBody : undefined,
  };
}

/**
 * One attempt's signal: the client's cancellation, plus the channel's total time limit; released (timer
 * cleared, let go of by the call's cancel) as soon as the exchange is over.
 */
class AttemptDeadline extends Cancel {
  expired = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly client: Cancel,
    timeoutMs: number,
  ) {
    super();
    this.timer = setTimeout(expire, timeoutMs, this);
    this.timer.unref();
    client.lead(this);
  }

  /** The exchange is over (bound: it is the body's "close" listener). */
  readonly done = () => {
    clearTimeout(this.timer);
    this.client.release(this);
  };
}

function expire(deadline: AttemptDeadline) {
  deadline.expired = true;
  deadline.abort(new DOMException("upstream timed out", "TimeoutError"));
}

/**
 * Sends one request to one channel and classifies the result: a response to read, a failure worth
 * trying elsewhere (transport errors, timeouts, 408, 429, 5xx, and 401/403, which also mark the
 * channel's credentials), or the caller's own error.
 */
export async function attempt(
  upstream: UpstreamClient,
  stats: ChannelStats,
  channel: RuntimeChannel,
  request: UpstreamRequest,
  signal: Cancel,
): Promise<AttemptOutcome> {
  const started = performance.now();
  stats.started(channel.id, channel.tenantId);
  const deadline = new AttemptDeadline(signal, channel.timeoutMs);
  let response: UpstreamResponse;
  try {
    response = await upstream.send(request, {
      firstByteMs: channel.firstByteTimeoutMs,
      signal: deadline,
    });
  } catch (error) {
    deadline.done();
    if (signal.aborted) {
      stats.released(channel.id);
      return outcome.aborted();
    }
    // (The body has no time limit of its own in the upstream client: only the first byte's and the deadline's.)
    const timedOut = deadline.expired || error instanceof errors.HeadersTimeoutError;
    const message = timedOut ? "upstream timed out" : `upstream unreachable: ${(error as Error).message}`;
    stats.failed(channel.id, message);
    if (!timedOut && !isTransportError(error)) throw error;
    return outcome.retry({ status: timedOut ? 504 : 502, message });
  }
  // The deadline covers the whole exchange: it ends when the body has been read or dropped (a body
  // closes once: \`on\` spares the wrapper \`once\` makes).
  response.body.on("close", deadline.done);
  const latencyMs = performance.now() - started;
  if (response.statusCode < 400) return outcome.response(response, latencyMs);

  const text = await response.body.text().catch(() => "");
  const info = channel.provider.error(response.statusCode, text);
  if (CALLER_ERRORS.has(response.statusCode)) {
    stats.released(channel.id);
    return outcome.callerError(response.statusCode, info.message, info.type, info.code ?? null);
  }
  const credentials = response.statusCode === 401 || response.statusCode === 403;
  stats.failed(channel.id, `${response.statusCode}: ${info.message}`, {
    credentials,
    retryAfterMs: retryAfterMs(response.header("retry-after")),
  });
  if (credentials) stats.credentialsRefused(channel, response.statusCode, info.message);
  return outcome.retry({
    status: credentials ? 502 : response.statusCode,
    message: credentials ? "the upstream refused the channel's credentials" : info.message,
    type: info.type,
  });
}

/** The status for the client when every attempt failed. */
export function finalFailure(failures: Failure[]): Failure {
  if (failures.length === 0) return { status: 503, message: "no available channel for this model" };
  if (failures.every((failure) => failure.status === 429)) return { status: 429, message: "all upstreams are rate limited; retry later" };
  if (failures.every((failure) => failure.status === 504)) return { status: 504, message: "the upstream timed out" };
  const last = failures[failures.length - 1] as Failure;
  const status = last.status === 503 || last.status === 504 ? last.status : 502;
  return { status, message: `upstream failed after ${failures.length} attempt(s): ${last.message}` };
}
