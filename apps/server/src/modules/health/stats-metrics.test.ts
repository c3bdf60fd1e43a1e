import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { suiteSimulators } from "../../test/simulators.ts";
import { createAccessToken, createChannel, createTestApp, listen, setupAdmin, type TestApp } from "../../test/test-app.ts";

/** The value of the first sample of a metric whose labels include all of `labels`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const cut = line.lastIndexOf(" ");
    const series = line.slice(0, cut);
    if (Object.entries(labels).every(([label, value]) => series.includes(`${label}="${value}"`))) return Number(line.slice(cut + 1));
  }
  return undefined;
}

describe("channel statistics and gateway metrics", () => {
  const [sim, backup] = suiteSimulators();
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let client: OpenAI;
  let key: string;
  let primary: string;
  let secondary: string;

  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
    const body = (name: string, url: string, priority: number) => ({
      name,
      provider: "openai",
      base_url: `${url}/v1`,
      credentials: { api_key: `sk-${name}` },
      models: ["gpt-4o-mini"],
      priority,
    });
    primary = (await createChannel(app, admin.token, admin.tenant.id, body("primary", sim.url, 10))).id;
    secondary = (await createChannel(app, admin.token, admin.tenant.id, body("backup", backup.url, 0))).id;
    key = (await createAccessToken(app, admin.token, admin.tenant.id)).key;
    client = new OpenAI({ apiKey: key, baseURL: `${await listen(app)}/v1`, maxRetries: 0 });
  });
  afterEach(async () => app.close());

  const chat = () => client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello there" }] });
  const stream = async () => {
    const chunks = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "stream" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const _chunk of chunks) {
      // read to the end
    }
  };
  const stats = async (id: string) => (await app.call("GET", `/api/v1/channels/${id}/stats`, { token: admin.token })).body;

  it("answers a channel's percentiles, window and circuit after some requests", async () => {
    for (let index = 0; index < 4; index++) await chat();
    for (let index = 0; index < 3; index++) await stream();
    const live = await stats(primary);
    expect(live).toMatchObject({
      channel_id: primary,
      status: "enabled",
      in_flight: 0,
      requests: 7,
      failures: 0,
      success_rate: 1,
      circuit: { state: "closed", consecutive_failures: 0, opened_at: null, retry_at: null },
      window: { seconds: 60, requests: 7, failures: 0, error_rate: 0 },
      credentials_failing: false,
      last_probe: null,
    });
    expect(live.latency_ms.samples).toBe(7);
    expect(live.latency_ms.p50).toBeGreaterThanOrEqual(0);
    expect(live.latency_ms.p50).toBeLessThanOrEqual(live.latency_ms.p90);
    expect(live.latency_ms.p90).toBeLessThanOrEqual(live.latency_ms.p99);
    expect(live.ttft_ms.samples).toBe(3);
    expect(live.ttft_ms.p50).toBeGreaterThanOrEqual(0);
    expect(live.ttft_ms.p99).toBeGreaterThanOrEqual(live.ttft_ms.p50);

    const idle = await stats(secondary);
    expect(idle).toMatchObject({ requests: 0, latency_ms: { samples: 0, p50: null }, ttft_ms: { samples: 0, p99: null } });
    expect((await app.call("GET", "/api/v1/channels/00000000-0000-7000-8000-000000000000/stats", { token: admin.token })).status).toBe(404);
  });

  it("opens the circuit after five failures, routes around it, and closes it after a passing trial", async () => {
    sim.fail({ path: "/chat/completions" }, { status: 500, times: 5 });
    for (let index = 0; index < 5; index++) await chat();
    expect(sim.requestsTo("/chat/completions")).toHaveLength(5);
    const open = await stats(primary);
    expect(open.circuit).toMatchObject({ state: "open", consecutive_failures: 5, cooldown_ms: 30_000 });
    expect(Date.parse(open.circuit.retry_at) - app.clock.now().getTime()).toBe(30_000);
    expect(open.window).toMatchObject({ requests: 5, failures: 5, error_rate: 1 });

    await chat();
    expect(sim.requestsTo("/chat/completions")).toHaveLength(5);
    const health = await app.call("GET", "/v1/models/health", { headers: { authorization: `Bearer ${key}` } });
    const entry = health.body.data[0].channels.find((item: { id: string }) => item.id === primary);
    expect(entry).toMatchObject({ circuit_state: "open", healthy: false });

    app.clock.advance(30_000);
    expect((await stats(primary)).circuit.state).toBe("half_open");
    await chat();
    expect(sim.requestsTo("/chat/completions")).toHaveLength(6);
    expect((await stats(primary)).circuit).toMatchObject({ state: "closed", cooldown_ms: 0 });
  });

  it("exposes request, latency and time-to-first-token histograms, tokens, cost, rejections and channel gauges", async () => {
    await chat();
    await chat();
    await stream();
    sim.fail({ path: "/chat/completions" }, { status: 503, times: 1 });
    backup.fail({ path: "/chat/completions" }, { status: 503, times: 1 });
    await expect(chat()).rejects.toBeInstanceOf(OpenAI.APIError);
    app.infra.metrics.rejected("rate_limit", admin.tenant.id);
    app.infra.metrics.rejected("quota", admin.tenant.id);
    app.infra.metrics.rejected("quota", admin.tenant.id);

    const scraped = await app.call("GET", "/metrics");
    expect(scraped.status).toBe(200);
    const text = scraped.text;
    const call = { tenant: admin.tenant.id, model: "gpt-4o-mini", channel: primary, status: "200" };
    expect(sample(text, "lyss_gateway_requests_total", call)).toBe(3);
    expect(sample(text, "lyss_gateway_request_duration_seconds_count", call)).toBe(3);
    expect(sample(text, "lyss_gateway_request_duration_seconds_bucket", { ...call, le: "+Inf" })).toBe(3);
    expect(sample(text, "lyss_gateway_time_to_first_token_seconds_count", call)).toBe(1);
    const failed = { tenant: admin.tenant.id, model: "gpt-4o-mini", channel: "none", status: "503" };
    expect(sample(text, "lyss_gateway_requests_total", failed)).toBe(1);

    const usage = { tenant: admin.tenant.id, model: "gpt-4o-mini", channel: primary };
    expect(sample(text, "lyss_gateway_tokens_total", { ...usage, type: "prompt" })).toBeGreaterThan(0);
    expect(sample(text, "lyss_gateway_tokens_total", { ...usage, type: "completion" })).toBeGreaterThan(0);
    expect(sample(text, "lyss_gateway_cost_micro_usd_total", usage)).toBeGreaterThanOrEqual(0);
    expect(sample(text, "lyss_gateway_rejections_total", { kind: "quota", tenant: admin.tenant.id })).toBe(2);
    expect(sample(text, "lyss_gateway_rejections_total", { kind: "rate_limit", tenant: admin.tenant.id })).toBe(1);

    const gauge = { tenant: admin.tenant.id, channel: primary };
    expect(sample(text, "lyss_channel_success_rate", gauge)).toBeGreaterThan(0.5);
    expect(sample(text, "lyss_channel_success_rate", gauge)).toBeLessThan(1);
    expect(sample(text, "lyss_channel_in_flight", gauge)).toBe(0);
    expect(sample(text, "lyss_channel_circuit_state", gauge)).toBe(0);
    expect(sample(text, "lyss_channel_circuit_state", { tenant: admin.tenant.id, channel: secondary })).toBe(0);
    expect(text).toContain("# TYPE lyss_gateway_time_to_first_token_seconds histogram");
    expect(text).toContain("# TYPE lyss_channel_circuit_state gauge");
  });
});
