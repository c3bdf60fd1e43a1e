import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { deriveKey } from "../../infra/crypto.ts";
import { createChannel, createTestApp, createUser, setupAdmin, type TestApp } from "../../test/test-app.ts";
import { openCredentials } from "./credentials.ts";

const SECRET = "sk-live-SECRET-abcdef123456";
const MASKED = "sk-l…3456";
const NEW_SECRET = "sk-live-ROTATED-zyxwvu987654";

const PROVIDER_IDS = [
  "openai",
  "azure",
  "anthropic",
  "gemini",
  "ollama",
  "deepseek",
  "qwen",
  "zhipu",
  "moonshot",
  "ernie",
  "openrouter",
  "openai-compatible",
];

describe("providers and channels", () => {
  let sim: UpstreamSimulator;
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  /** Every answer the API gave in a test, to prove the raw secret is in none of them. */
  let answers: string[];

  const call = async (method: "GET" | "POST" | "PATCH" | "DELETE", url: string, body?: unknown, token = admin.token) => {
    const response = await app.call(method, url, { token, tenant: admin.tenant.id, body });
    answers.push(response.text);
    return response;
  };

  const channelBody = (extra: Record<string, unknown> = {}) => ({
    name: "upstream",
    provider: "openai",
    base_url: `${sim.url}/v1`,
    credentials: { api_key: SECRET },
    models: ["gpt-4o-mini"],
    ...extra,
  });

  /** The Authorization header the upstream saw on the channel's latest test request. */
  const upstreamAuthorization = async (id: string) => {
    const before = sim.requestsTo("/chat/completions").length;
    const result = await call("POST", `/api/v1/channels/${id}/test`);
    expect(result.body, result.text).toMatchObject({ ok: true });
    const requests = sim.requestsTo("/chat/completions");
    expect(requests).toHaveLength(before + 1);
    return requests.at(-1)?.headers.authorization;
  };

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => sim.close());

  beforeEach(async () => {
    sim.reset();
    answers = [];
    app = await createTestApp();
    admin = await setupAdmin(app);
  });
  afterEach(async () => {
    for (const text of answers) expect(text).not.toContain(SECRET);
    await app.close();
  });

  it("lists every provider with its localized credential form", async () => {
    const response = await call("GET", "/api/v1/providers");
    expect(response.status).toBe(200);
    const providers = response.body.data as {
      id: string;
      names: Record<string, string>;
      credential_schema: Record<string, unknown>[];
    }[];
    expect(providers.map((provider) => provider.id).sort()).toEqual([...PROVIDER_IDS].sort());
    for (const provider of providers) {
      expect(provider.names.en).toEqual(expect.any(String));
      expect(provider.names["zh-CN"]).toEqual(expect.any(String));
      expect(provider.credential_schema.length).toBeGreaterThan(0);
      for (const field of provider.credential_schema) {
        expect(field).toMatchObject({
          name: expect.any(String),
          type: expect.stringMatching(/^(secret|text|select|number)$/),
          required: expect.any(Boolean),
          label: { en: expect.any(String), "zh-CN": expect.any(String) },
        });
        expect(field).toHaveProperty("default");
      }
    }
    const openai = providers.find((provider) => provider.id === "openai");
    expect(openai?.credential_schema[0]).toMatchObject({ name: "api_key", type: "secret", required: true, default: null });
    const anthropic = providers.find((provider) => provider.id === "anthropic");
    expect(anthropic?.credential_schema.find((field) => field.name === "anthropic_version")).toMatchObject({
      required: false,
      default: "2023-06-01",
    });
  });

  it("creates a channel with masked credentials, sealed at rest and masked in the audit log", async () => {
    const created = await call("POST", "/api/v1/channels", channelBody());
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "upstream", provider: "openai", base_url: sim.url, credentials: { api_key: MASKED } });
    const id = created.body.id as string;

    const listed = await call("GET", "/api/v1/channels");
    expect(listed.body.data).toHaveLength(1);
    expect(listed.body.data[0].credentials).toEqual({ api_key: MASKED });
    expect((await call("GET", `/api/v1/channels/${id}`)).body.credentials).toEqual({ api_key: MASKED });

    const row = await app.infra.db.kysely.selectFrom("channels").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(SECRET);
    expect(JSON.stringify(row)).not.toContain(Buffer.from(SECRET).toString("base64"));
    expect(JSON.parse(row.credentials_masked)).toEqual({ api_key: MASKED });
    // The sealed column opens with the derived key, and only for this channel.
    const key = deriveKey(app.infra.masterKey, "channel-credentials");
    expect(openCredentials(key, id, row.credentials_sealed)).toEqual({ api_key: SECRET });
    expect(() => openCredentials(key, "another-channel", row.credentials_sealed)).toThrow();

    const audit = await app.infra.db.kysely.selectFrom("audit_logs").selectAll().where("target_id", "=", id).execute();
    expect(audit.map((entry) => entry.action)).toEqual(["channel.create"]);
    expect(JSON.stringify(audit)).not.toContain(SECRET);
  });

  it("validates credentials against the provider's schema and the provider itself", async () => {
    const missing = await call("POST", "/api/v1/channels", channelBody({ credentials: {} }));
    expect(missing.status).toBe(400);
    expect(missing.body.error.code).toBe("validation_failed");
    expect(missing.body.error.message).toContain("body.credentials.api_key");
    expect(missing.body.error.details.fields).toContainEqual({ field: "body.credentials.api_key", message: "required" });

    const unknown = await call("POST", "/api/v1/channels", channelBody({ credentials: { api_key: SECRET, region: "eu" } }));
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.details.fields.map((field: { field: string }) => field.field)).toContain("body.credentials.region");

    const provider = await call("POST", "/api/v1/channels", channelBody({ provider: "nope" }));
    expect(provider.status).toBe(400);
    expect(provider.body.error.details.fields[0].field).toBe("body.provider");

    // Optional fields take their defaults; a keyless local provider needs none.
    const anthropic = await call("POST", "/api/v1/channels", channelBody({ provider: "anthropic" }));
    expect(anthropic.status).toBe(201);
    expect(anthropic.body.credentials).toEqual({ api_key: MASKED, anthropic_version: "2023-06-01" });
    expect((await call("POST", "/api/v1/channels", channelBody({ provider: "ollama", credentials: {} }))).status).toBe(201);
    expect((await call("GET", "/api/v1/channels")).body.data).toHaveLength(2);
  });

  it("normalizes the base URL: a trailing /v1 or slash is dropped", async () => {
    for (const [input, stored] of [
      ["https://llm.example.com/v1", "https://llm.example.com"],
      ["https://llm.example.com/v1/", "https://llm.example.com"],
      ["https://llm.example.com/", "https://llm.example.com"],
      ["https://llm.example.com/api/paas/v4", "https://llm.example.com/api/paas"],
    ]) {
      const created = await call("POST", "/api/v1/channels", channelBody({ base_url: input }));
      expect(created.body.base_url).toBe(stored);
    }
    const id = (await call("GET", "/api/v1/channels")).body.data[0].id;
    const patched = await call("PATCH", `/api/v1/channels/${id}`, { base_url: `${sim.url}/v1/` });
    expect(patched.body.base_url).toBe(sim.url);
  });

  it("keeps the stored secret when the masked value is sent back, replaces it with a new one, and deletes", async () => {
    const { id } = await createChannel(app, admin.token, admin.tenant.id, channelBody({ priority: 7 }));
    expect(await upstreamAuthorization(id)).toBe(`Bearer ${SECRET}`);

    const renamed = await call("PATCH", `/api/v1/channels/${id}`, { name: "renamed", credentials: { api_key: MASKED } });
    expect(renamed.status).toBe(200);
    // Fields the PATCH leaves out keep their values.
    expect(renamed.body).toMatchObject({ name: "renamed", credentials: { api_key: MASKED }, models: ["gpt-4o-mini"], priority: 7 });
    expect(await upstreamAuthorization(id)).toBe(`Bearer ${SECRET}`);

    const rotated = await call("PATCH", `/api/v1/channels/${id}`, { credentials: { api_key: NEW_SECRET } });
    expect(rotated.body.credentials).toEqual({ api_key: "sk-l…7654" });
    expect(JSON.stringify(rotated.body)).not.toContain(NEW_SECRET);
    expect(await upstreamAuthorization(id)).toBe(`Bearer ${NEW_SECRET}`);

    expect((await call("DELETE", `/api/v1/channels/${id}`)).body).toEqual({ ok: true });
    expect((await call("GET", `/api/v1/channels/${id}`)).status).toBe(404);
    expect((await call("DELETE", `/api/v1/channels/${id}`)).status).toBe(404);
    expect((await call("GET", "/api/v1/channels")).body.data).toEqual([]);

    const audit = await call("GET", `/api/v1/audit-logs?target_id=${id}`);
    const entries = audit.body.data as {
      action: string;
      before: { credentials: unknown } | null;
      after: { credentials: unknown } | null;
    }[];
    expect(entries.map((entry) => entry.action)).toEqual(["channel.delete", "channel.update", "channel.update", "channel.create"]);
    const create = entries.find((entry) => entry.action === "channel.create");
    const remove = entries.find((entry) => entry.action === "channel.delete");
    expect(create?.before).toBeNull();
    expect(create?.after?.credentials).toBe("***");
    expect(remove?.before?.credentials).toBe("***");
    for (const entry of entries.filter((item) => item.action === "channel.update")) {
      expect(entry.before?.credentials).toBe("***");
      expect(entry.after?.credentials).toBe("***");
    }
    const rows = await app.infra.db.kysely.selectFrom("audit_logs").selectAll().where("target_id", "=", id).execute();
    expect(rows).toHaveLength(4);
    expect(JSON.stringify(rows)).not.toContain(SECRET);
    expect(JSON.stringify(rows)).not.toContain(NEW_SECRET);
  });

  it("tests a channel with a real request: latency when it works, the upstream's error when it does not", async () => {
    const { id } = await createChannel(app, admin.token, admin.tenant.id, channelBody({ model_mapping: { smart: "gpt-4o" } }));
    const ok = await call("POST", `/api/v1/channels/${id}/test`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, model: "gpt-4o-mini", status: 200, error: null });
    expect(ok.body.latency_ms).toBeGreaterThanOrEqual(0);

    const mapped = await call("POST", `/api/v1/channels/${id}/test`, { model: "smart" });
    expect(mapped.body).toMatchObject({ ok: true, model: "smart" });
    expect((sim.requestsTo("/chat/completions").at(-1)?.body as { model?: string } | undefined)?.model).toBe("gpt-4o");

    sim.fail({ path: "/chat/completions" }, { status: 401, message: "Incorrect API key provided: sk-l…3456", times: 1 });
    const refused = await call("POST", `/api/v1/channels/${id}/test`);
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({ ok: false, status: 401, error: "Incorrect API key provided: sk-l…3456" });
    expect(refused.body.latency_ms).toBeGreaterThanOrEqual(0);

    const unreachable = await createChannel(app, admin.token, admin.tenant.id, channelBody({ base_url: "http://127.0.0.1:1" }));
    const down = await call("POST", `/api/v1/channels/${unreachable.id}/test`);
    expect(down.body).toMatchObject({ ok: false, status: null });
    expect(down.body.error).toEqual(expect.any(String));
  });

  it("syncs the model list from the upstream", async () => {
    const { id } = await createChannel(app, admin.token, admin.tenant.id, channelBody({ models: ["legacy-model"] }));
    const synced = await call("POST", `/api/v1/channels/${id}/sync-models`);
    expect(synced.status).toBe(200);
    const listed = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"];
    expect(synced.body.models).toEqual(listed);
    expect(synced.body.channel.models).toEqual(listed);
    expect((await call("GET", `/api/v1/channels/${id}`)).body.models).toEqual(listed);
    const upstream = sim.requestsTo("/models").at(-1);
    expect(upstream?.path).toBe("/v1/models");
    expect(upstream?.headers.authorization).toBe(`Bearer ${SECRET}`);

    sim.fail({ path: "/models" }, { status: 500, message: "listing is down", times: 1 });
    const failed = await call("POST", `/api/v1/channels/${id}/sync-models`);
    expect(failed.status).toBe(422);
    expect(failed.body.error.message).toContain("listing is down");
    expect((await call("GET", `/api/v1/channels/${id}`)).body.models).toEqual(listed);
  });

  it("refuses members: channels are for tenant admins", async () => {
    const { id } = await createChannel(app, admin.token, admin.tenant.id, channelBody());
    const member = await createUser(app, admin.token, { tenantId: admin.tenant.id, role: "member" });
    expect((await call("GET", "/api/v1/providers", undefined, member.token)).status).toBe(200);
    expect((await call("GET", "/api/v1/channels", undefined, member.token)).status).toBe(403);
    expect((await call("POST", "/api/v1/channels", channelBody(), member.token)).status).toBe(403);
    expect((await call("GET", `/api/v1/channels/${id}`, undefined, member.token)).status).toBe(403);
    expect((await call("PATCH", `/api/v1/channels/${id}`, { name: "x" }, member.token)).status).toBe(403);
    expect((await call("POST", `/api/v1/channels/${id}/test`, undefined, member.token)).status).toBe(403);
    expect((await call("POST", `/api/v1/channels/${id}/sync-models`, undefined, member.token)).status).toBe(403);
    expect((await call("DELETE", `/api/v1/channels/${id}`, undefined, member.token)).status).toBe(403);
    expect((await call("GET", `/api/v1/channels/${id}`)).body.name).toBe("upstream");
  });
});
