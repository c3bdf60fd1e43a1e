import { startSimulator } from "@lyss/llm/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccessToken, createChannel, createTestApp, createUser, setupAdmin, type TestApp } from "../../test/test-app.ts";
import type { UsageRecord } from "./recorder.ts";
import { hasCostColumn, usageRecord } from "./test-usage.ts";

const START = Date.parse("2025-04-01T00:00:00.000Z");
const HOUR = 3_600_000;
const MODELS = ["gpt-4o-mini", "claude-sonnet", "gemini-flash"];
const SECRET_MODEL = "beta-only-model";

describe("usage statistics API", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let member: Awaited<ReturnType<typeof createUser>>;
  let ownerB: Awaited<ReturnType<typeof createUser>>;
  let tenantA: string;
  let tenantB: string;
  const recordsOfA: UsageRecord[] = [];

  beforeAll(async () => {
    app = await createTestApp({ env: { LYSS_LOGIN_IP_MAX_ATTEMPTS: "1000" } });
    admin = await setupAdmin(app);
    tenantA = admin.tenant.id;
    member = await createUser(app, admin.token, { tenantId: tenantA, role: "member" });
    ownerB = await createUser(app, admin.token);
    const created = await app.call("POST", "/api/v1/tenants", { token: admin.token, body: { name: "Beta", owner_email: ownerB.email } });
    tenantB = created.body.id;
    const withCost = await hasCostColumn(app.infra.db.kysely);
    // Tenant A: 40 records every 3 hours from April 1st (five days), two users, two tokens, three models.
    for (let index = 0; index < 40; index += 1) {
      const record = usageRecord(
        {
          tenant_id: tenantA,
          created_at: new Date(START + index * 3 * HOUR + 60_000).toISOString(),
          user_id: index % 2 === 0 ? member.id : admin.user.id,
          token_id: index % 2 === 0 ? "token-member" : "token-admin",
          requested_model: MODELS[index % 3],
          channel_id: `channel-${index % 2}`,
          status_code: index % 9 === 0 ? 500 : 200,
        },
        withCost,
      );
      recordsOfA.push(record);
      app.services.usage.record(record);
    }
    // Tenant B at the same times, with a model name tenant A never uses.
    for (let index = 0; index < 10; index += 1) {
      app.services.usage.record(
        usageRecord(
          {
            tenant_id: tenantB,
            created_at: new Date(START + index * 3 * HOUR).toISOString(),
            user_id: member.id,
            requested_model: SECRET_MODEL,
          },
          withCost,
        ),
      );
    }
    await app.services.usage.flush();
  });
  afterAll(async () => app?.close());

  const asAdmin = (url: string) => app.call("GET", url, { token: admin.token, tenant: tenantA });
  const asMember = (url: string) => app.call("GET", url, { token: member.token, tenant: tenantA });
  const within = (record: UsageRecord, from: number, to: number) =>
    Date.parse(record.created_at) >= from && Date.parse(record.created_at) < to;
  const sum = (records: UsageRecord[], pick: (record: UsageRecord) => number) => records.reduce((total, record) => total + pick(record), 0);

  it("answers the tenant's hourly series with every bucket, zeros included", async () => {
    const answer = await asAdmin("/api/v1/usage/timeseries?period=hour&from=2025-04-01T00:30:00.000Z&to=2025-04-02T00:00:00.000Z");
    expect(answer.status, answer.text).toBe(200);
    expect(answer.body).toMatchObject({ period: "hour", dimension: "tenant", value: tenantA, from: "2025-04-01T00:00:00.000Z" });
    expect(answer.body.buckets).toHaveLength(24);
    for (const bucket of answer.body.buckets) {
      const start = Date.parse(bucket.bucket_start);
      const expected = recordsOfA.filter((record) => within(record, start, start + HOUR));
      expect(bucket.requests).toBe(expected.length);
      expect(bucket.total_tokens).toBe(sum(expected, (record) => record.total_tokens));
      expect(bucket.errors).toBe(expected.filter((record) => record.status_code >= 400).length);
    }
    expect(answer.body.totals.requests).toBe(8);
    const busy = answer.body.buckets.find((bucket: { requests: number }) => bucket.requests > 0);
    expect(busy.avg_latency_ms).toBe(Math.round(busy.latency_ms_sum / busy.requests));
  });

  it("answers one model's daily series", async () => {
    const answer = await asAdmin(
      "/api/v1/usage/timeseries?period=day&dimension=model&value=claude-sonnet&from=2025-04-01T00:00:00.000Z&to=2025-04-06T00:00:00.000Z",
    );
    expect(answer.status, answer.text).toBe(200);
    const days = answer.body.buckets.map((bucket: { requests: number }) => bucket.requests);
    const expected = [0, 1, 2, 3, 4].map(
      (day) =>
        recordsOfA.filter(
          (record) => record.requested_model === "claude-sonnet" && within(record, START + day * 24 * HOUR, START + (day + 1) * 24 * HOUR),
        ).length,
    );
    expect(days).toEqual(expected);
    expect(answer.body.totals.cost_micro_usd).toBe(
      sum(
        recordsOfA.filter((record) => record.requested_model === "claude-sonnet"),
        (r) => r.cost_micro_usd ?? 0,
      ),
    );
  });

  it("ranks models over an unaligned range, whole days from daily rollups and the edges from hourly ones", async () => {
    const answer = await asAdmin(
      "/api/v1/usage/top?dimension=model&metric=total_tokens&from=2025-04-01T05:30:00.000Z&to=2025-04-03T07:10:00.000Z",
    );
    expect(answer.status, answer.text).toBe(200);
    const from = Date.parse("2025-04-01T05:00:00.000Z");
    const to = Date.parse("2025-04-03T08:00:00.000Z");
    expect(answer.body).toMatchObject({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
    const expected = MODELS.map((model) => {
      const records = recordsOfA.filter((record) => record.requested_model === model && within(record, from, to));
      return { value: model, requests: records.length, total_tokens: sum(records, (record) => record.total_tokens) };
    }).sort((left, right) => right.total_tokens - left.total_tokens);
    expect(answer.body.data.map((row: { value: string; requests: number; total_tokens: number }) => ({ ...row }))).toMatchObject(expected);
    expect(answer.body.data.map((row: { value: string }) => row.value)).not.toContain(SECRET_MODEL);

    const limited = await asAdmin(
      "/api/v1/usage/top?dimension=user&metric=requests&limit=1&from=2025-04-01T00:00:00.000Z&to=2025-04-06T00:00:00.000Z",
    );
    expect(limited.body.data).toHaveLength(1);
    expect(limited.body.data[0]).toMatchObject({ requests: 20 });
    const byCost = await asAdmin(
      "/api/v1/usage/top?dimension=token&metric=cost_micro_usd&from=2025-04-01T00:00:00.000Z&to=2025-04-06T00:00:00.000Z",
    );
    const costs = byCost.body.data.map((row: { cost_micro_usd: number }) => row.cost_micro_usd);
    expect(costs).toEqual([...costs].sort((left, right) => right - left));
    expect(byCost.body.data.map((row: { value: string }) => row.value).sort()).toEqual(["token-admin", "token-member"]);
  });

  it("shows members their own usage only", async () => {
    const own = await asMember("/api/v1/usage/timeseries?period=day&from=2025-04-01T00:00:00.000Z&to=2025-04-06T00:00:00.000Z");
    expect(own.status, own.text).toBe(200);
    expect(own.body).toMatchObject({ dimension: "user", value: member.id });
    expect(own.body.totals.requests).toBe(20);
    const explicit = await asMember(`/api/v1/usage/timeseries?dimension=user&value=${member.id}`);
    expect(explicit.status).toBe(200);
    for (const url of [
      "/api/v1/usage/timeseries?dimension=tenant",
      `/api/v1/usage/timeseries?dimension=user&value=${admin.user.id}`,
      "/api/v1/usage/timeseries?dimension=model&value=gpt-4o-mini",
      "/api/v1/usage/top?dimension=model",
      "/api/v1/usage/top",
    ]) {
      const refused = await asMember(url);
      expect(refused.status, url).toBe(403);
      expect(refused.body.error.code).toBe("forbidden");
    }
    const top = await asMember("/api/v1/usage/top?dimension=user&from=2025-04-01T00:00:00.000Z&to=2025-04-06T00:00:00.000Z");
    expect(top.body.data).toEqual([expect.objectContaining({ value: member.id, requests: 20 })]);
  });

  it("never mixes tenants", async () => {
    const ofB = await app.call("GET", "/api/v1/usage/top?dimension=model&from=2025-04-01T00:00:00.000Z&to=2025-04-06T00:00:00.000Z", {
      token: ownerB.token,
      tenant: tenantB,
    });
    expect(ofB.body.data).toEqual([expect.objectContaining({ value: SECRET_MODEL, requests: 10 })]);
    // The member of A is a user id in B's records too: A's answers still count A's records only.
    const ofA = await asAdmin(
      `/api/v1/usage/timeseries?period=day&dimension=user&value=${member.id}&from=2025-04-01T00:00:00.000Z&to=2025-04-06T00:00:00.000Z`,
    );
    expect(ofA.body.totals.requests).toBe(20);
    for (const url of ["/api/v1/usage/timeseries", "/api/v1/usage/top?dimension=user"]) {
      const refused = await app.call("GET", url, { token: ownerB.token, tenant: tenantA });
      expect([403, 404]).toContain(refused.status);
      const wrongTenant = await app.call("GET", url, { token: member.token, tenant: tenantB });
      expect([403, 404]).toContain(wrongTenant.status);
    }
  });

  it("refuses ranges that are empty, reversed or too long, and a missing value", async () => {
    for (const query of [
      "from=2025-04-02T00:00:00.000Z&to=2025-04-01T00:00:00.000Z",
      "period=hour&from=2025-01-01T00:00:00.000Z&to=2025-06-01T00:00:00.000Z",
      "dimension=model",
      "period=week",
      "from=yesterday",
    ]) {
      const answer = await asAdmin(`/api/v1/usage/timeseries?${query}`);
      expect(answer.status, query).toBe(400);
    }
    expect((await asAdmin("/api/v1/usage/top?limit=0")).status).toBe(400);
    expect((await asAdmin("/api/v1/usage/top?metric=errors")).status).toBe(400);
  });

  it("documents both routes in the OpenAPI document", async () => {
    const document = await app.call("GET", "/openapi.json");
    expect(Object.keys(document.body.paths)).toEqual(expect.arrayContaining(["/api/v1/usage/timeseries", "/api/v1/usage/top"]));
  });
});

describe("usage statistics of a real gateway call", () => {
  it("counts a chat completion through the simulator in the tenant's series and the model ranking", async () => {
    const sim = await startSimulator();
    const app = await createTestApp();
    try {
      const admin = await setupAdmin(app);
      await createChannel(app, admin.token, admin.tenant.id, {
        name: "primary",
        provider: "openai",
        base_url: `${sim.url}/v1`,
        credentials: { api_key: "sk-upstream" },
        models: ["gpt-4o-mini"],
      });
      const { key } = await createAccessToken(app, admin.token, admin.tenant.id);
      const completion = await app.call("POST", "/v1/chat/completions", {
        headers: { authorization: `Bearer ${key}` },
        body: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] },
      });
      expect(completion.status, completion.text).toBe(200);
      await app.services.usage.flush();
      const series = await app.call("GET", "/api/v1/usage/timeseries", { token: admin.token });
      expect(series.body.totals).toMatchObject({ requests: 1, errors: 0, total_tokens: completion.body.usage.total_tokens });
      const top = await app.call("GET", "/api/v1/usage/top?dimension=model", { token: admin.token });
      expect(top.body.data).toEqual([expect.objectContaining({ value: "gpt-4o-mini", requests: 1 })]);
    } finally {
      await app.close();
      await sim.close();
    }
  });
});
