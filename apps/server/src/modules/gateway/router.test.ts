import { getProvider, type ProviderSpec } from "@lyss/llm";
import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createAccessToken, createChannel, createTestApp, listen, setupAdmin, type TestApp } from "../../test/test-app.ts";
import type { RuntimeChannel } from "../channels/catalog.ts";
import type { RuntimeToken } from "../tokens/token-cache.ts";
import { createChannelStats } from "./channel-stats.ts";
import { candidatesFor, createRouter, matchesPattern, ruleGroup } from "./router.ts";

const openai = getProvider("openai") as ProviderSpec;

function channel(id: string, options: Partial<Omit<RuntimeChannel, "models">> & { models?: string[] } = {}): RuntimeChannel {
  return {
    id,
    tenantId: "tenant",
    name: id,
    provider: openai,
    baseUrl: "http://127.0.0.1:1",
    credentials: { api_key: `sk-${id}` },
    mapping: {},
    limits: [],
    priority: 0,
    weight: 1,
    group: "default",
    status: "enabled",
    statusReason: null,
    timeoutMs: 120_000,
    firstByteTimeoutMs: 60_000,
    extraHeaders: {},
    ...options,
    models: new Set(options.models ?? ["gpt-4o-mini"]),
  };
}

const token = (groups: string[] | null = null): RuntimeToken => ({
  id: "token",
  tenantId: "tenant",
  userId: "user",
  name: "test",
  expiresAt: null,
  models: null,
  groups: groups && new Set(groups),
  ipRanges: [],
  enabled: true,
  allowDryRun: false,
  limits: [],
  rateLimits: {},
});

