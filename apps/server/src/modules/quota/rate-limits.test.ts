import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createAccessToken, gatewayApp, type setupAdmin, type TestApp } from "../../test/test-app.ts";

describe("rate limits", () => {
  let sim: UpstreamSimulator;
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let baseUrl: string;
  const chat = (key: string, maxTokens = 20) =>
    fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: maxTokens, messages: [{ role: "user", content: "hi" }] }),
    });

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => sim.close());
  beforeEach(async () => {
    sim.reset();
    ({ app, admin, baseUrl } = await gatewayApp(sim.url));
  });
  afterEach(async () => app.close());

  it("limits requests per minute per token with OpenAI's headers, and frees the window as it slides", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, { rate_limits: { rpm: 3 } });
    const remaining: string[] = [];
    for (let index = 0; index < 3; index++) {
      const response = await chat(token.key);
      expect(response.status).toBe(200);
      expect(response.headers.get("x-ratelimit-limit-requests")).toBe("3");
      expect(response.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+s$/);
      remaining.push(response.headers.get("x-ratelimit-remaining-requests") ?? "");
    }
    expect(remaining).toEqual(["2", "1", "0"]);
    const refused = await chat(token.key);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await refused.json()) as { error: object }).error).toMatchObject({ code: "rate_limit_exceeded", type: "rate_limit_error" });
    // The refused request never reached the upstream.
    expect(sim.requestsTo("/chat/completions")).toHaveLength(3);
    app.clock.advance(120_000);
    expect((await chat(token.key)).status).toBe(200);
    const metrics = await app.call("GET", "/metrics");
    expect(metrics.text).toMatch(/lyss_gateway_rejections_total\{[^}]*kind="rate_limit"[^}]*\} 1/);
  });

  it("limits tokens per minute, counting the completion allowance until the answer settles it", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, { rate_limits: { tpm: 300 } });
    const first = await chat(token.key, 200);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-limit-tokens")).toBe("300");
    // The first answer used far fewer tokens than its allowance; the settlement gave the rest back.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await chat(token.key, 200)).status).toBe(200);
    expect((await chat(token.key, 299)).status).toBe(429);
  });

  it("applies per-member and per-tenant limits from the settings", async () => {
    const one = await createAccessToken(app, admin.token, admin.tenant.id);
    const two = await createAccessToken(app, admin.token, admin.tenant.id);
    await app.call("PATCH", "/api/v1/settings/tenant", { token: admin.token, body: { user_rate_limits: { rpm: 2 } } });
    expect((await chat(one.key)).status).toBe(200);
    expect((await chat(two.key)).status).toBe(200);
    expect((await chat(one.key)).status).toBe(429);

    app.clock.advance(120_000);
    await app.call("PATCH", "/api/v1/settings/tenant", { token: admin.token, body: { user_rate_limits: null } });
    await app.call("PATCH", "/api/v1/settings/platform", {
      token: admin.token,
      body: { tenant_rate_limits: { [admin.tenant.id]: { rpm: 1 } } },
    });
    expect((await chat(one.key)).status).toBe(200);
    const refused = await chat(two.key);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain("tenant");
  });
});
