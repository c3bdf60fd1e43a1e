import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ADMIN, createTestApp, createUser, setupAdmin, type TestApp } from "../../test/test-app.ts";

describe("first-run setup", () => {
  let app: TestApp;
  beforeEach(async () => {
    app = await createTestApp();
  });
  afterEach(async () => app.close());

  it("creates the administrator and a first tenant, once", async () => {
    expect((await app.call("GET", "/api/v1/auth/setup")).body).toEqual({ setup_required: true });
    const first = await app.call("POST", "/api/v1/auth/setup", { body: { ...ADMIN, email: "Admin@Example.COM" } });
    expect(first.status).toBe(201);
    expect(first.body.user).toMatchObject({ email: "admin@example.com", is_platform_admin: true, status: "active" });
    expect(first.body.tenant).toMatchObject({ name: "Default", slug: "default", status: "active" });
    expect(first.body.access_token).toEqual(expect.any(String));
    expect(first.body.user.password_hash).toBeUndefined();

    const again = await app.call("POST", "/api/v1/auth/setup", { body: { ...ADMIN, email: "other@example.com" } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("setup_completed");
    expect((await app.call("GET", "/api/v1/auth/setup")).body).toEqual({ setup_required: false });

    const me = await app.call("GET", "/api/v1/auth/me", { token: first.body.access_token });
    expect(me.status).toBe(200);
    expect(me.body.memberships).toEqual([{ tenant: first.body.tenant, role: "owner" }]);
    expect(me.body.active_tenant_id).toBe(first.body.tenant.id);
  });

  it("lets exactly one of many concurrent setups win", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        app.call("POST", "/api/v1/auth/setup", { body: { ...ADMIN, email: `admin${index}@example.com` } }),
      ),
    );
    expect(results.filter((result) => result.status === 201)).toHaveLength(1);
    expect(results.filter((result) => result.status === 409)).toHaveLength(7);
    const users = await app.infra.db.kysely.selectFrom("users").select("email").execute();
    expect(users).toHaveLength(1);
  });
});

