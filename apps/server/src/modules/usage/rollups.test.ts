import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { UsageLogsTable } from "../../db/schema.ts";
import { createTestApp, setupAdmin, type TestApp } from "../../test/test-app.ts";
import { aggregateUsage, bucketStart, ROLLUP_METRICS } from "./rollups.ts";
import { coveringSpans } from "./stats.ts";
import { hasCostColumn, rollupsFromLogs, storedRollups, usageRecord } from "./test-usage.ts";

describe("usage rollups", () => {
  let app: TestApp;
  let tenantA: string;
  let tenantB: string;
  let withCost: boolean;

  beforeEach(async () => {
    app = await createTestApp();
    const admin = await setupAdmin(app);
    tenantA = admin.tenant.id;
    tenantB = (await app.call("POST", "/api/v1/tenants", { token: admin.token, body: { name: "Beta" } })).body.id;
    withCost = await hasCostColumn(app.infra.db.kysely);
  });
  afterEach(async () => app.close());

  const record = (fields: Parameters<typeof usageRecord>[0]) => app.services.usage.record(usageRecord(fields, withCost));

  it("sums several flushes across hours, days, dimensions and errors, as an aggregate of usage_logs would", async () => {
    const times = ["2025-03-01T10:05:00.000Z", "2025-03-01T10:59:59.999Z", "2025-03-01T11:00:00.000Z", "2025-03-02T00:30:00.000Z"];
    const users = ["user-1", "user-2"];
    const models = ["gpt-4o-mini", "claude-sonnet", "gemini-flash"];
    for (let index = 0; index < 24; index += 1) {
      record({
        tenant_id: index % 5 === 0 ? tenantB : tenantA,
        created_at: times[index % times.length] ?? "",
        user_id: users[index % 2] ?? null,
        token_id: `token-${index % 3}`,
        requested_model: models[index % 3],
        channel_id: index % 4 === 0 ? null : `channel-${index % 2}`,
        status_code: index % 6 === 0 ? 502 : index % 7 === 0 ? 429 : 200,
        error: index % 6 === 0 ? "upstream failed" : null,
      });
      if (index === 7 || index === 15) await app.services.usage.flush();
    }
    await app.services.usage.flush();

    const db = app.infra.db.kysely;
    const stored = await storedRollups(db);
    expect(stored).toEqual(await rollupsFromLogs(db, withCost));

    // A few numbers counted by hand: tenant A's 10:00 hour holds indexes 1, 4, 8, 9, 12, 13, 16, 17 and 21.
    const hour = stored.find(
      (row) =>
        row.tenant_id === tenantA && row.period === "hour" && row.dimension === "tenant" && row.bucket_start === "2025-03-01T10:00:00.000Z",
    );
    expect(hour?.requests).toBe(9);
    const day = stored.filter((row) => row.period === "day" && row.dimension === "tenant");
    expect(day.map((row) => [row.tenant_id === tenantA ? "A" : "B", row.bucket_start, row.requests]).sort()).toEqual([
      ["A", "2025-03-01T00:00:00.000Z", 14],
      ["A", "2025-03-02T00:00:00.000Z", 5],
      ["B", "2025-03-01T00:00:00.000Z", 4],
      ["B", "2025-03-02T00:00:00.000Z", 1],
    ]);
    const errors = stored.filter((row) => row.period === "day" && row.dimension === "tenant").reduce((sum, row) => sum + row.errors, 0);
    expect(errors).toBe(7); // 0, 6, 12, 18 (502) and 7, 14, 21 (429)
    // Records without a channel count for the tenant, user, token and model, not under a channel.
    const channels = stored.filter((row) => row.period === "day" && row.dimension === "channel");
    expect(channels.reduce((sum, row) => sum + row.requests, 0)).toBe(18);
    expect(new Set(channels.map((row) => row.dimension_value))).toEqual(new Set(["channel-0", "channel-1"]));
  });

  it("adds a later batch to the same buckets instead of replacing them", async () => {
    const at = "2025-05-05T08:15:00.000Z";
    record({ tenant_id: tenantA, created_at: at, user_id: "u", prompt_tokens: 10, completion_tokens: 1, latency_ms: 100 });
    await app.services.usage.flush();
    record({ tenant_id: tenantA, created_at: at, user_id: "u", prompt_tokens: 20, completion_tokens: 2, latency_ms: 300 });
    record({ tenant_id: tenantA, created_at: "2025-05-05T09:00:00.000Z", user_id: "u", prompt_tokens: 1, completion_tokens: 1 });
    await app.services.usage.flush();
    const rows = (await storedRollups(app.infra.db.kysely)).filter((row) => row.dimension === "user");
    const hour = rows.find((row) => row.period === "hour" && row.bucket_start === "2025-05-05T08:00:00.000Z");
    expect(hour).toMatchObject({ requests: 2, prompt_tokens: 30, completion_tokens: 3, total_tokens: 33, latency_ms_sum: 400 });
    expect(rows.find((row) => row.period === "day")?.requests).toBe(3);
    expect(rows).toHaveLength(3);
  });

  it("rolls a failed batch back with its records and counts it once when the retry lands", async () => {
    const db = app.infra.db.kysely;
    // The rollups table is away for the first batch: its records must not land without their rollups.
    await db.schema.alterTable("usage_rollups").renameTo("usage_rollups_away").execute();
    record({ tenant_id: tenantA, created_at: "2025-06-01T12:00:00.000Z", user_id: "u" });
    await app.services.usage.flush();
    expect(await db.selectFrom("usage_logs").select("id").execute()).toEqual([]);
    await db.schema.alterTable("usage_rollups_away").renameTo("usage_rollups").execute();
    expect(await storedRollups(db)).toEqual([]);
    await app.services.usage.flush();
    const stored = await storedRollups(db);
    expect(stored.filter((row) => row.dimension === "tenant").map((row) => row.requests)).toEqual([1, 1]);
    expect(stored).toEqual(await rollupsFromLogs(db, withCost));
  });
});

