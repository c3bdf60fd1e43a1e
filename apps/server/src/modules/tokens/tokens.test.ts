import { createHash } from "node:crypto";
import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import OpenAI from "openai";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createAccessToken,
  createChannel,
  createTenant,
  createTestApp,
  createUser,
  listen,
  setupAdmin,
  type TestApp,
} from "../../test/test-app.ts";
import { createTokenCache } from "./token-cache.ts";

const LIMITS = {
  name: "ci",
  limits: [
    { metric: "requests", window: "total", max: 50 },
    { metric: "cost_micro_usd", window: "month", max: 5_000_000 },
  ],
  rate_limits: { rpm: 60, tpm: 100_000 },
};

describe("access token management", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;

  const call = (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, token: string, body?: unknown) =>
    app.call(method, url, { token, tenant: admin.tenant.id, body });

  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
  });
  afterEach(async () => app.close());

  it("answers the key once, at creation, and stores only its SHA-256 hash", async () => {
    const created = await call("POST", "/api/v1/tokens", admin.token, { name: "laptop" });
    expect(created.status).toBe(201);
    const key = created.body.key as string;
    expect(key).toMatch(/^sk-[A-Za-z0-9_-]{40,}$/);
    expect(created.body).toMatchObject({ name: "laptop", user_id: admin.user.id, key_prefix: `${key.slice(0, 8)}…`, status: "enabled" });
    const id = created.body.id as string;

    const fetched = await call("GET", `/api/v1/tokens/${id}`, admin.token);
    expect(fetched.status).toBe(200);
    expect(fetched.body).not.toHaveProperty("key");
    const listed = await call("GET", "/api/v1/tokens", admin.token);
    expect(listed.body.data).toHaveLength(1);
    expect(listed.body.data[0]).not.toHaveProperty("key");
    const patched = await call("PATCH", `/api/v1/tokens/${id}`, admin.token, { name: "renamed" });
    for (const answer of [fetched, listed, patched]) expect(answer.text).not.toContain(key);

    const row = await app.infra.db.kysely.selectFrom("access_tokens").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    expect(row.key_hash).toBe(createHash("sha256").update(key).digest("hex"));
    expect(JSON.stringify(row)).not.toContain(key);
    expect(JSON.stringify(row)).not.toContain(key.slice(3));
    const audit = await app.infra.db.kysely.selectFrom("audit_logs").selectAll().where("target_id", "=", id).execute();
    expect(audit.map((entry) => entry.action).sort()).toEqual(["token.create", "token.update"]);
    expect(JSON.stringify(audit)).not.toContain(key);
  });

  it("stores limits and rate limits exactly, and a PATCH keeps what it leaves out", async () => {
    const created = await call("POST", "/api/v1/tokens", admin.token, {
      ...LIMITS,
      models: ["gpt-4o-mini"],
      channel_groups: ["b"],
      ip_allowlist: ["10.0.0.0/8"],
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject(LIMITS);
    expect((await call("GET", `/api/v1/tokens/${created.body.id}`, admin.token)).body).toMatchObject(LIMITS);

    const disabled = await call("PATCH", `/api/v1/tokens/${created.body.id}`, admin.token, { status: "disabled" });
    expect(disabled.body).toMatchObject({
      ...LIMITS,
      status: "disabled",
      models: ["gpt-4o-mini"],
      channel_groups: ["b"],
      ip_allowlist: ["10.0.0.0/8"],
    });
    const changed = await call("PATCH", `/api/v1/tokens/${created.body.id}`, admin.token, {
      limits: [{ metric: "tokens", window: "day", max: 1000 }],
      rate_limits: {},
    });
    expect(changed.body).toMatchObject({ limits: [{ metric: "tokens", window: "day", max: 1000 }], rate_limits: {}, status: "disabled" });

    const invalid = await call("POST", "/api/v1/tokens", admin.token, { name: "x", limits: [{ metric: "euros", window: "day", max: 1 }] });
    expect(invalid.status).toBe(400);
  });

  it("lets members manage only their own tokens and admins the tenant's", async () => {
    const alice = await createUser(app, admin.token, { tenantId: admin.tenant.id, role: "member" });
    const bob = await createUser(app, admin.token, { tenantId: admin.tenant.id, role: "member" });
    const aliceToken = (await call("POST", "/api/v1/tokens", alice.token, { name: "alice" })).body;
    const bobToken = (await call("POST", "/api/v1/tokens", bob.token, { name: "bob" })).body;
    expect(aliceToken.user_id).toBe(alice.id);

    const mine = await call("GET", "/api/v1/tokens", alice.token);
    expect(mine.body.data.map((token: { id: string }) => token.id)).toEqual([aliceToken.id]);
    expect((await call("GET", `/api/v1/tokens/${bobToken.id}`, alice.token)).status).toBe(404);
    expect((await call("PATCH", `/api/v1/tokens/${bobToken.id}`, alice.token, { status: "disabled" })).status).toBe(404);
    expect((await call("DELETE", `/api/v1/tokens/${bobToken.id}`, alice.token)).status).toBe(404);
    expect((await call("GET", `/api/v1/tokens/${bobToken.id}`, bob.token)).body.status).toBe("enabled");
    expect((await call("PATCH", `/api/v1/tokens/${aliceToken.id}`, alice.token, { name: "alice 2" })).body.name).toBe("alice 2");

    // A member may not create a token for someone else.
    const forOther = await call("POST", "/api/v1/tokens", alice.token, { name: "sneaky", user_id: bob.id });
    expect(forOther.status).toBe(403);

    // Admins see the tenant's tokens and create them for members, but only for members.
    const forBob = await call("POST", "/api/v1/tokens", admin.token, { name: "issued", user_id: bob.id });
    expect(forBob.status).toBe(201);
    expect(forBob.body.user_id).toBe(bob.id);
    expect((await call("GET", "/api/v1/tokens", bob.token)).body.data.map((token: { id: string }) => token.id).sort()).toEqual(
      [bobToken.id, forBob.body.id].sort(),
    );
    const outsider = await createUser(app, admin.token);
    expect((await call("POST", "/api/v1/tokens", admin.token, { name: "x", user_id: outsider.id })).status).toBe(422);
    const all = await call("GET", "/api/v1/tokens", admin.token);
    expect(all.body.data.map((token: { name: string }) => token.name).sort()).toEqual(["alice 2", "bob", "issued"]);
    expect((await call("PATCH", `/api/v1/tokens/${bobToken.id}`, admin.token, { status: "disabled" })).body.status).toBe("disabled");
    expect((await call("DELETE", `/api/v1/tokens/${aliceToken.id}`, alice.token)).body).toEqual({ ok: true });
    expect((await call("GET", "/api/v1/tokens", alice.token)).body.data).toEqual([]);
  });
});

