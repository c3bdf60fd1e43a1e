import type { UpstreamRequest } from "@lyss/llm";
import { Agent, type Dispatcher, errors } from "undici";
import type { Cancel } from "./cancel.ts";

/**
 * The one HTTP client for every upstream: undici keeps a keep-alive pool per origin. Timeouts are
 * per request: `firstByteMs` until the response headers, `totalMs` for the whole exchange.
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
    async send(
      request: UpstreamRequest,
      limits: { firstByteMs: number; totalMs: number; signal: Cancel | AbortSignal },
    ): Promise<Dispatcher.ResponseData> {
      const url = target(request.url);
      return agent.request({
        origin: url.origin,
        path: url.path,
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: limits.signal,
        headersTimeout: limits.firstByteMs,
        bodyTimeout: limits.totalMs,
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
