import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { running, type Server, startServer } from "../../test/server-process.ts";
import { ADMIN, freshStorage, TEST_REDIS_URL } from "../../test/test-app.ts";

async function post(url: string, token: string, body: unknown, tenant?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  if (tenant) headers["x-tenant-id"] = tenant;
  return fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
}

describe.skipIf(!TEST_REDIS_URL)("quotas across two server processes sharing PostgreSQL and Redis", () => {
  let sim: UpstreamSimulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => {
    for (const child of running) child.kill("SIGKILL");
    await sim.close();
  });

  it("admits exactly the budget of 500 concurrent requests spread over both processes", async () => {
    const storage = await freshStorage();
    const env = { LYSS_SECRET_KEY: "c".repeat(64), LOG_LEVEL: "warn" };
    const servers: Server[] = [];
    try {
      servers.push(await startServer(storage, env));
      servers.push(await startServer(storage, env));
      const [first, second] = servers as [Server, Server];
      const setup = (await (
        await fetch(`${first.url}/api/v1/auth/setup`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(ADMIN),
        })
      ).json()) as { access_token: string; tenant: { id: string } };
      const admin = setup.access_token;
      const channel = await post(`${first.url}/api/v1/channels`, admin, {
        name: "sim",
        provider: "openai",
        base_url: sim.url,
        credentials: { api_key: "sk-sim" },
        models: ["gpt-4o-mini"],
      });
      expect(channel.status).toBe(201);
      const token = (await (
        await post(`${first.url}/api/v1/tokens`, admin, {
          name: "ci",
          limits: [
            { metric: "requests", window: "total", max: 50 },
            { metric: "cost_micro_usd", window: "month", max: 5_000_000 },
          ],
        })
      ).json()) as { id: string; key: string };

      const statuses = await Promise.all(
        Array.from({ length: 500 }, async (_, index) => {
          const server = index % 2 === 0 ? first : second;
          const response = await post(`${server.url}/v1/chat/completions`, token.key, {
            model: "gpt-4o-mini",
            max_tokens: 20,
            messages: [{ role: "user", content: `request ${index}` }],
          });
          await response.arrayBuffer();
          return response.status;
        }),
      );
      expect(statuses.filter((status) => status === 200)).toHaveLength(50);
      expect(statuses.filter((status) => status === 429)).toHaveLength(450);
      expect(sim.requestsTo("/chat/completions")).toHaveLength(50);

      // A graceful stop flushes what each process still holds.
      for (const server of servers) server.child.kill("SIGTERM");
      for (const server of servers) expect((await server.exited).code).toBe(0);

      const client = new pg.Client({ connectionString: storage.databaseUrl });
      await client.connect();
      try {
        const counters = await client.query<{ key: string; used: string }>("select key, used from quota_counters");
        expect(Number(counters.rows.find((row) => row.key.includes(":requests:total:"))?.used)).toBe(50);
        const logs = await client.query<{ ok: string; cost: string }>(
          "select count(*) filter (where status_code = 200) as ok, coalesce(sum(cost_micro_usd), 0) as cost from usage_logs",
        );
        expect(Number(logs.rows[0]?.ok)).toBe(50);
        expect(Number(counters.rows.find((row) => row.key.includes(":cost_micro_usd:month:"))?.used)).toBe(Number(logs.rows[0]?.cost));
      } finally {
        await client.end();
      }
    } finally {
      for (const server of servers) server.child.kill("SIGKILL");
      await storage.drop();
    }
  }, 120_000);
});
