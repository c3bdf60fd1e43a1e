import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTenant, createTestApp, createUser, setupAdmin, type TestApp } from "../../test/test-app.ts";

describe("tenants and members", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
  });
  afterEach(async () => app.close());

  it("lets the platform administrator create, rename, suspend and delete tenants", async () => {
    const created = await app.call("POST", "/api/v1/tenants", { token: admin.token, body: { name: "Acme Research" } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Acme Research", slug: "acme-research", status: "active" });
    const duplicate = await app.call("POST", "/api/v1/tenants", { token: admin.token, body: { name: "Acme Research" } });
    expect(duplicate.body.slug).toBe("acme-research-2");
    const taken = await app.call("POST", "/api/v1/tenants", { token: admin.token, body: { name: "X", slug: "acme-research" } });
    expect(taken.status).toBe(409);

    const list = await app.call("GET", "/api/v1/tenants?limit=2", { token: admin.token });
    expect(list.body.data).toHaveLength(2);
    expect(list.body.next_cursor).toEqual(expect.any(String));
    const rest = await app.call("GET", `/api/v1/tenants?limit=2&cursor=${list.body.next_cursor}`, { token: admin.token });
    expect(rest.body.data).toHaveLength(1);
    expect(rest.body.next_cursor).toBeNull();

    const id = created.body.id;
    const renamed = await app.call("PATCH", `/api/v1/tenants/${id}`, { token: admin.token, body: { name: "Acme" } });
    expect(renamed.body).toMatchObject({ name: "Acme", slug: "acme-research" });
    expect((await app.call("PATCH", `/api/v1/tenants/${id}`, { token: admin.token, body: { status: "suspended" } })).body.status).toBe(
      "suspended",
    );
    expect((await app.call("DELETE", `/api/v1/tenants/${id}`, { token: admin.token })).status).toBe(200);
    expect((await app.call("GET", `/api/v1/tenants/${id}`, { token: admin.token })).status).toBe(404);
  });

  it("creates a tenant for an existing owner by email", async () => {
    const user = await createUser(app, admin.token);
    const created = await app.call("POST", "/api/v1/tenants", { token: admin.token, body: { name: "Theirs", owner_email: user.email } });
    expect(created.status).toBe(201);
    const members = await app.call("GET", "/api/v1/members", { token: user.token, tenant: created.body.id });
    expect(members.body.data).toEqual([expect.objectContaining({ user_id: user.id, role: "owner" })]);
    const missing = await app.call("POST", "/api/v1/tenants", { token: admin.token, body: { name: "Y", owner_email: "none@example.com" } });
    expect(missing.status).toBe(422);
  });

  it("shows users only their own tenants, and picks the active tenant from X-Tenant-Id", async () => {
    const other = await createTenant(app, admin.token, "Second");
    const user = await createUser(app, admin.token, { tenantId: other.id, role: "member" });
    const list = await app.call("GET", "/api/v1/tenants", { token: user.token });
    expect(list.body.data.map((tenant: { id: string }) => tenant.id)).toEqual([other.id]);
    const me = await app.call("GET", "/api/v1/auth/me", { token: user.token });
    expect(me.body.active_tenant_id).toBe(other.id);
    expect((await app.call("GET", `/api/v1/tenants/${admin.tenant.id}`, { token: user.token })).status).toBe(404);
    expect((await app.call("GET", "/api/v1/members", { token: user.token, tenant: admin.tenant.id })).status).toBe(404);
    // The administrator belongs to both and switches with the header.
    const adminMe = await app.call("GET", "/api/v1/auth/me", { token: admin.token, tenant: other.id });
    expect(adminMe.body.active_tenant_id).toBe(other.id);
  });

  it("blocks members of a suspended tenant", async () => {
    const other = await createTenant(app, admin.token, "Paused");
    const user = await createUser(app, admin.token, { tenantId: other.id, role: "admin" });
    await app.call("PATCH", `/api/v1/tenants/${other.id}`, { token: admin.token, body: { status: "suspended" } });
    const blocked = await app.call("GET", "/api/v1/members", { token: user.token, tenant: other.id });
    expect(blocked.status).toBe(403);
    expect(blocked.body.error.message).toContain("suspended");
  });

  it("adds existing users, changes roles and removes members, keeping one owner", async () => {
    const tenant = admin.tenant.id;
    const user = await createUser(app, admin.token);
    const added = await app.call("POST", "/api/v1/members", { token: admin.token, tenant, body: { email: user.email, role: "admin" } });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ member: { user_id: user.id, role: "admin" }, invitation: null });
    expect((await app.call("POST", "/api/v1/members", { token: admin.token, tenant, body: { email: user.email } })).status).toBe(409);

    // An admin may not grant the owner role, nor change an owner.
    const grant = await app.call("PATCH", `/api/v1/members/${user.id}`, { token: user.token, tenant, body: { role: "owner" } });
    expect(grant.status).toBe(403);
    const demoteOwner = await app.call("PATCH", `/api/v1/members/${admin.user.id}`, {
      token: user.token,
      tenant,
      body: { role: "member" },
    });
    expect(demoteOwner.status).toBe(403);

    // The last owner stays.
    const lastOwner = await app.call("PATCH", `/api/v1/members/${admin.user.id}`, { token: admin.token, tenant, body: { role: "admin" } });
    expect(lastOwner.status).toBe(422);
    expect((await app.call("DELETE", `/api/v1/members/${admin.user.id}`, { token: admin.token, tenant })).status).toBe(422);

    const promoted = await app.call("PATCH", `/api/v1/members/${user.id}`, { token: admin.token, tenant, body: { role: "owner" } });
    expect(promoted.body.role).toBe("owner");
    expect((await app.call("DELETE", `/api/v1/members/${user.id}`, { token: admin.token, tenant })).status).toBe(200);
    expect((await app.call("GET", "/api/v1/members", { token: user.token, tenant })).status).toBe(404);
  });

  it("invites an unknown email and lets the invitee create an account by accepting", async () => {
    const tenant = admin.tenant.id;
    const invited = await app.call("POST", "/api/v1/members", {
      token: admin.token,
      tenant,
      body: { email: "new@example.com", role: "member" },
    });
    expect(invited.status).toBe(201);
    expect(invited.body.member).toBeNull();
    const token = invited.body.invitation.token as string;
    expect(token).toMatch(/^lyss_inv_/);
    const stored = await app.infra.db.kysely.selectFrom("invitations").select("token_hash").executeTakeFirstOrThrow();
    expect(stored.token_hash).not.toBe(token);

    const pending = await app.call("GET", "/api/v1/invitations", { token: admin.token, tenant });
    expect(pending.body.data).toEqual([expect.objectContaining({ email: "new@example.com", role: "member" })]);
    expect(pending.body.data[0].token).toBeUndefined();

    const incomplete = await app.call("POST", "/api/v1/auth/accept-invite", { body: { token } });
    expect(incomplete.status).toBe(400);
    const accepted = await app.call("POST", "/api/v1/auth/accept-invite", { body: { token, name: "New", password: "new-password-1" } });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ tenant_id: tenant, role: "member", user: { email: "new@example.com" } });
    expect(
      (await app.call("POST", "/api/v1/auth/accept-invite", { body: { token, name: "New", password: "new-password-1" } })).status,
    ).toBe(404);

    const login = await app.call("POST", "/api/v1/auth/login", { body: { email: "new@example.com", password: "new-password-1" } });
    expect(login.status).toBe(200);
    const members = await app.call("GET", "/api/v1/members", { token: login.body.access_token });
    expect(members.body.data.map((member: { email: string }) => member.email)).toContain("new@example.com");
  });

  it("expires and revokes invitations", async () => {
    const tenant = admin.tenant.id;
    const first = await app.call("POST", "/api/v1/members", { token: admin.token, tenant, body: { email: "late@example.com" } });
    const second = await app.call("POST", "/api/v1/members", { token: admin.token, tenant, body: { email: "gone@example.com" } });
    expect((await app.call("DELETE", `/api/v1/invitations/${second.body.invitation.id}`, { token: admin.token, tenant })).status).toBe(200);
    app.clock.advance(8 * 24 * 3600 * 1000);
    const late = await app.call("POST", "/api/v1/auth/accept-invite", {
      body: { token: first.body.invitation.token, name: "Late", password: "late-password" },
    });
    expect(late.status).toBe(404);
    const revoked = await app.call("POST", "/api/v1/auth/accept-invite", {
      body: { token: second.body.invitation.token, name: "Gone", password: "gone-password" },
    });
    expect(revoked.status).toBe(404);
  });
});

