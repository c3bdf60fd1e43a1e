import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../../test/eventually.ts";
import { suiteSimulators } from "../../test/simulators.ts";
import {
  ADMIN,
  createAccessToken,
  createChannel,
  createTenant,
  createTestApp,
  freshStorage,
  listen,
  setupAdmin,
  TEST_REDIS_URL,
  type TestApp,
} from "../../test/test-app.ts";

const channelBody = (name: string, url: string, extra: Record<string, unknown> = {}) => ({
  name,
  provider: "openai",
  base_url: `${url}/v1`,
  credentials: { api_key: `sk-${name}` },
  models: ["gpt-4o-mini"],
  ...extra,
});

describe("auto-disable and scheduled probes", () => {
  const [sim, backup] = suiteSimulators();
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let client: OpenAI;
  let primary: string;

  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
    primary = (await createChannel(app, admin.token, admin.tenant.id, channelBody("primary", sim.url, { priority: 10 }))).id;
    await createChannel(app, admin.token, admin.tenant.id, channelBody("backup", backup.url));
    const key = (await createAccessToken(app, admin.token, admin.tenant.id)).key;
    client = new OpenAI({ apiKey: key, baseURL: `${await listen(app)}/v1`, maxRetries: 0 });
  });
  afterEach(async () => app.close());

  const chat = () => client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
  const channel = async (id = primary) => (await app.call("GET", `/api/v1/channels/${id}`, { token: admin.token })).body;
  const audit = async (action: string) =>
    (await app.call("GET", `/api/v1/audit-logs?action=${action}&target_id=${primary}`, { token: admin.token })).body.data;

  it("auto-disables a channel whose upstream answers 401, audits it, and sends it no more traffic", async () => {
    sim.fail({ path: "/chat/completions" }, { status: 401, message: "invalid key" });
    await chat();
    expect(backup.requestsTo("/chat/completions")).toHaveLength(1);

    const disabled = await eventually(async () => {
      const body = await channel();
      return body.status === "auto_disabled" ? body : undefined;
    });
    expect(disabled.status_reason).toContain("401");
    expect(disabled.status_reason).toContain("invalid key");
    const entries = await audit("channel.auto_disable");
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor_email: "system", actor_user_id: null, target_type: "channel" });
    expect(entries[0].before.status).toBe("enabled");
    expect(entries[0].after).toMatchObject({ status: "auto_disabled", status_reason: disabled.status_reason });

    for (let index = 0; index < 3; index++) await chat();
    expect(sim.requestsTo("/chat/completions")).toHaveLength(1);
    expect(backup.requestsTo("/chat/completions")).toHaveLength(4);

    const key = (await createAccessToken(app, admin.token, admin.tenant.id)).key;
    const health = await app.call("GET", "/v1/models/health", { headers: { authorization: `Bearer ${key}` } });
    const entry = health.body.data[0].channels.find((item: { id: string }) => item.id === primary);
    expect(entry).toMatchObject({ status: "auto_disabled", healthy: false, credentials_failing: true, circuit_state: "closed" });
  });

  it("re-enables an auto-disabled channel when a probe passes again, and audits it", async () => {
    sim.fail({ path: "/chat/completions" }, { status: 403, message: "key revoked" });
    await chat();
    await eventually(async () => (await channel()).status === "auto_disabled");

    // Still refused: the probe keeps it disabled.
    expect(await app.services.health.probes.runOnce()).toContain(primary);
    expect((await channel()).status).toBe("auto_disabled");
    expect(sim.requestsTo("/chat/completions")).toHaveLength(2);

    // The upstream answers again, but the tenant's interval (300 s by default) has not passed.
    sim.reset();
    expect(await app.services.health.probes.runOnce()).toEqual([]);
    app.clock.advance(300_000);
    expect(await app.services.health.probes.runOnce()).toContain(primary);
    const enabled = await channel();
    expect(enabled).toMatchObject({ status: "enabled", status_reason: null });
    const entries = await audit("channel.auto_enable");
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor_email: "system", before: { status: "auto_disabled" }, after: { status: "enabled" } });

    const stats = (await app.call("GET", `/api/v1/channels/${primary}/stats`, { token: admin.token })).body;
    expect(stats.last_probe).toMatchObject({ ok: true, status: 200, error: null });
    expect(stats.credentials_failing).toBe(false);

    // Traffic comes back once the catalogue has reloaded.
    await eventually(async () => {
      await chat();
      return sim.requestsTo("/chat/completions").length > 1;
    });
  });

  it("probes each tenant's enabled and auto-disabled channels when the tenant's interval has passed", async () => {
    const patched = await app.call("PATCH", "/api/v1/settings/tenant", {
      token: admin.token,
      body: { health_probe_interval_seconds: 60 },
    });
    expect(patched.status).toBe(200);
    const backupId = (await app.call("GET", "/api/v1/channels", { token: admin.token })).body.data.find(
      (item: { name: string }) => item.name === "backup",
    ).id;
    const off = (await createChannel(app, admin.token, admin.tenant.id, channelBody("off", sim.url, { status: "disabled" }))).id;
    const other = await createTenant(app, admin.token, "Other");
    const otherChannel = (await createChannel(app, admin.token, other.id, channelBody("other", sim.url))).id;
    const run = async () => (await app.services.health.probes.runOnce()).sort();

    expect(await run()).toEqual([primary, backupId, otherChannel].sort());
    expect(await run()).toEqual([]);
    app.clock.advance(59_000);
    expect(await run()).toEqual([]);
    app.clock.advance(2_000);
    expect(await run()).toEqual([primary, backupId].sort());
    app.clock.advance(240_000);
    expect(await run()).toEqual([primary, backupId, otherChannel].sort());
    expect(await run()).not.toContain(off);
    // Each probe is the channel test's minimal request.
    const probes = sim.requestsTo("/chat/completions");
    expect(probes).toHaveLength(5);
    expect(probes[0]?.body).toMatchObject({ messages: [{ role: "user", content: "ping" }], max_tokens: 8 });
  });

  it("runs on its own timer once started, and stops when the app closes", async () => {
    app.services.health.probes.start(25);
    await eventually(() => sim.requestsTo("/chat/completions").length === 1);
    await eventually(() => app.services.stats.get(primary).lastProbe?.ok === true);
    // The interval (300 s on the test clock) has not passed: no second probe.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sim.requestsTo("/chat/completions")).toHaveLength(1);
  });

  it("feeds probe failures into the breaker", async () => {
    sim.fail({ path: "/chat/completions" }, { status: 500 });
    for (let round = 0; round < 5; round++) {
      if (round > 0) app.clock.advance(300_000);
      expect(await app.services.health.probes.runOnce()).toContain(primary);
    }
    // Twenty minutes on: the access token has expired.
    const token = (await app.call("POST", "/api/v1/auth/login", { body: { email: ADMIN.email, password: ADMIN.password } })).body
      .access_token;
    const stats = (await app.call("GET", `/api/v1/channels/${primary}/stats`, { token })).body;
    expect(stats.last_probe).toMatchObject({ ok: false, status: 500 });
    expect(stats.circuit).toMatchObject({ state: "open", consecutive_failures: 5, cooldown_ms: 30_000 });
    // A server error is no reason to disable the channel: the breaker handles it.
    expect((await app.call("GET", `/api/v1/channels/${primary}`, { token })).body.status).toBe("enabled");
    await chat();
    expect(sim.requestsTo("/chat/completions")).toHaveLength(5);
  });
});

