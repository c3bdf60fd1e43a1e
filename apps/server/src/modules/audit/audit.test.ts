import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTenant, createTestApp, createUser, setupAdmin, type TestApp } from "../../test/test-app.ts";
import { maskSecrets } from "./mask.ts";

describe("audit log", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
  });
  afterEach(async () => app.close());

  it("records who changed what, when and from where, with before and after", async () => {
    const user = await createUser(app, admin.token, { tenantId: admin.tenant.id, role: "member" });
    await app.call("PATCH", `/api/v1/members/${user.id}`, {
      token: admin.token,
      tenant: admin.tenant.id,
      body: { role: "admin" },
      headers: { "x-request-id": "req-audit-1" },
    });
    const page = await app.call("GET", "/api/v1/audit-logs?action=member.update", { token: admin.token });
    expect(page.status).toBe(200);
    expect(page.body.data).toHaveLength(1);
    const entry = page.body.data[0];
    expect(entry).toMatchObject({
      tenant_id: admin.tenant.id,
      actor_user_id: admin.user.id,
      actor_email: admin.user.email,
      action: "member.update",
      target_type: "membership",
      target_id: user.id,
      ip: "127.0.0.1",
      request_id: "req-audit-1",
      before: { role: "member" },
      after: { role: "admin" },
    });
    expect(Date.parse(entry.created_at)).not.toBeNaN();
  });

  it("never stores secrets: passwords are absent and secret-looking fields masked", async () => {
    await app.call("POST", "/api/v1/users", {
      token: admin.token,
      body: { email: "s@example.com", name: "S", password: "super-secret-pw" },
    });
    await app.call("POST", "/api/v1/members", { token: admin.token, body: { email: "invitee@example.com" } });
    const rows = await app.infra.db.kysely.selectFrom("audit_logs").select(["before", "after"]).execute();
    const text = JSON.stringify(rows);
    expect(text).not.toContain("super-secret-pw");
    expect(text).not.toContain("scrypt$");
    expect(text).not.toContain("lyss_inv_");
    expect(maskSecrets({ api_key: "k", nested: [{ password: "p", name: "n" }], credentials: { a: 1 } })).toEqual({
      api_key: "***",
      nested: [{ password: "***", name: "n" }],
      credentials: "***",
    });
  });

  it("filters, paginates, and keeps each tenant's entries to itself", async () => {
    for (const name of ["one", "two", "three"]) {
      await app.call("POST", "/api/v1/users", {
        token: admin.token,
        body: { email: `${name}@example.com`, name, password: "password-123" },
      });
    }
    const platform = await app.call("GET", "/api/v1/platform/audit-logs?action=user.create&limit=2", { token: admin.token });
    expect(platform.body.data).toHaveLength(2);
    const next = await app.call("GET", `/api/v1/platform/audit-logs?action=user.create&limit=2&cursor=${platform.body.next_cursor}`, {
      token: admin.token,
    });
    // Setup's administrator plus three users.
    expect(next.body.data).toHaveLength(2);
    expect(next.body.next_cursor).toBeNull();
    const ids = [...platform.body.data, ...next.body.data].map((entry: { id: string }) => entry.id);
    expect(new Set(ids).size).toBe(4);

    const other = await createTenant(app, admin.token, "Elsewhere");
    const owner = await createUser(app, admin.token, { tenantId: other.id, role: "owner" });
    await app.call("PATCH", "/api/v1/settings/tenant", { token: owner.token, tenant: other.id, body: { time_zone: "Asia/Tokyo" } });
    const theirs = await app.call("GET", "/api/v1/audit-logs", { token: owner.token, tenant: other.id });
    expect(theirs.body.data.every((entry: { tenant_id: string }) => entry.tenant_id === other.id)).toBe(true);
    expect(theirs.body.data.map((entry: { action: string }) => entry.action)).toContain("settings.update");
    const ours = await app.call("GET", "/api/v1/audit-logs", { token: admin.token, tenant: admin.tenant.id });
    expect(ours.body.data.some((entry: { tenant_id: string }) => entry.tenant_id === other.id)).toBe(false);
    const filtered = await app.call("GET", `/api/v1/platform/audit-logs?tenant_id=${other.id}&target_type=settings`, {
      token: admin.token,
    });
    expect(filtered.body.data).toHaveLength(1);
    const future = new Date(Date.now() + 3600_000).toISOString();
    expect((await app.call("GET", `/api/v1/platform/audit-logs?from=${future}`, { token: admin.token })).body.data).toEqual([]);
  });
});