describe("the access-token cache", () => {
  let app: TestApp;
  afterEach(async () => app.close());

  it("holds at most its bound of keys, the least recently used going first, unknown keys included", async () => {
    app = await createTestApp();
    const admin = await setupAdmin(app);
    const keys: string[] = [];
    for (let index = 0; index < 3; index++) keys.push((await createAccessToken(app, admin.token, admin.tenant.id)).key);
    const [first, second, third] = keys.map((key) => createHash("sha256").update(key).digest("hex")) as [string, string, string];
    const cache = createTokenCache(app.infra.db.kysely, app.infra.bus, { maxTokens: 2 });
    try {
      for (const hash of [first, second, third]) expect((await cache.byHash(hash))?.name).toBeDefined();
      // Gone from the database behind the cache's back (no change event): only what it still holds answers.
      await app.infra.db.kysely.deleteFrom("access_tokens").execute();
      expect(await cache.byHash(third)).toBeDefined();
      expect(await cache.byHash(second)).toBeDefined();
      expect(await cache.byHash(first)).toBeUndefined();
      // The unknown key now held pushed out the least recently used token.
      expect(await cache.byHash(second)).toBeDefined();
      expect(await cache.byHash(third)).toBeUndefined();
    } finally {
      cache.close();
    }
  });
});