describe("sessions", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  beforeEach(async () => {
    app = await createTestApp({ env: { LYSS_LOGIN_MAX_FAILURES: "3", LYSS_LOGIN_IP_MAX_ATTEMPTS: "12" } });
    admin = await setupAdmin(app);
  });
  afterEach(async () => app.close());

  it("signs in with the right password only", async () => {
    const ok = await app.call("POST", "/api/v1/auth/login", { body: { email: ADMIN.email, password: ADMIN.password } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ token_type: "Bearer", expires_in: 900, user: { email: ADMIN.email } });
    expect(ok.body.user.last_login_at).toEqual(expect.any(String));
    const wrong = await app.call("POST", "/api/v1/auth/login", { body: { email: ADMIN.email, password: "nope-nope" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe("invalid_credentials");
    const unknown = await app.call("POST", "/api/v1/auth/login", { body: { email: "ghost@example.com", password: "nope-nope" } });
    expect(unknown.status).toBe(401);
    expect(unknown.body.error.message).toBe(wrong.body.error.message);
  });

  it("stores passwords hashed with scrypt", async () => {
    const row = await app.infra.db.kysely.selectFrom("users").select("password_hash").executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^scrypt\$/);
    expect(row.password_hash).not.toContain(ADMIN.password);
  });

  it("limits failed logins per account, with Retry-After", async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      expect((await app.call("POST", "/api/v1/auth/login", { body: { email: ADMIN.email, password: "wrong-one" } })).status).toBe(401);
    }
    const blocked = await app.call("POST", "/api/v1/auth/login", { body: { email: ADMIN.email, password: ADMIN.password } });
    expect(blocked.status).toBe(429);
    expect(blocked.body.error.code).toBe("rate_limited");
    expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(0);
  });

  it("limits attempts per IP address across accounts", async () => {
    const statuses: number[] = [];
    for (let attempt = 0; attempt < 14; attempt++) {
      const response = await app.call("POST", "/api/v1/auth/login", { body: { email: `nobody${attempt}@example.com`, password: "x" } });
      statuses.push(response.status);
    }
    expect(statuses.slice(0, 12).every((status) => status === 401)).toBe(true);
    expect(statuses.slice(12)).toEqual([429, 429]);
  });

  it("rotates refresh tokens and ends the session when an old one is replayed", async () => {
    const first = await app.call("POST", "/api/v1/auth/refresh", { body: { refresh_token: admin.refreshToken } });
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).not.toBe(admin.refreshToken);
    const stored = await app.infra.db.kysely.selectFrom("refresh_tokens").select("token_hash").execute();
    expect(stored.map((row) => row.token_hash)).not.toContain(admin.refreshToken);
    expect((await app.call("GET", "/api/v1/auth/me", { token: first.body.access_token })).status).toBe(200);

    const replay = await app.call("POST", "/api/v1/auth/refresh", { body: { refresh_token: admin.refreshToken } });
    expect(replay.status).toBe(401);
    // The replay ended the whole session: the newer pair stops working too.
    expect((await app.call("GET", "/api/v1/auth/me", { token: first.body.access_token })).status).toBe(401);
    expect((await app.call("POST", "/api/v1/auth/refresh", { body: { refresh_token: first.body.refresh_token } })).status).toBe(401);
  });

  it("expires access tokens", async () => {
    app.clock.advance(901 * 1000);
    const response = await app.call("GET", "/api/v1/auth/me", { token: admin.token });
    expect(response.status).toBe(401);
    expect(response.body.error.message).toContain("expired");
  });

  it("logs out: the access and refresh tokens of the session stop working", async () => {
    const out = await app.call("POST", "/api/v1/auth/logout", { token: admin.token, body: { refresh_token: admin.refreshToken } });
    expect(out.status).toBe(200);
    expect((await app.call("GET", "/api/v1/auth/me", { token: admin.token })).status).toBe(401);
    expect((await app.call("POST", "/api/v1/auth/refresh", { body: { refresh_token: admin.refreshToken } })).status).toBe(401);
  });

  it("stops a disabled user at once and lets them back when enabled", async () => {
    const user = await createUser(app, admin.token, { tenantId: admin.tenant.id });
    expect((await app.call("GET", "/api/v1/auth/me", { token: user.token })).status).toBe(200);
    const disabled = await app.call("PATCH", `/api/v1/users/${user.id}`, { token: admin.token, body: { status: "disabled" } });
    expect(disabled.status).toBe(200);
    expect((await app.call("GET", "/api/v1/auth/me", { token: user.token })).status).toBe(401);
    expect((await app.call("POST", "/api/v1/auth/refresh", { body: { refresh_token: user.refreshToken } })).status).toBe(401);
    const login = await app.call("POST", "/api/v1/auth/login", { body: { email: user.email, password: user.password } });
    expect(login.status).toBe(403);

    await app.call("PATCH", `/api/v1/users/${user.id}`, { token: admin.token, body: { status: "active" } });
    expect((await app.call("POST", "/api/v1/auth/login", { body: { email: user.email, password: user.password } })).status).toBe(200);
  });

  it("changes the own password and ends the other sessions", async () => {
    const other = await app.call("POST", "/api/v1/auth/login", { body: { email: ADMIN.email, password: ADMIN.password } });
    const wrong = await app.call("POST", "/api/v1/auth/password", {
      token: admin.token,
      body: { current_password: "not-it-at-all", new_password: "a-new-password" },
    });
    expect(wrong.status).toBe(401);
    const changed = await app.call("POST", "/api/v1/auth/password", {
      token: admin.token,
      body: { current_password: ADMIN.password, new_password: "a-new-password" },
    });
    expect(changed.status).toBe(200);
    expect((await app.call("GET", "/api/v1/auth/me", { token: admin.token })).status).toBe(200);
    expect((await app.call("GET", "/api/v1/auth/me", { token: other.body.access_token })).status).toBe(401);
    expect((await app.call("POST", "/api/v1/auth/login", { body: { email: ADMIN.email, password: "a-new-password" } })).status).toBe(200);
  });

  it("rejects forged, malformed and missing tokens", async () => {
    const [header, payload] = admin.token.split(".");
    const forged = `${header}.${payload}.${"A".repeat(43)}`;
    for (const token of [forged, "garbage", ""]) {
      const response = await app.call("GET", "/api/v1/auth/me", { headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect(response.status).toBe(401);
      expect(response.body.error.code).toBe("unauthorized");
    }
  });
});

describe("headless bootstrap", () => {
  it("creates the first administrator from LYSS_ADMIN_EMAIL and LYSS_ADMIN_PASSWORD", async () => {
    const app = await createTestApp({ env: { LYSS_ADMIN_EMAIL: "boot@example.com", LYSS_ADMIN_PASSWORD: "boot-password" } });
    try {
      const login = await app.call("POST", "/api/v1/auth/login", { body: { email: "boot@example.com", password: "boot-password" } });
      expect(login.status).toBe(200);
      expect(login.body.user.is_platform_admin).toBe(true);
      expect((await app.call("POST", "/api/v1/auth/setup", { body: ADMIN })).status).toBe(409);
    } finally {
      await app.close();
    }
  });
});