describe("users", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
  });
  afterEach(async () => app.close());

  it("creates, finds, updates and deletes users", async () => {
    const created = await app.call("POST", "/api/v1/users", {
      token: admin.token,
      body: { email: "Dev@Example.com", name: "Dev", password: "dev-password" },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: "dev@example.com", is_platform_admin: false });
    const duplicate = await app.call("POST", "/api/v1/users", {
      token: admin.token,
      body: { email: "dev@example.com", name: "Dev", password: "dev-password" },
    });
    expect(duplicate.status).toBe(409);
    const search = await app.call("GET", "/api/v1/users?q=dev", { token: admin.token });
    expect(search.body.data.map((user: { email: string }) => user.email)).toEqual(["dev@example.com"]);
    const id = created.body.id;
    expect((await app.call("PATCH", `/api/v1/users/${id}`, { token: admin.token, body: { name: "Developer" } })).body.name).toBe(
      "Developer",
    );
    expect((await app.call("DELETE", `/api/v1/users/${id}`, { token: admin.token })).status).toBe(200);
    expect((await app.call("GET", `/api/v1/users/${id}`, { token: admin.token })).status).toBe(404);
  });

  it("resets a password as administrator and ends the user's sessions", async () => {
    const user = await createUser(app, admin.token, { tenantId: admin.tenant.id });
    const reset = await app.call("POST", `/api/v1/users/${user.id}/reset-password`, {
      token: admin.token,
      body: { password: "reset-password" },
    });
    expect(reset.status).toBe(200);
    expect((await app.call("GET", "/api/v1/auth/me", { token: user.token })).status).toBe(401);
    expect((await app.call("POST", "/api/v1/auth/login", { body: { email: user.email, password: user.password } })).status).toBe(401);
    expect((await app.call("POST", "/api/v1/auth/login", { body: { email: user.email, password: "reset-password" } })).status).toBe(200);
  });

  it("keeps the last active platform administrator", async () => {
    const self = await app.call("PATCH", `/api/v1/users/${admin.user.id}`, { token: admin.token, body: { status: "disabled" } });
    expect(self.status).toBe(422);
    expect((await app.call("DELETE", `/api/v1/users/${admin.user.id}`, { token: admin.token })).status).toBe(422);
    const second = await createUser(app, admin.token, { platformAdmin: true });
    const demoted = await app.call("PATCH", `/api/v1/users/${admin.user.id}`, { token: second.token, body: { is_platform_admin: false } });
    expect(demoted.status).toBe(200);
    // The demotion takes effect on the next request.
    expect((await app.call("GET", "/api/v1/users", { token: admin.token })).status).toBe(403);
    const last = await app.call("PATCH", `/api/v1/users/${second.id}`, { token: second.token, body: { is_platform_admin: false } });
    expect(last.status).toBe(422);
  });

  it("updates the own profile", async () => {
    const renamed = await app.call("PATCH", "/api/v1/auth/me", { token: admin.token, body: { name: "Root" } });
    expect(renamed.body.name).toBe("Root");
    expect((await app.call("GET", "/api/v1/auth/me", { token: admin.token })).body.user.name).toBe("Root");
  });
});
