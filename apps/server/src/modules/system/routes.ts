import { ZHealth, ZReady } from "@lyss/contracts";
import { z } from "zod";
import type { Infra } from "../../context.ts";
import { pingDatabase } from "../../infra/db.ts";
import type { Api } from "../http.ts";

const tags = ["system"];
const config = { access: "public" as const };

async function timed(check: () => Promise<unknown>) {
  const started = performance.now();
  try {
    await check();
    return { ok: true, latency_ms: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, latency_ms: Math.round(performance.now() - started), error: (error as Error).message };
  }
}

export function systemRoutes(app: Api, infra: Infra) {
  app.get("/health", { config, schema: { tags, summary: "Liveness: the process is up", response: { 200: ZHealth } } }, async () => ({
    status: "ok" as const,
    uptime_seconds: Math.round(process.uptime()),
  }));

  app.get(
    "/ready",
    {
      config,
      schema: { tags, summary: "Readiness: the database (and Redis, when configured) answer", response: { 200: ZReady, 503: ZReady } },
    },
    async (_request, reply) => {
      const checks: Record<string, { ok: boolean; latency_ms: number; error?: string }> = {
        database: await timed(() => pingDatabase(infra.db)),
      };
      const redis = infra.redis;
      if (redis) checks.redis = await timed(() => redis.ping());
      const ready = Object.values(checks).every((check) => check.ok);
      return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "unavailable", checks });
    },
  );

  app.get(
    "/metrics",
    {
      config,
      schema: {
        tags,
        summary: "Prometheus metrics",
        description: "With LYSS_WORKERS > 1, every worker's metrics combined: counters and histograms summed over the workers.",
        produces: ["text/plain"],
        response: { 200: z.string() },
      },
    },
    async (_request, reply) => {
      reply.type(infra.metrics.registry.contentType);
      return infra.metrics.exposition();
    },
  );
}