describe("rollup arithmetic", () => {
  it("sums runs of alike records as it sums each record on its own", () => {
    const pick = <T>(...values: T[]) => fc.constantFrom(...values);
    const fields = {
      tenant_id: pick("t1", "t2"),
      user_id: pick("u1", "", null),
      token_id: pick("k1", null),
      requested_model: pick("m1", "m2"),
      channel_id: pick("c1", "", null),
      created_at: pick("2025-01-01T09:59:59.999Z", "2025-01-01T10:00:00.000Z", "2025-01-02T10:30:00.000Z", "2025-01-01T10:15:00+00:00"),
      status_code: pick(200, 500),
      prompt_tokens: fc.nat(50),
    };
    // Each record is the one before with one field changed, repeated a few times: runs of records that
    // share everything or differ in one field.
    const change = fc.oneof(...Object.entries(fields).map(([name, value]) => value.map((one) => ({ [name]: one }))));
    const batch = fc
      .tuple(fc.record(fields), fc.array(fc.tuple(change, fc.integer({ min: 1, max: 3 })), { maxLength: 25 }))
      .map(([first, changes]) => {
        const records: UsageLogsTable[] = [];
        let current = first;
        for (const [changed, times] of changes) {
          current = { ...current, ...changed };
          const made: UsageLogsTable = { id: "r", ...usageRecord(current) };
          for (let time = 0; time < times; time++) records.push(made);
        }
        return records;
      });
    fc.assert(
      fc.property(batch, (records) => {
        // The reference: every record aggregated alone, then the rows of the same key added up.
        const expected = new Map<string, Record<string, number>>();
        for (const row of records.flatMap((one) => aggregateUsage([one]))) {
          const key = `${row.tenant_id}|${row.period}|${row.dimension}|${row.dimension_value}|${row.bucket_start}`;
          const sum = expected.get(key) ?? Object.fromEntries(ROLLUP_METRICS.map((metric) => [metric, 0]));
          for (const metric of ROLLUP_METRICS) sum[metric] = (sum[metric] as number) + row[metric];
          expected.set(key, sum);
        }
        const actual = aggregateUsage(records);
        expect(actual).toHaveLength(expected.size);
        for (const row of actual) {
          const key = `${row.tenant_id}|${row.period}|${row.dimension}|${row.dimension_value}|${row.bucket_start}`;
          expect(Object.fromEntries(ROLLUP_METRICS.map((metric) => [metric, row[metric]]))).toEqual(expected.get(key));
        }
      }),
    );
  });

  it("aggregates a batch in memory to one row per key, and buckets by UTC hour and day", () => {
    const rows = aggregateUsage(
      [1, 2, 3].map((index) => ({
        id: String(index),
        ...usageRecord({ tenant_id: "t", created_at: "2025-01-01T23:59:00.000Z", user_id: "u" }),
      })),
    );
    // tenant, user, model (no token, no channel) × hour and day
    expect(rows).toHaveLength(6);
    expect(rows.every((row) => row.requests === 3)).toBe(true);
    expect(bucketStart("hour", new Date("2025-01-01T23:59:59.999Z"))).toBe("2025-01-01T23:00:00.000Z");
    expect(bucketStart("day", new Date("2025-01-01T23:59:59.999Z"))).toBe("2025-01-01T00:00:00.000Z");
  });

  it("covers a range with whole UTC days from daily rollups and the edges from hourly ones", () => {
    const at = (iso: string) => Date.parse(iso);
    const iso = (spans: ReturnType<typeof coveringSpans>) =>
      spans.map((span) => [span.period, new Date(span.start).toISOString(), new Date(span.end).toISOString()]);
    expect(iso(coveringSpans(at("2025-01-01T05:00:00.000Z"), at("2025-01-03T07:00:00.000Z")))).toEqual([
      ["hour", "2025-01-01T05:00:00.000Z", "2025-01-02T00:00:00.000Z"],
      ["day", "2025-01-02T00:00:00.000Z", "2025-01-03T00:00:00.000Z"],
      ["hour", "2025-01-03T00:00:00.000Z", "2025-01-03T07:00:00.000Z"],
    ]);
    expect(iso(coveringSpans(at("2025-01-01T00:00:00.000Z"), at("2025-01-03T00:00:00.000Z")))).toEqual([
      ["day", "2025-01-01T00:00:00.000Z", "2025-01-03T00:00:00.000Z"],
    ]);
    expect(iso(coveringSpans(at("2025-01-01T05:00:00.000Z"), at("2025-01-02T03:00:00.000Z")))).toEqual([
      ["hour", "2025-01-01T05:00:00.000Z", "2025-01-02T03:00:00.000Z"],
    ]);
  });
});