describe.skipIf(!TEST_REDIS_URL)("probes with two instances sharing one database and Redis", () => {
  let sim: UpstreamSimulator;
  let storage: Awaited<ReturnType<typeof freshStorage>>;
  let first: TestApp;
  let second: TestApp;

  beforeAll(async () => {
    sim = await startSimulator();
    storage = await freshStorage();
    first = await createTestApp({ storage });
    second = await createTestApp({ storage });
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await storage?.drop();
    await sim?.close();
  });

  it("probes each channel once per interval across instances, and both see the result", async () => {
    const admin = await setupAdmin(first);
    // The same time on both instances, as on real machines.
    second.clock.advance(first.clock.now().getTime() - second.clock.now().getTime());
    const id = (await createChannel(first, admin.token, admin.tenant.id, channelBody("shared", sim.url))).id;
    const both = async () => [...(await first.services.health.probes.runOnce()), ...(await second.services.health.probes.runOnce())];

    const [a, b] = await Promise.all([first.services.health.probes.runOnce(), second.services.health.probes.runOnce()]);
    expect([...a, ...b]).toEqual([id]);
    expect(await both()).toEqual([]);
    expect(sim.requestsTo("/chat/completions")).toHaveLength(1);
    for (const instance of [first, second]) {
      await eventually(() => instance.services.stats.get(id).lastProbe?.ok === true);
    }

    first.clock.advance(300_000);
    second.clock.advance(300_000);
    const [c, d] = await Promise.all([first.services.health.probes.runOnce(), second.services.health.probes.runOnce()]);
    expect([...c, ...d]).toEqual([id]);
    expect(sim.requestsTo("/chat/completions")).toHaveLength(2);
  });
});
