import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestApp, setupAdmin, type TestApp } from "../../test/test-app.ts";
import { createUsageRetention } from "./retention.ts";
import { hasCostColumn, rollupsFromLogs, storedRollups, usageRecord } from "./test-usage.ts";

const DAY = 86_400_000;

describe("usage retention", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let withCost: boolean;

  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
    withCost = await hasCostColumn(app.infra.db.kysely);
  });
  afterEach(async () => app.close());

  /** Records `ageDays` days before the app's clock, one per entry. */
  async function recordAged(ages: number[]) {
    const now = app.clock.now().getTime();
    for (const age of ages) {
      app.services.usage.record(
        usageRecord({ tenant_id: admin.tenant.id, user_id: admin.user.id, created_at: new Date(now - age * DAY).toISOString() }, withCost),
      );
    }
    await app.services.usage.flush();
  }

  const ages = async () => {
    const now = app.clock.now().getTime();
    const rows = await app.infra.db.kysely.selectFrom("usage_logs").select("created_at").execute();
    return rows.map((row) => Math.round((now - Date.parse(row.created_at)) / DAY)).sort((left, right) => left - right);
  };

  it("deletes raw records older than 90 days by default and keeps every rollup", async () => {
    await recordAged([200, 120, 91, 89, 30, 0]);
    const db = app.infra.db.kysely;
    const rollupsBefore = await storedRollups(db);
    expect(rollupsBefore).toEqual(await rollupsFromLogs(db, withCost));

    const run = await app.services.usageRetention.runOnce();
    expect(run).toMatchObject({ deleted: 3, more: false });
    expect(run.cutoff).toBe(new Date(app.clock.now().getTime() - 90 * DAY).toISOString());
    expect(await ages()).toEqual([0, 30, 89]);
    expect(await storedRollups(db)).toEqual(rollupsBefore);

    // The statistics still cover the deleted records.
    const year = await app.call(
      "GET",
      `/api/v1/usage/timeseries?period=day&from=${new Date(app.clock.now().getTime() - 300 * DAY).toISOString()}`,
      {
        token: admin.token,
      },
    );
    expect(year.status, year.text).toBe(200);
    expect(year.body.totals.requests).toBe(6);
    expect(await app.services.usageRetention.runOnce()).toMatchObject({ deleted: 0 });
  });

  it("follows the platform setting, and keeps everything at 0", async () => {
    await recordAged([40, 20, 10]);
    const changed = await app.call("PATCH", "/api/v1/settings/platform", { token: admin.token, body: { usage_retention_days: 15 } });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.body.values.usage_retention_days).toBe(15);
    expect((await app.services.usageRetention.runOnce()).deleted).toBe(2);
    expect(await ages()).toEqual([10]);

    const refused = await app.call("PATCH", "/api/v1/settings/platform", { token: admin.token, body: { usage_retention_days: -1 } });
    expect(refused.status).toBe(400);
    // A tenant's settings do not carry the platform-wide retention.
    const tenant = await app.call("GET", "/api/v1/settings/tenant", { token: admin.token });
    expect(tenant.body.values).not.toHaveProperty("usage_retention_days");

    await app.call("PATCH", "/api/v1/settings/platform", { token: admin.token, body: { usage_retention_days: 0 } });
    app.clock.advance(1000 * DAY);
    expect(await app.services.usageRetention.runOnce()).toEqual({ cutoff: null, deleted: 0, more: false });
    expect(await ages()).toHaveLength(1);
  });

  it("deletes in bounded batches and leaves the rest for the next run", async () => {
    await recordAged([100, 101, 102, 103, 104, 1]);
    const retention = createUsageRetention({
      db: app.infra.db.kysely,
      settings: app.services.settings,
      clock: app.clock,
      logger: app.infra.logger,
      batchSize: 2,
      maxBatches: 2,
    });
    expect(await retention.runOnce()).toMatchObject({ deleted: 4, more: true });
    // A second call while one runs joins it rather than deleting twice.
    const [first, second] = await Promise.all([retention.runOnce(), retention.runOnce()]);
    expect(first).toBe(second);
    expect(first).toMatchObject({ deleted: 1, more: false });
    expect(await ages()).toEqual([1]);
    await retention.stop();
  });

  it("ends a run under way early when stopped, so shutdown does not wait for it", async () => {
    await recordAged([100, 101, 102, 103, 1]);
    const retention = createUsageRetention({
      db: app.infra.db.kysely,
      settings: app.services.settings,
      clock: app.clock,
      logger: app.infra.logger,
      batchSize: 1,
    });
    const run = retention.runOnce();
    await retention.stop();
    const outcome = await run;
    expect(outcome.more).toBe(true);
    expect(outcome.deleted).toBeLessThan(4);
    expect(await retention.runOnce()).toMatchObject({ deleted: 4 - outcome.deleted, more: false });
    expect(await ages()).toEqual([1]);
  });

  it("runs on its timer until stopped", async () => {
    await recordAged([365]);
    const retention = createUsageRetention({
      db: app.infra.db.kysely,
      settings: app.services.settings,
      clock: app.clock,
      logger: app.infra.logger,
      firstRunMs: 10,
      intervalMs: 20,
    });
    retention.start();
    const deadline = Date.now() + 5000;
    while ((await ages()).length > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await retention.stop();
    expect(await ages()).toEqual([]);
  });
});
