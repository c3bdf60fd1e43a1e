import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../../test/eventually.ts";
import { createTestApp, createUser, freshStorage, setupAdmin, TEST_REDIS_URL, type TestApp } from "../../test/test-app.ts";

describe("runtime settings", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
  });
  afterEach(async () => app.close());

  it("serves defaults, stores changes, and resets a key with null", async () => {
    const initial = await app.call("GET", "/api/v1/settings/platform", { token: admin.token });
    expect(initial.body.values).toMatchObject({ site_name: "Lyss", default_locale: "en-US", default_time_zone: "UTC" });
    expect(initial.body.overrides).toEqual({});

    const changed = await app.call("PATCH", "/api/v1/settings/platform", {
      token: admin.token,
      body: { site_name: "Acme AI", default_time_zone: "Asia/Shanghai" },
    });
    expect(changed.status).toBe(200);
    expect(changed.body.overrides).toEqual({ site_name: "Acme AI", default_time_zone: "Asia/Shanghai" });

    // Tenants inherit the platform's time zone until they set their own.
    const tenant = await app.call("GET", "/api/v1/settings/tenant", { token: admin.token });
    expect(tenant.body.values).toMatchObject({ time_zone: "Asia/Shanghai", routing_strategy: "weighted_random" });
    const own = await app.call("PATCH", "/api/v1/settings/tenant", {
      token: admin.token,
      body: { time_zone: "Europe/Paris", routing_strategy: "adaptive" },
    });
    expect(own.body.values).toMatchObject({ time_zone: "Europe/Paris", routing_strategy: "adaptive" });

    const reset = await app.call("PATCH", "/api/v1/settings/platform", { token: admin.token, body: { site_name: null } });
    expect(reset.body.values.site_name).toBe("Lyss");
    expect(reset.body.overrides).toEqual({ default_time_zone: "Asia/Shanghai" });
  });

  it("rejects unknown keys and bad values, naming them, and writes nothing", async () => {
    const unknown = await app.call("PATCH", "/api/v1/settings/platform", { token: admin.token, body: { site_name: "Ok", nope: 1 } });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe("validation_failed");
    expect(JSON.stringify(unknown.body.error.details)).toContain("nope");
    const zone = await app.call("PATCH", "/api/v1/settings/tenant", { token: admin.token, body: { time_zone: "Mars/Olympus" } });
    expect(zone.status).toBe(400);
    expect(zone.body.error.details.fields[0].field).toBe("body.time_zone");
    expect((await app.call("GET", "/api/v1/settings/platform", { token: admin.token })).body.overrides).toEqual({});
  });

  it("lets members read but only admins change tenant settings", async () => {
    const member = await createUser(app, admin.token, { tenantId: admin.tenant.id, role: "member" });
    expect((await app.call("GET", "/api/v1/settings/tenant", { token: member.token })).status).toBe(200);
    expect((await app.call("PATCH", "/api/v1/settings/tenant", { token: member.token, body: { time_zone: "UTC" } })).status).toBe(403);
    expect((await app.call("GET", "/api/v1/settings/platform", { token: member.token })).status).toBe(403);
  });
});

describe.skipIf(!TEST_REDIS_URL)("two instances sharing PostgreSQL and Redis", () => {
  it("invalidate each other's caches: settings, disabled users and revoked sessions", async () => {
    const storage = await freshStorage();
    const first = await createTestApp({ storage });
    const second = await createTestApp({ storage });
    try {
      const admin = await setupAdmin(first);
      // Warm the second instance's caches.
      expect((await second.call("GET", "/api/v1/settings/platform", { token: admin.token })).body.values.site_name).toBe("Lyss");
      await first.call("PATCH", "/api/v1/settings/platform", { token: admin.token, body: { site_name: "Shared" } });
      expect(
        await eventually(
          async () => (await second.call("GET", "/api/v1/settings/platform", { token: admin.token })).body.values.site_name === "Shared",
        ),
      ).toBe(true);

      const user = await createUser(first, admin.token, { tenantId: admin.tenant.id });
      expect((await second.call("GET", "/api/v1/auth/me", { token: user.token })).status).toBe(200);
      await first.call("PATCH", `/api/v1/users/${user.id}`, { token: admin.token, body: { status: "disabled" } });
      expect(await eventually(async () => (await second.call("GET", "/api/v1/auth/me", { token: user.token })).status === 401)).toBe(true);

      expect((await second.call("GET", "/api/v1/auth/me", { token: admin.token })).status).toBe(200);
      await first.call("POST", "/api/v1/auth/logout", { token: admin.token });
      expect(await eventually(async () => (await second.call("GET", "/api/v1/auth/me", { token: admin.token })).status === 401)).toBe(true);
    } finally {
      await first.close();
      await second.close();
      await storage.drop();
    }
  });
});
