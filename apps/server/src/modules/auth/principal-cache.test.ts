import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestApp, setupAdmin, type TestApp } from "../../test/test-app.ts";
import { AUTH_TOPICS, createPrincipalCache } from "./principal-cache.ts";

describe("the principal cache", () => {
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let now = 0;
  let principals: ReturnType<typeof createPrincipalCache>;

  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
    now = 1_000_000;
    principals = createPrincipalCache(app.infra.db.kysely, app.infra.bus, { now: () => now });
  });
  afterEach(async () => {
    principals.close();
    await app.close();
  });

  const rename = (name: string) => app.infra.db.kysely.updateTable("users").set({ name }).where("id", "=", admin.user.id).execute();

  it("loads a key once however many ask at once, then answers from memory without a promise", async () => {
    const asks = Array.from({ length: 50 }, () => principals.user(admin.user.id));
    expect(asks[0]).toBeInstanceOf(Promise);
    expect(new Set(asks).size).toBe(1);
    expect((await asks[0])?.email).toBe("admin@example.com");
    const hit = principals.user(admin.user.id);
    expect(hit).not.toBeInstanceOf(Promise);
    expect((hit as { name: string }).name).toBe("Admin");
  });

  it("answers an expired user at once and reads it again behind the request, once", async () => {
    await principals.user(admin.user.id);
    await rename("Renamed");
    now += 29_000;
    expect((principals.user(admin.user.id) as { name: string }).name).toBe("Admin");
    now += 2_000;
    // Past the TTL: still no promise, the old row for these callers, and one read of the new one.
    const expired = Array.from({ length: 20 }, () => principals.user(admin.user.id));
    for (const answer of expired) {
      expect(answer).not.toBeInstanceOf(Promise);
      expect((answer as { name: string }).name).toBe("Admin");
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect((principals.user(admin.user.id) as { name: string }).name).toBe("Renamed");
  });

  it("waits for the database after a change is published, and keeps nothing a load read before it", async () => {
    await principals.tenant(admin.tenant.id);
    await app.infra.db.kysely.updateTable("tenants").set({ status: "suspended" }).where("id", "=", admin.tenant.id).execute();
    app.infra.bus.publish(AUTH_TOPICS.tenant, {});
    await new Promise((resolve) => setTimeout(resolve, 20));
    const after = principals.tenant(admin.tenant.id);
    expect(after).toBeInstanceOf(Promise);
    expect((await after)?.status).toBe("suspended");
  });

  it("remembers that a user does not exist", async () => {
    expect(await principals.user("no-such-user")).toBeUndefined();
    expect(principals.user("no-such-user")).toBeUndefined();
  });
});
