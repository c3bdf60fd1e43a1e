import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../../test/eventually.ts";
import { suiteSimulators } from "../../test/simulators.ts";
import { createAccessToken, createChannel, createTestApp, createUser, listen, setupAdmin, type TestApp } from "../../test/test-app.ts";

const channelBody = (name: string, url: string, extra: Record<string, unknown> = {}) => ({
  name,
  provider: "openai",
  base_url: `${url}/v1`,
  credentials: { api_key: `sk-${name}` },
  models: ["gpt-4o-mini"],
  ...extra,
});

describe("channel status notifications", () => {
  const [sim, backup] = suiteSimulators();
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let member: Awaited<ReturnType<typeof createUser>>;
  let tenantAdmin: Awaited<ReturnType<typeof createUser>>;
  let client: OpenAI;
  let primary: string;

  beforeEach(async () => {
    app = await createTestApp();
    admin = await setupAdmin(app);
    [member, tenantAdmin] = await Promise.all([
      createUser(app, admin.token, { tenantId: admin.tenant.id, role: "member" }),
      createUser(app, admin.token, { tenantId: admin.tenant.id, role: "admin" }),
    ]);
    primary = (await createChannel(app, admin.token, admin.tenant.id, channelBody("primary", sim.url, { priority: 10 }))).id;
    await createChannel(app, admin.token, admin.tenant.id, channelBody("backup", backup.url));
    const key = (await createAccessToken(app, member.token, admin.tenant.id)).key;
    client = new OpenAI({ apiKey: key, baseURL: `${await listen(app)}/v1`, maxRetries: 0 });
  });
  afterEach(async () => app.close());

  const notices = async (user: { token: string }) =>
    (await app.call("GET", "/api/v1/notifications", { token: user.token, tenant: admin.tenant.id })).body.data;

  it("tells the tenant's admins when a channel is auto-disabled by a 401 upstream and enabled again by a probe", async () => {
    sim.fail({ path: "/chat/completions" }, { status: 401, message: "invalid key" });
    await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });

    const [disabled] = await eventually(async () => {
      const data = await notices(tenantAdmin);
      return data.length > 0 ? data : undefined;
    });
    expect(disabled).toMatchObject({
      kind: "channel.auto_disabled",
      read_at: null,
      data: { channel_id: primary, name: "primary", reason: expect.stringContaining("401") },
    });
    expect(disabled.data.reason).toContain("invalid key");
    expect(disabled.title).toContain("primary");
    expect(await notices(admin)).toHaveLength(1);
    expect(await notices(member)).toEqual([]);

    // A few more requests while the channel is disabled change nothing.
    for (let index = 0; index < 2; index++) {
      await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    }
    await app.services.notifications.idle();
    expect(await notices(tenantAdmin)).toHaveLength(1);

    sim.reset();
    app.clock.advance(300_000);
    expect(await app.services.health.probes.runOnce()).toContain(primary);
    await app.services.notifications.idle();
    const [enabled] = await notices(tenantAdmin);
    expect(enabled).toMatchObject({ kind: "channel.enabled", data: { channel_id: primary, name: "primary", reason: null } });
    expect(await notices(member)).toEqual([]);
    expect(await app.infra.db.kysely.selectFrom("notifications").select("kind").orderBy("id").execute()).toEqual([
      { kind: "channel.auto_disabled" },
      { kind: "channel.enabled" },
    ]);
  });
});
