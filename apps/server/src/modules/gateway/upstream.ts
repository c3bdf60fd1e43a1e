import type { UpstreamRequest } from "@lyss/llm";
import { Agent, type Dispatcher, errors, util } from "undici";
import type { Cancel } from "./cancel.ts";
import { UpstreamBody } from "./upstream-body.ts";

/** An upstream's answer: its status, its headers by name, and its body as it comes. */
export interface UpstreamResponse {
  statusCode: number;
  /** A header's value (the first of several), by its name in lower case. */
  header(name: string): string | undefined;
  body: UpstreamBody;
}

type Signal = Cancel | AbortSignal;

const reasonOf = (signal: Signal): Error => (signal.reason as Error | undefined) ?? new errors.RequestAbortedError();

/**
 * One exchange with an upstream, as undici's dispatcher reports it: the response once its head is
 * parsed, then its body's pieces straight into an `UpstreamBody`. The cancel aborts the exchange at any
 * point: before the head the send fails with its reason at once (a request still waiting for a
 * connection is dropped when it gets one), after it the body does.
 */
class Exchange implements Dispatcher.DispatchHandler {
  private abort: ((reason: Error) => void) | undefined;
  private body: UpstreamBody | undefined;
  private readonly onAbort = () => {
    const reason = reasonOf(this.signal);
    if (this.body) this.body.destroy(reason);
    else if (this.abort) this.abort(reason);
    else this.onError(reason);
  };

  constructor(
    private readonly signal: Signal,
    private readonly resolve: (response: UpstreamResponse) => void,
    private readonly reject: (error: Error) => void,
  ) {
    if ("on" in signal) signal.on("abort", this.onAbort);
    else signal.addEventListener("abort", this.onAbort);
  }

  onConnect(abort: (reason?: Error) => void) {
    if (this.signal.aborted) abort(reasonOf(this.signal));
    else this.abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    // An interim answer (103 Early Hints, say) is not the response.
    if (statusCode < 200) return true;
    const abort = this.abort ?? (() => {});
    const body = new UpstreamBody(resume, abort);
    this.body = body;
    body.on("close", this.detach);
    this.resolve({ statusCode, header: (name) => headerOf(rawHeaders, name), body });
    return true;
  }

  onData(chunk: Buffer): boolean {
    return this.body ? this.body.push(chunk) : true;
  }

  onComplete() {
    this.body?.end();
  }

  onError(error: Error) {
    if (this.body) this.body.fail(error);
    else {
      this.detach();
      this.reject(error);
    }
  }

  private readonly detach = () => {
    if ("off" in this.signal) this.signal.off("abort", this.onAbort);
    else this.signal.removeEventListener("abort", this.onAbort);
  };
}

/** The first value of a header, by its lower-case name, parsed by undici only when asked (an error answer's `retry-after`). */
function headerOf(raw: Buffer[], name: string): string | undefined {
  const value = util.parseHeaders(raw)[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The one HTTP client for every upstream: undici keeps a keep-alive pool per origin. Each request has
 * `firstByteMs` until the response headers; the whole exchange's limit is the caller's signal (the
 * attempt's deadline, or `AbortSignal.timeout`). The parser's own limit on the body is off: as long as
 * the whole (it was), it never fired first, and it cost the parser a timer of its own per response.
 * `connections` caps the pool of one origin (LYSS_UPSTREAM_CONNECTIONS); 0 or absent: no cap, since
 * a capped pool makes the streams beyond it wait for a free connection until their first-byte timeout.
 */
export function createUpstreamClient(options: { connections?: number } = {}) {
  const agent = new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connections: options.connections ? options.connections : null,
    pipelining: 1,
    connect: { timeout: 10_000 },
  });

  // Each channel calls the same few URLs again and again: each is parsed once.
  const targets = new Map<string, { origin: string; path: string }>();
  function target(href: string) {
    let parsed = targets.get(href);
    if (!parsed) {
      const url = new URL(href);
      parsed = { origin: url.origin, path: `${url.pathname}${url.search}` };
      if (targets.size >= 1000) targets.clear();
      targets.set(href, parsed);
    }
    return parsed;
  }

  return {
    send(request: UpstreamRequest, limits: { firstByteMs: number; signal: Signal }): Promise<UpstreamResponse> {
      return new Promise((resolve, reject) => {
        const url = target(request.url);
        agent.dispatch(
          {
            origin: url.origin,
            path: url.path,
            method: request.method,
            headers: request.headers,
            body: request.body,
            headersTimeout: limits.firstByteMs,
            bodyTimeout: 0,
          },
          new Exchange(limits.signal, resolve, reject),
        );
      });
    },
    close: () => agent.close(),
  };
}

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;

/** Whether an error means the upstream could not be reached or timed out (worth another channel). */
export function isTransportError(error: unknown): boolean {
  return (
    error instanceof errors.UndiciError ||
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "UND_ERR_SOCKET"].includes(
      (error as { code?: string } | null)?.code ?? "",
    )
  );
}