describe("access tokens on the data plane", () => {
  let sim: UpstreamSimulator;
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let baseUrl: string;

  const clientOf = (key: string) => new OpenAI({ apiKey: key, baseURL: `${baseUrl}/v1`, maxRetries: 0 });
  const chat = (key: string) =>
    clientOf(key)
      .chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] })
      .then((completion) => completion.choices[0]?.message.content)
      .catch((error: unknown) => error);
  const newToken = (body: Record<string, unknown> = {}, token = admin.token, tenant = admin.tenant.id) =>
    createAccessToken(app, token, tenant, body);
  const patchToken = (id: string, body: Record<string, unknown>) =>
    app.call("PATCH", `/api/v1/tokens/${id}`, { token: admin.token, tenant: admin.tenant.id, body });
  const reply = "Hello from the simulator. You said: hi";

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => sim.close());

  beforeEach(async () => {
    sim.reset();
    app = await createTestApp();
    admin = await setupAdmin(app);
    for (const group of ["a", "b"]) {
      await createChannel(app, admin.token, admin.tenant.id, {
        name: `group ${group}`,
        provider: "openai",
        base_url: sim.url,
        credentials: { api_key: `sk-upstream-${group}` },
        models: ["gpt-4o-mini"],
        group,
      });
    }
    baseUrl = await listen(app);
  });
  afterEach(async () => app.close());

  it("keeps the digest of a key that named a token, never of a guessed one", async () => {
    const gateway = app.services.gateway;
    const token = await newToken();
    for (let index = 0; index < 20; index++) {
      expect(await chat(`sk-lyss-guessed-${index}`)).toBeInstanceOf(OpenAI.AuthenticationError);
    }
    expect(gateway.keptKeys()).toBe(0);
    expect(await chat(token.key)).toBe(reply);
    expect(await chat(token.key)).toBe(reply);
    expect(gateway.keptKeys()).toBe(1);
    // A key guessed again after a known one: still not kept, and still refused.
    expect(await chat("sk-lyss-guessed-0")).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(gateway.keptKeys()).toBe(1);
  });

  it("refuses an expired token", async () => {
    const expired = await newToken({ expires_at: new Date(Date.now() - 60_000).toISOString() });
    const error = await chat(expired.key);
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((error as Error).message).toContain("expired");

    const soon = await newToken({ expires_at: new Date(app.clock.now().getTime() + 60_000).toISOString() });
    expect(await chat(soon.key)).toBe(reply);
    app.clock.advance(61_000);
    expect(await chat(soon.key)).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(sim.requests).toHaveLength(1);
  });

  it("refuses a disabled token and takes it back at once when re-enabled", async () => {
    const token = await newToken({ status: "disabled" });
    expect(await chat(token.key)).toBeInstanceOf(OpenAI.AuthenticationError);
    await patchToken(token.id, { status: "enabled" });
    expect(await chat(token.key)).toBe(reply);
    await patchToken(token.id, { status: "disabled" });
    expect(await chat(token.key)).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("refuses a deleted token at once", async () => {
    const token = await newToken();
    expect(await chat(token.key)).toBe(reply);
    await app.call("DELETE", `/api/v1/tokens/${token.id}`, { token: admin.token, tenant: admin.tenant.id });
    expect(await chat(token.key)).toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it("checks the client address against the IP allowlist", async () => {
    const elsewhere = await newToken({ ip_allowlist: ["10.0.0.0/8"] });
    const denied = await chat(elsewhere.key);
    expect(denied).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((denied as { code?: string }).code).toBe("ip_not_allowed");
    const local = await newToken({ ip_allowlist: ["127.0.0.1/32"] });
    expect(await chat(local.key)).toBe(reply);
    await patchToken(local.id, { ip_allowlist: ["192.168.0.0/16", "10.1.2.3"] });
    expect(await chat(local.key)).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(sim.requests).toHaveLength(1);
  });

  it("routes only to the channel groups the token allows", async () => {
    const onlyB = await newToken({ channel_groups: ["b"] });
    for (let index = 0; index < 6; index++) expect(await chat(onlyB.key)).toBe(reply);
    expect(sim.requests.map((request) => request.headers.authorization)).toEqual(Array(6).fill("Bearer sk-upstream-b"));

    const none = await newToken({ channel_groups: ["c"] });
    const unavailable = await chat(none.key);
    expect((unavailable as { status?: number }).status).toBe(503);
    expect((await clientOf(none.key).models.list()).data).toEqual([]);
  });

  it("refuses the token of a disabled user, and every token of a suspended tenant", async () => {
    const member = await createUser(app, admin.token, { tenantId: admin.tenant.id, role: "member" });
    const own = await newToken({}, member.token);
    expect(await chat(own.key)).toBe(reply);
    await app.call("PATCH", `/api/v1/users/${member.id}`, { token: admin.token, body: { status: "disabled" } });
    expect(await chat(own.key)).toBeInstanceOf(OpenAI.AuthenticationError);
    await app.call("PATCH", `/api/v1/users/${member.id}`, { token: admin.token, body: { status: "active" } });
    expect(await chat(own.key)).toBe(reply);

    const other = await createTenant(app, admin.token, "Research");
    await createChannel(app, admin.token, other.id, {
      name: "research",
      provider: "openai",
      base_url: sim.url,
      credentials: { api_key: "sk-upstream-research" },
      models: ["gpt-4o-mini"],
    });
    const research = await newToken({}, admin.token, other.id);
    expect(await chat(research.key)).toBe(reply);
    await app.call("PATCH", `/api/v1/tenants/${other.id}`, { token: admin.token, body: { status: "suspended" } });
    const suspended = await chat(research.key);
    expect(suspended).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect((suspended as { code?: string }).code).toBe("tenant_suspended");
    // The first tenant is unaffected.
    expect(await chat(own.key)).toBe(reply);
  });
});