/** mulberry32: a small seeded generator, so statistical checks are reproducible. */
function seeded(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const ids = (list: RuntimeChannel[]) => list.map((item) => item.id);

describe("router", () => {
  let now: number;
  let stats: ReturnType<typeof createChannelStats>;
  beforeEach(() => {
    now = 1_700_000_000_000;
    stats = createChannelStats(() => now);
  });

  it("orders tiers by priority, highest first", () => {
    const router = createRouter(stats, seeded(1));
    const list = [channel("low", { priority: -5 }), channel("mid", { priority: 0 }), channel("top1", { priority: 10 })];
    list.push(channel("top2", { priority: 10 }));
    for (let run = 0; run < 20; run++) {
      const order = ids(router.order(list, "weighted_random", "gpt-4o-mini"));
      expect(order.slice(0, 2).sort()).toEqual(["top1", "top2"]);
      expect(order.slice(2)).toEqual(["mid", "low"]);
    }
  });

  it("weighted_random picks in proportion to the weights", () => {
    const router = createRouter(stats, seeded(42));
    const list = [channel("light", { weight: 1 }), channel("heavy", { weight: 3 })];
    const firsts = { light: 0, heavy: 0 };
    for (let run = 0; run < 4000; run++) {
      const order = router.order(list, "weighted_random", "gpt-4o-mini");
      expect(order).toHaveLength(2);
      firsts[order[0]?.id as "light" | "heavy"] += 1;
    }
    expect(firsts.light / 4000).toBeCloseTo(0.25, 1);
    expect(Math.abs(firsts.light / 4000 - 0.25)).toBeLessThan(0.03);
    expect(Math.abs(firsts.heavy / 4000 - 0.75)).toBeLessThan(0.03);

    // A weight of zero is never first while another channel has weight.
    const zero = [channel("off", { weight: 0 }), channel("on", { weight: 1 })];
    for (let run = 0; run < 200; run++) expect(ids(router.order(zero, "weighted_random", "m"))).toEqual(["on", "off"]);
  });

  it("round_robin rotates through a tier, per model", () => {
    const router = createRouter(stats, seeded(3));
    const list = [channel("c"), channel("a"), channel("b")];
    const firsts = Array.from({ length: 6 }, () => router.order(list, "round_robin", "gpt-4o-mini")[0]?.id);
    expect(firsts).toEqual(["a", "b", "c", "a", "b", "c"]);
    expect(ids(router.order(list, "round_robin", "gpt-4o-mini"))).toEqual(["a", "b", "c"]);
    // Another model has its own counter.
    expect(router.order(list, "round_robin", "other")[0]?.id).toBe("a");
  });

  it("least_connections prefers the fewest requests in flight", () => {
    const router = createRouter(stats, seeded(4));
    const list = [channel("busy"), channel("some"), channel("idle")];
    for (let index = 0; index < 3; index++) stats.started("busy");
    stats.started("some");
    for (let run = 0; run < 20; run++) expect(ids(router.order(list, "least_connections", "m"))).toEqual(["idle", "some", "busy"]);
    stats.succeeded("busy", 10);
    stats.succeeded("busy", 10);
    stats.started("idle");
    stats.started("idle");
    expect(router.order(list, "least_connections", "m")[0]?.id).toBe("busy");
  });

  it("best_performance weighs latency against success rate", () => {
    const router = createRouter(stats, seeded(5));
    stats.started("fast");
    stats.succeeded("fast", 50);
    stats.started("slow");
    stats.succeeded("slow", 400);
    // The fastest of all, but failing most of the time: 40 ms / 0.107 ≈ 373.
    stats.started("flaky");
    stats.succeeded("flaky", 40);
    for (let index = 0; index < 10; index++) stats.failed("flaky", "500: boom");
    const list = [channel("slow"), channel("flaky"), channel("fast")];
    for (let run = 0; run < 20; run++) expect(ids(router.order(list, "best_performance", "m"))).toEqual(["fast", "flaky", "slow"]);
  });

  it("adaptive prefers the cheaper of two by peak latency × (in flight + 1)", () => {
    const router = createRouter(stats, seeded(6));
    stats.started("quick");
    stats.succeeded("quick", 100);
    stats.started("steady");
    stats.succeeded("steady", 300);
    for (let index = 0; index < 3; index++) stats.started("quick");
    // quick: 100 × 4 = 400; steady: 300 × 1 = 300.
    const list = [channel("quick"), channel("steady")];
    for (let run = 0; run < 50; run++) expect(ids(router.order(list, "adaptive", "m"))).toEqual(["steady", "quick"]);
    for (let index = 0; index < 3; index++) stats.succeeded("quick", 100);
    // quick: 100 × 1 = 100 now.
    for (let run = 0; run < 50; run++) expect(ids(router.order(list, "adaptive", "m"))).toEqual(["quick", "steady"]);
    // A latency spike counts at once.
    stats.started("quick");
    stats.succeeded("quick", 900);
    expect(ids(router.order(list, "adaptive", "m"))).toEqual(["steady", "quick"]);
  });

  it("puts channels cooling down or failing their credentials after every healthy one", () => {
    const router = createRouter(stats, seeded(7));
    const list = [
      channel("primary", { priority: 10 }),
      channel("secondary", { priority: 5 }),
      channel("fallback", { priority: 0 }),
      channel("last", { priority: -1 }),
    ];
    stats.started("primary");
    stats.failed("primary", "429: slow down", { retryAfterMs: 30_000 });
    stats.started("secondary");
    stats.failed("secondary", "401: bad key", { credentials: true });
    expect(stats.isCooling("primary")).toBe(true);
    expect(ids(router.order(list, "weighted_random", "m"))).toEqual(["fallback", "last", "primary", "secondary"]);

    now += 30_001;
    expect(stats.isCooling("primary")).toBe(false);
    expect(ids(router.order(list, "weighted_random", "m"))).toEqual(["primary", "fallback", "last", "secondary"]);
    stats.started("secondary");
    stats.succeeded("secondary", 20);
    expect(ids(router.order(list, "weighted_random", "m"))).toEqual(["primary", "secondary", "fallback", "last"]);
  });

  it("matches model patterns and picks the group of the first matching rule", () => {
    expect(matchesPattern("gpt-4*", "gpt-4o-mini")).toBe(true);
    expect(matchesPattern("gpt-4*", "gpt-4")).toBe(true);
    expect(matchesPattern("gpt-4*", "gpt-3.5-turbo")).toBe(false);
    expect(matchesPattern("gpt-4*", "my-gpt-4o")).toBe(false);
    expect(matchesPattern("gpt-4.1", "gpt-4x1")).toBe(false);
    expect(matchesPattern("*-mini", "o3-mini")).toBe(true);
    expect(matchesPattern("claude-(x)", "claude-(x)")).toBe(true);
    expect(matchesPattern("*", "anything")).toBe(true);

    const rules = [
      { tag: "batch", model_pattern: "gpt-4*", group: "batch-gpt4" },
      { tag: "batch", group: "batch" },
      { model_pattern: "gpt-4*", group: "premium" },
      { group: "ignored" },
    ];
    expect(ruleGroup(rules, "gpt-4o-mini", undefined)).toBe("premium");
    expect(ruleGroup(rules, "gpt-4o-mini", "batch")).toBe("batch-gpt4");
    expect(ruleGroup(rules, "claude-3", "batch")).toBe("batch");
    expect(ruleGroup(rules, "claude-3", "other")).toBeUndefined();
    expect(ruleGroup(rules, "claude-3", undefined)).toBeUndefined();
    expect(ruleGroup([], "gpt-4o", "batch")).toBeUndefined();
  });

  it("selects candidates by model, status, the token's groups and the rule's group", () => {
    const list = [
      channel("std", { group: "default" }),
      channel("prem", { group: "premium" }),
      channel("off", { group: "premium", status: "disabled" }),
      channel("auto", { group: "premium", status: "auto_disabled" }),
      channel("other", { group: "premium", models: ["claude-3"] }),
    ];
    const all = candidatesFor(list, token(), "gpt-4o-mini", undefined);
    expect(ids(all.serving)).toEqual(["std", "prem", "off", "auto"]);
    expect(ids(all.usable)).toEqual(["std", "prem"]);
    expect(ids(candidatesFor(list, token(), "gpt-4o-mini", "premium").usable)).toEqual(["prem"]);
    expect(ids(candidatesFor(list, token(["default"]), "gpt-4o-mini", undefined).usable)).toEqual(["std"]);
    const excluded = candidatesFor(list, token(["default"]), "gpt-4o-mini", "premium");
    expect(excluded.serving).toHaveLength(4);
    expect(excluded.usable).toEqual([]);
    expect(candidatesFor(list, token(), "nope", undefined).serving).toEqual([]);
  });
});

describe("routing through the server", () => {
  let sim: UpstreamSimulator;
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let key: string;
  let baseUrl: string;

  const start = async (env: Record<string, string> = {}) => {
    app = await createTestApp({ env });
    admin = await setupAdmin(app);
    key = (await createAccessToken(app, admin.token, admin.tenant.id)).key;
    baseUrl = await listen(app);
  };
  const addChannel = async (name: string, extra: Record<string, unknown> = {}) =>
    (
      await createChannel(app, admin.token, admin.tenant.id, {
        name,
        provider: "openai",
        base_url: `${sim.url}/v1`,
        credentials: { api_key: `sk-${name}` },
        models: ["gpt-4o-mini", "o3-mini"],
        ...extra,
      })
    ).id;
  const chat = (model = "gpt-4o-mini", headers: Record<string, string> = {}) =>
    new OpenAI({ apiKey: key, baseURL: `${baseUrl}/v1`, maxRetries: 0 }).chat.completions
      .create({ model, messages: [{ role: "user", content: "route me" }] }, { headers })
      .then((completion) => completion.choices[0]?.message.content)
      .catch((error: unknown) => error);
  /** The channels (by their upstream key) that the simulator's chat requests came from, in order. */
  const reached = () => sim.requestsTo("/chat/completions").map((request) => String(request.headers.authorization).slice(10));
  const ok = "Hello from the simulator. You said: route me";
  /**
   * A "slow" channel with these time limits before a "backup", the upstream hanging once: the call fails
   * over and is answered within 5 s, by way of both.
   */
  const failOverFromHang = async (limits: { first_byte_timeout_ms: number; timeout_ms: number }) => {
    await start();
    const slow = await addChannel("slow", { priority: 10, ...limits });
    const backup = await addChannel("backup");
    sim.fail({ path: "/chat/completions" }, { hang: true, times: 1 });
    const started = Date.now();
    expect(await chat()).toBe(ok);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(reached()).toEqual(["slow", "backup"]);
    return { slow, backup };
  };

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => sim.close());
  beforeEach(() => sim.reset());
  afterEach(async () => app.close());

  it("applies the tenant's routing rules by model pattern and by tag", async () => {
    await start();
    await addChannel("standard", { priority: 10 });
    await addChannel("premium", { group: "premium" });
    await addChannel("batch", { group: "batch" });
    const rules = await app.call("PATCH", "/api/v1/settings/tenant", {
      token: admin.token,
      body: { routing_rules: [{ model_pattern: "gpt-4*", group: "premium" }] },
    });
    expect(rules.status).toBe(200);
    for (let index = 0; index < 4; index++) expect(await chat()).toBe(ok);
    expect(await chat("o3-mini")).toBe(ok);
    expect(reached()).toEqual(["premium", "premium", "premium", "premium", "standard"]);

    sim.reset();
    await app.call("PATCH", "/api/v1/settings/tenant", {
      token: admin.token,
      body: {
        routing_rules: [
          { tag: "nightly", group: "batch" },
          { model_pattern: "gpt-4*", group: "premium" },
        ],
      },
    });
    expect(await chat("gpt-4o-mini", { "X-Lyss-Tag": "nightly" })).toBe(ok);
    expect(await chat("o3-mini", { "X-Lyss-Tag": "nightly" })).toBe(ok);
    expect(await chat("gpt-4o-mini", { "X-Lyss-Tag": "daytime" })).toBe(ok);
    expect(reached()).toEqual(["batch", "batch", "premium"]);
  });

  it("skips a channel that answered 429 with Retry-After while it cools down", async () => {
    await start();
    await addChannel("primary", { priority: 10 });
    await addChannel("backup");
    sim.fail({ path: "/chat/completions" }, { status: 429, headers: { "retry-after": "30" }, times: 1 });
    expect(await chat()).toBe(ok);
    expect(reached()).toEqual(["primary", "backup"]);
    expect(await chat()).toBe(ok);
    expect(reached()).toEqual(["primary", "backup", "backup"]);

    const health = await fetch(`${baseUrl}/v1/models/health`, { headers: { authorization: `Bearer ${key}` } });
    const model = ((await health.json()) as { data: { model: string; channels: { name: string }[] }[] }).data.find(
      (entry) => entry.model === "gpt-4o-mini",
    );
    expect(model?.channels.find((entry) => entry.name === "primary")).toMatchObject({ cooling_down: true, healthy: false });
    expect(model?.channels.find((entry) => entry.name === "backup")).toMatchObject({ cooling_down: false, healthy: true });

    // Once the wait is over the primary is first again.
    app.clock.advance(31_000);
    expect(await chat()).toBe(ok);
    expect(reached().at(-1)).toBe("primary");
  });

  it("stops after LYSS_GATEWAY_MAX_ATTEMPTS upstream attempts", async () => {
    await start({ LYSS_GATEWAY_MAX_ATTEMPTS: "2" });
    for (const [name, priority] of [
      ["one", 3],
      ["two", 2],
      ["three", 1],
    ] as const)
      await addChannel(name, { priority });
    sim.fail({ path: "/chat/completions" }, { status: 500 });
    const error = await chat();
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as { status: number }).status).toBe(502);
    expect(reached()).toEqual(["one", "two"]);
    await app.services.usage.flush();
    const logs = await app.call("GET", "/api/v1/usage/logs", { token: admin.token });
    expect(logs.body.data[0]).toMatchObject({ attempts: 2 });
  });

  it("fails over when the upstream hangs past the first-byte timeout, and answers 504 when nothing is left", async () => {
    const { backup } = await failOverFromHang({ first_byte_timeout_ms: 600, timeout_ms: 1000 });
    expect(sim.requestsTo("/chat/completions")[0]?.completed).toBe(false);

    await app.call("PATCH", `/api/v1/channels/${backup}`, { token: admin.token, body: { status: "disabled" } });
    sim.fail({ path: "/chat/completions" }, { hang: true, times: 1 });
    const error = await chat();
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as { status: number }).status).toBe(504);
    expect(reached()).toEqual(["slow", "backup", "slow"]);
  });

  it("ends an attempt at the channel's total time limit even before the first-byte timeout, and fails over", async () => {
    const { slow } = await failOverFromHang({ first_byte_timeout_ms: 20_000, timeout_ms: 1000 });
    // The hung request was cut at the limit, not left open.
    expect(sim.requestsTo("/chat/completions")[0]?.aborted).toBe(true);
    await app.services.usage.flush();
    const logs = await app.call("GET", "/api/v1/usage/logs", { token: admin.token });
    expect(logs.body.data[0]).toMatchObject({ attempts: 2, status_code: 200 });
    // Counted against the channel as a timeout, not as an unreachable upstream.
    const stats = await app.call("GET", `/api/v1/channels/${slow}/stats`, { token: admin.token });
    expect(stats.body.last_error).toBe("upstream timed out");
  });

  it("ends a stream that stalls after its first content at the channel's total time limit, with an error event", async () => {
    await start();
    await addChannel("slow", { timeout_ms: 1000 });
    sim.fail({ path: "/chat/completions" }, { frameDelayMs: 700, times: 1 });
    const started = Date.now();
    const stream = await new OpenAI({ apiKey: key, baseURL: `${baseUrl}/v1`, maxRetries: 0 }).chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "route me" }],
      stream: true,
    });
    const received: string[] = [];
    const ending = await (async () => {
      for await (const chunk of stream) received.push(chunk.choices[0]?.delta.content ?? "");
    })().catch((error: unknown) => error);
    // The first content came (at 0.7 s); the limit cut the rest, which would have taken seconds.
    expect(received.length).toBeGreaterThan(0);
    expect(ending).toBeInstanceOf(OpenAI.APIError);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(sim.requestsTo("/chat/completions")[0]?.aborted).toBe(true);
    await app.services.usage.flush();
    const logs = await app.call("GET", "/api/v1/usage/logs", { token: admin.token });
    expect(logs.body.data[0]).toMatchObject({ status_code: 502, error: "upstream stream broke: upstream timed out" });
  });
});
