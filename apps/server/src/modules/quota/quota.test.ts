import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import type { FastifyRequest } from "fastify";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { hashToken } from "../../infra/crypto.ts";
import { eventually } from "../../test/eventually.ts";
import { createAccessToken, gatewayApp, type setupAdmin, TEST_REDIS_URL, type TestApp } from "../../test/test-app.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import { admitCall } from "./admission.ts";
import { createQuotaService } from "./service.ts";
import { createMemoryQuotaStore, type QuotaStore } from "./store.ts";
import { windowBucket } from "./windows.ts";

const chat = (baseUrl: string, key: string, content = "hi", extra: Record<string, unknown> = {}, signal?: AbortSignal) =>
  fetch(`${baseUrl}/v1/chat/completions`, {
    method: "POST",
    signal,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], max_tokens: 50, ...extra }),
  });

describe("quotas", () => {
  let sim: UpstreamSimulator;
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let baseUrl: string;

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => sim.close());
  beforeEach(async () => {
    sim.reset();
    ({ app, admin, baseUrl } = await gatewayApp(sim.url));
  });
  afterEach(async () => app.close());

  it("holds a request budget under 500 concurrent requests: exactly the budget is spent, the rest get 429", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, {
      name: "ci",
      limits: [
        { metric: "requests", window: "total", max: 50 },
        { metric: "cost_micro_usd", window: "month", max: 5_000_000 },
      ],
    });
    const responses = await Promise.all(Array.from({ length: 500 }, (_, index) => chat(baseUrl, token.key, `n${index}`)));
    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(50);
    expect(statuses.filter((status) => status === 429)).toHaveLength(450);
    // biome-ignore lint/suspicious/noExplicitAny: a JSON answer read loosely
    const refusal: any = await responses.find((response) => response.status === 429)?.json();
    const remaining = responses
      .filter((response) => response.status === 200)
      .map((response) => Number(response.headers.get("x-lyss-quota-remaining-requests")));
    expect(Math.min(...remaining)).toBe(0);
    expect(Math.max(...remaining)).toBe(49);
    expect(new Set(remaining).size).toBe(50);
    expect(refusal.error).toMatchObject({ type: "insufficient_quota", code: "insufficient_quota" });
    expect(sim.requestsTo("/chat/completions")).toHaveLength(50);

    await app.services.usage.flush();
    const view = await app.call("GET", `/api/v1/tokens/${token.id}`, { token: admin.token });
    expect(view.body.limits[0]).toMatchObject({ metric: "requests", window: "total", max: 50, used: 50, reserved: 0, resets_at: null });
    expect(view.body.limits[1].used).toBeGreaterThan(0);
    expect(view.body.limits[1].reserved).toBe(0);
    const counters = await app.infra.db.kysely.selectFrom("quota_counters").selectAll().execute();
    expect(counters.find((row) => row.key.includes(":requests:total:"))?.used).toBe(50);
    const logs = await app.infra.db.kysely.selectFrom("usage_logs").select(["status_code", "cost_micro_usd"]).execute();
    expect(logs.filter((row) => row.status_code === 200)).toHaveLength(50);
    const spent = logs.reduce((sum, row) => sum + Number(row.cost_micro_usd), 0);
    expect(counters.find((row) => row.key.includes(":cost_micro_usd:month:"))?.used).toBe(spent);
  });

  it("authenticates, chooses channels, admits and settles from memory once warm: a promise only with a shared store", async () => {
    const limited = await createAccessToken(app, admin.token, admin.tenant.id, {
      limits: [{ metric: "requests", window: "day", max: 100 }],
      rate_limits: { rpm: 100, tpm: 1_000_000 },
    });
    const plain = await createAccessToken(app, admin.token, admin.tenant.id, { limits: [{ metric: "requests", window: "day", max: 100 }] });
    // A call through the API warms the caches and derives each token's plan.
    for (const key of [limited.key, plain.key]) expect((await chat(baseUrl, key)).status).toBe(200);
    const { gateway, relay } = app.services;
    const shared = Boolean(TEST_REDIS_URL);
    const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "hi" }], max_tokens: 50 };
    const request = (key: string) => ({ headers: { authorization: `Bearer ${key}` }, ip: "127.0.0.1" }) as unknown as FastifyRequest;

    const authenticated = gateway.authenticate(request(limited.key));
    expect(authenticated).not.toBeInstanceOf(Promise);
    const token = authenticated as RuntimeToken;
    expect(token.id).toBe(limited.id);
    const candidates = gateway.candidates(token, "gpt-4o-mini", undefined);
    expect(candidates).not.toBeInstanceOf(Promise);
    const admission = admitCall(relay, token, body, await candidates);
    expect(admission instanceof Promise).toBe(shared);
    const admitted = await admission;
    expect(admitted.headers["x-ratelimit-limit-requests"]).toBe("100");
    const settled = admitted.billing.settle(200, { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 }, 0, admitted.candidates[0]);
    expect(settled instanceof Promise).toBe(shared);
    await settled;

    // Without rate rules, each admission still answers headers of its own.
    const other = (await gateway.authenticate(request(plain.key))) as RuntimeToken;
    const first = await admitCall(relay, other, body, await gateway.candidates(other, "gpt-4o-mini", undefined));
    const second = await admitCall(relay, other, body, await gateway.candidates(other, "gpt-4o-mini", undefined));
    expect(first.headers).not.toBe(second.headers);
    expect(Number(first.headers["x-lyss-quota-remaining-requests"])).toBe(Number(second.headers["x-lyss-quota-remaining-requests"]) + 1);
    expect(first.headers["x-ratelimit-limit-requests"]).toBeUndefined();
    for (const admission of [first, second]) await admission.billing.settle(500, undefined, 0, undefined);

    // A wrong key still waits for its refusal (counted per address, which may be shared).
    await expect(Promise.resolve().then(() => gateway.authenticate(request("sk-wrong")))).rejects.toMatchObject({ status: 401 });
    // The token answered on a cache miss is the one kept, so the plan derived for its first call holds.
    app.services.tokenCache.changed(hashToken(plain.key));
    const reloaded = await app.services.tokenCache.byHash(hashToken(plain.key));
    expect(app.services.tokenCache.byHash(hashToken(plain.key))).toBe(reloaded);
  });

  it("settles a call's rate limits even when its quota settlement throws", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, {
      limits: [{ metric: "requests", window: "day", max: 100 }],
      rate_limits: { tpm: 10_000 },
    });
    expect((await chat(baseUrl, token.key)).status).toBe(200);
    const { gateway, relay } = app.services;
    const request = { headers: { authorization: `Bearer ${token.key}` }, ip: "127.0.0.1" } as unknown as FastifyRequest;
    const runtime = await gateway.authenticate(request);
    const body = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "hi" }], max_tokens: 50 };
    const admit = async () => admitCall(relay, runtime, body, await gateway.candidates(runtime, "gpt-4o-mini", undefined));

    const first = await admit();
    const estimate = Number(first.headers["x-ratelimit-limit-tokens"]) - Number(first.headers["x-ratelimit-remaining-tokens"]);
    expect(estimate).toBeGreaterThan(8);
    const settle = relay.quota.settle;
    relay.quota.settle = () => {
      throw new Error("quota store away");
    };
    try {
      await expect(
        Promise.resolve().then(() =>
          first.billing.settle(200, { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 }, 0, first.candidates[0]),
        ),
      ).rejects.toThrow("quota store away");
    } finally {
      relay.quota.settle = settle;
    }
    // The rate window holds the 8 tokens used, not the estimate the call reserved.
    const second = await admit();
    const used = Number(second.headers["x-ratelimit-limit-tokens"]) - Number(second.headers["x-ratelimit-remaining-tokens"]);
    expect(used - estimate).toBeLessThanOrEqual(8);
    await second.billing.settle(200, undefined, 0, second.candidates[0]);
  });

  it("keeps a settlement's use for the database when the counter store fails to settle it", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, {
      limits: [{ metric: "requests", window: "day", max: 100 }],
    });
    const { services, infra } = app;
    // The app's own services, with a counter store that reserves in memory and whose settlement fails
    // (Redis away, a cluster primary that does not answer in time).
    const memory = createMemoryQuotaStore();
    const store: QuotaStore = { ...memory, settle: () => Promise.reject(new Error("store away")) };
    const quota = createQuotaService({ ...services, db: infra.db.kysely, store, clock: infra.clock });
    const runtime = await services.tokenCache.byHash(hashToken(token.key));
    if (!runtime) throw new Error("token not loaded");
    const plan = await quota.buildPlan(runtime);
    const reservation = await quota.reserve(plan, { requests: 1, tokens: 10, cost_micro_usd: 0 });
    await expect(Promise.resolve(quota.settle(reservation, { requests: 1, tokens: 8, cost_micro_usd: 0 }, undefined))).rejects.toThrow(
      "store away",
    );
    const settled = quota.takeSettled();
    expect(settled).toHaveLength(1);
    expect(settled[0]).toMatchObject({ tenantId: admin.tenant.id, delta: 1 });
    expect(settled[0]?.key).toContain(":requests:day:");
  });

  it("keeps a failed batch's settled use and stores it once when the batch is written again", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, {
      limits: [{ metric: "requests", window: "total", max: 10 }],
    });
    // Settlement follows the answer (through Redis, a round trip later): wait until the counter shows it.
    const settled = (used: number) =>
      eventually(async () => (await app.call("GET", `/api/v1/tokens/${token.id}`, { token: admin.token })).body.limits[0].used === used);
    expect((await chat(baseUrl, token.key)).status).toBe(200);
    await settled(1);
    const db = app.infra.db.kysely;
    // The usage table is away for the first batch: neither its records nor the settled counters land.
    await db.schema.alterTable("usage_logs").renameTo("usage_logs_away").execute();
    await app.services.usage.flush();
    expect(await db.selectFrom("quota_counters").select("used").execute()).toEqual([]);
    await db.schema.alterTable("usage_logs_away").renameTo("usage_logs").execute();
    expect((await chat(baseUrl, token.key)).status).toBe(200);
    await settled(2);
    await app.services.usage.flush();
    const counters = await db.selectFrom("quota_counters").select(["key", "used"]).execute();
    expect(counters.find((row) => row.key.includes(":requests:total:"))?.used).toBe(2);
    expect(await db.selectFrom("usage_logs").select("id").execute()).toHaveLength(2);
  });

  it("prices every usage record in integer micro-USD", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id);
    expect((await chat(baseUrl, token.key, "price me please")).status).toBe(200);
    await app.services.usage.flush();
    const [row] = await app.infra.db.kysely.selectFrom("usage_logs").selectAll().execute();
    // gpt-4o-mini: 0.15 USD per million input tokens, 0.60 per million output tokens.
    const expected = Math.round((Number(row?.prompt_tokens) * 150_000 + Number(row?.completion_tokens) * 600_000) / 1_000_000);
    expect(Number(row?.cost_micro_usd)).toBe(expected);
  });

  it("prices with the tenant's and the channel group's multipliers, and follows a change of them at once", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id);
    // gpt-4o-mini's own price, times the multipliers in force when each call was made.
    const costs = async () => {
      await app.services.usage.flush();
      const rows = await app.infra.db.kysely
        .selectFrom("usage_logs")
        .select(["cost_micro_usd", "prompt_tokens", "completion_tokens"])
        .orderBy("id")
        .execute();
      return rows.map((row) => ({
        cost: Number(row.cost_micro_usd),
        base: (Number(row.prompt_tokens) * 150_000 + Number(row.completion_tokens) * 600_000) / 1_000_000,
      }));
    };
    expect((await chat(baseUrl, token.key, "one")).status).toBe(200);
    const platform = (body: Record<string, unknown>) => app.call("PATCH", "/api/v1/settings/platform", { token: admin.token, body });
    expect((await platform({ tenant_price_multipliers: { [admin.tenant.id]: 2 } })).status).toBe(200);
    expect((await chat(baseUrl, token.key, "two")).status).toBe(200);
    expect((await platform({ group_price_multipliers: { default: 3 } })).status).toBe(200);
    expect((await chat(baseUrl, token.key, "six")).status).toBe(200);
    const rows = await costs();
    expect(rows.map((row) => row.cost)).toEqual([1, 2, 6].map((multiplier, index) => Math.round((rows[index]?.base ?? 0) * multiplier)));
    expect(rows[2]?.cost).toBeGreaterThan(rows[0]?.cost ?? 0);
  });

  it("reserves the tenant's default completion allowance for a request without max_tokens, as soon as it is changed", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, {
      limits: [{ metric: "tokens", window: "total", max: 1000 }],
    });
    const open = (key: string) =>
      fetch(`${baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
      });
    // The default allowance (4096) alone passes the limit.
    expect((await open(token.key)).status).toBe(429);
    const tenant = (body: Record<string, unknown>) => app.call("PATCH", "/api/v1/settings/tenant", { token: admin.token, body });
    expect((await tenant({ quota_default_max_tokens: 100 })).status).toBe(200);
    expect((await open(token.key)).status).toBe(200);
    expect((await tenant({ quota_default_max_tokens: 5000 })).status).toBe(200);
    expect((await open(token.key)).status).toBe(429);
  });

  it("applies a token's changed limits and rate limits from its next call", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, {
      limits: [{ metric: "requests", window: "total", max: 100 }],
      rate_limits: { rpm: 100 },
    });
    const patch = (body: Record<string, unknown>) => app.call("PATCH", `/api/v1/tokens/${token.id}`, { token: admin.token, body });
    const first = await chat(baseUrl, token.key);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-lyss-quota-remaining-requests")).toBe("99");
    expect((await patch({ rate_limits: { rpm: 1 } })).status).toBe(200);
    const limited = await chat(baseUrl, token.key);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("x-ratelimit-limit-requests")).toBe("1");
    expect((await patch({ rate_limits: {}, limits: [{ metric: "requests", window: "total", max: 2 }] })).status).toBe(200);
    const second = await chat(baseUrl, token.key);
    expect(second.status).toBe(200);
    expect(second.headers.get("x-lyss-quota-remaining-requests")).toBe("0");
    expect((await chat(baseUrl, token.key)).status).toBe(429);
  });

  it("resets day windows at the tenant's midnight (injectable clock)", async () => {
    await app.call("PATCH", "/api/v1/settings/tenant", { token: admin.token, body: { time_zone: "Asia/Shanghai" } });
    const token = await createAccessToken(app, admin.token, admin.tenant.id, { limits: [{ metric: "requests", window: "day", max: 2 }] });
    expect((await chat(baseUrl, token.key)).status).toBe(200);
    expect((await chat(baseUrl, token.key)).status).toBe(200);
    expect((await chat(baseUrl, token.key)).status).toBe(429);
    const { resetsAt } = windowBucket("day", app.clock.now(), "Asia/Shanghai");
    app.clock.advance(Date.parse(resetsAt ?? "") - app.clock.now().getTime() + 1000);
    expect((await chat(baseUrl, token.key)).status).toBe(200);
  });

  it("releases the reservation when every upstream fails, and charges an aborted stream for what it produced", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, {
      limits: [
        { metric: "requests", window: "total", max: 10 },
        { metric: "tokens", window: "total", max: 100_000 },
      ],
    });
    sim.fail({ path: "/chat/completions" }, { status: 503, times: 1 });
    expect((await chat(baseUrl, token.key)).status).toBe(503);
    let view = await app.call("GET", `/api/v1/tokens/${token.id}`, { token: admin.token });
    expect(view.body.limits.map((limit: { used: number; reserved: number }) => [limit.used, limit.reserved])).toEqual([
      [0, 0],
      [0, 0],
    ]);

    sim.fail({ path: "/chat/completions" }, { frameDelayMs: 200, times: 1 });
    const controller = new AbortController();
    const response = await chat(baseUrl, token.key, "stream", { stream: true }, controller.signal);
    const reader = response.body?.getReader();
    for (;;) {
      const part = await reader?.read();
      if (!part || part.done || new TextDecoder().decode(part.value).includes('"content":"Hel')) break;
    }
    controller.abort();
    for (let wait = 0; wait < 100; wait++) {
      view = await app.call("GET", `/api/v1/tokens/${token.id}`, { token: admin.token });
      if (view.body.limits[0].used === 1) break;
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
    expect(view.body.limits[0]).toMatchObject({ used: 1, reserved: 0 });
    expect(view.body.limits[1].used).toBeGreaterThan(0);
    expect(view.body.limits[1].reserved).toBe(0);
  });

  it("applies tenant and channel limits too", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id);
    const channels = await app.call("GET", "/api/v1/channels", { token: admin.token });
    await app.call("PATCH", `/api/v1/channels/${channels.body.data[0].id}`, {
      token: admin.token,
      body: { limits: [{ metric: "requests", window: "total", max: 1 }] },
    });
    // The change reaches the in-memory catalogue before the next request.
    await app.services.catalog.channels(admin.tenant.id);
    expect((await chat(baseUrl, token.key)).status).toBe(200);
    let view = await app.call("GET", `/api/v1/channels/${channels.body.data[0].id}`, { token: admin.token });
    for (let wait = 0; wait < 100 && view.body.limits[0].used < 1; wait++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      view = await app.call("GET", `/api/v1/channels/${channels.body.data[0].id}`, { token: admin.token });
    }
    expect(view.body.limits[0]).toMatchObject({ max: 1, used: 1 });
    const refused = await chat(baseUrl, token.key);
    expect(refused.status).toBe(429);
  });

  it("applies member and tenant limits set through the API, and shows their use", async () => {
    const token = await createAccessToken(app, admin.token, admin.tenant.id);
    const member = await app.call("PATCH", `/api/v1/members/${admin.user.id}`, {
      token: admin.token,
      body: { limits: [{ metric: "requests", window: "month", max: 2 }] },
    });
    expect(member.status).toBe(200);
    expect(member.body.limits[0]).toMatchObject({ metric: "requests", window: "month", max: 2, used: 0, reserved: 0 });
    expect(member.body.limits[0].resets_at).toEqual(expect.any(String));
    expect(member.body.role).toBe("owner");
    const listed = await app.call("GET", "/api/v1/members", { token: admin.token });
    expect(listed.body.data.find((entry: { user_id: string }) => entry.user_id === admin.user.id).limits[0]).toMatchObject({
      max: 2,
      used: 0,
    });
    expect((await chat(baseUrl, token.key)).status).toBe(200);
    expect((await chat(baseUrl, token.key)).status).toBe(200);
    expect((await chat(baseUrl, token.key)).status).toBe(429);

    await app.call("PATCH", `/api/v1/members/${admin.user.id}`, { token: admin.token, body: { limits: [] } });
    const tenant = await app.call("PATCH", `/api/v1/tenants/${admin.tenant.id}`, {
      token: admin.token,
      body: { limits: [{ metric: "tokens", window: "total", max: 1 }] },
    });
    expect(tenant.status).toBe(200);
    expect((await chat(baseUrl, token.key)).status).toBe(429);
    const detail = await app.call("GET", `/api/v1/tenants/${admin.tenant.id}`, { token: admin.token });
    expect(detail.body.limits[0]).toMatchObject({ metric: "tokens", max: 1, used: 0, reserved: 0 });
  });
});
