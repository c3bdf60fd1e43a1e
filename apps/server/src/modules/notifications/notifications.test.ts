import http from "node:http";
import type { AddressInfo } from "node:net";
import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../../test/eventually.ts";
import {
  createAccessToken,
  createChannel,
  createTenant,
  createTestApp,
  createUser,
  listen,
  setupAdmin,
  type TestApp,
} from "../../test/test-app.ts";
import { verifyWebhook } from "./webhook.ts";

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A real local HTTP server standing in for a tenant's webhook receiver; `statuses` are answered first, then 200. */
async function startReceiver() {
  const received: Received[] = [];
  const statuses: number[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      received.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      response.statusCode = statuses.shift() ?? 200;
      response.end("ok");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/lyss`,
    received,
    statuses,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const chat = (baseUrl: string, key: string) =>
  fetch(`${baseUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], max_tokens: 20 }),
  });

describe("notifications", () => {
  let sim: UpstreamSimulator;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let owner: Awaited<ReturnType<typeof createUser>>;
  let tenantAdmin: Awaited<ReturnType<typeof createUser>>;
  let bystander: Awaited<ReturnType<typeof createUser>>;
  let outsider: Awaited<ReturnType<typeof createUser>>;
  let baseUrl: string;

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => sim.close());
  beforeEach(async () => {
    sim.reset();
    receiver = await startReceiver();
    app = await createTestApp();
    admin = await setupAdmin(app);
    const tenant = admin.tenant.id;
    const other = await createTenant(app, admin.token, "Other");
    [owner, tenantAdmin, bystander, outsider] = await Promise.all([
      createUser(app, admin.token, { tenantId: tenant, role: "member" }),
      createUser(app, admin.token, { tenantId: tenant, role: "admin" }),
      createUser(app, admin.token, { tenantId: tenant, role: "member" }),
      createUser(app, admin.token, { tenantId: other.id, role: "owner" }),
    ]);
    await createChannel(app, admin.token, tenant, {
      name: "c",
      provider: "openai",
      base_url: sim.url,
      credentials: { api_key: "k" },
      models: ["gpt-4o-mini"],
    });
    const setting = await app.call("PATCH", "/api/v1/settings/tenant", {
      token: admin.token,
      body: { notification_webhook_url: receiver.url },
    });
    expect(setting.status).toBe(200);
    baseUrl = await listen(app);
  });
  afterEach(async () => {
    await app.close();
    await receiver.close();
  });

  const list = async (user: { token: string }, query = "", tenant = admin.tenant.id) =>
    app.call("GET", `/api/v1/notifications${query}`, { token: user.token, tenant });

  it("notifies the token's owner and the tenant's admins once at 80 % and once at 100 %, and no one else", async () => {
    const token = await createAccessToken(app, owner.token, admin.tenant.id, { limits: [{ metric: "requests", window: "total", max: 5 }] });
    for (let index = 0; index < 3; index++) expect((await chat(baseUrl, token.key)).status).toBe(200);
    await app.services.notifications.idle();
    expect((await list(owner)).body.data).toEqual([]);

    expect((await chat(baseUrl, token.key)).status).toBe(200);
    const first = await eventually(async () => ((await list(owner)).body.data.length === 1 ? (await list(owner)).body : undefined));
    expect(first.data[0]).toMatchObject({
      kind: "quota.threshold",
      read_at: null,
      data: { scope: "token", scope_id: token.id, metric: "requests", window: "total", max: 5, used: 4, threshold: 0.8 },
    });
    expect(first.data[0].title).toContain("80 %");

    expect((await chat(baseUrl, token.key)).status).toBe(200);
    for (let index = 0; index < 3; index++) expect((await chat(baseUrl, token.key)).status).toBe(429);
    await eventually(async () => (await list(owner)).body.data.length === 2);
    await app.services.notifications.idle();

    for (const user of [owner, tenantAdmin, admin]) {
      const page = (await list(user)).body;
      expect(page.data.map((item: { data: { threshold: number } }) => item.data.threshold)).toEqual([1, 0.8]);
      expect(page.unread_count).toBe(2);
      expect(page.data[0]).toMatchObject({ kind: "quota.threshold", data: { used: 5, max: 5, threshold: 1 } });
    }
    expect((await list(bystander)).body).toMatchObject({ data: [], unread_count: 0 });
    expect((await list(outsider, "", "")).body).toMatchObject({ data: [], unread_count: 0 });
    expect((await list(outsider)).status).toBe(404);
    const stored = await app.infra.db.kysely.selectFrom("notifications").selectAll().execute();
    expect(stored).toHaveLength(2);
    expect(await app.infra.db.kysely.selectFrom("notification_recipients").selectAll().execute()).toHaveLength(6);

    // One webhook event per notification, signed with the secret administrators see.
    expect(receiver.received).toHaveLength(2);
    const webhook = await app.call("GET", "/api/v1/notifications/webhook", { token: tenantAdmin.token, tenant: admin.tenant.id });
    expect(webhook.body).toEqual({ url: receiver.url, secret: expect.stringMatching(/^[0-9a-f]{64}$/) });
    for (const delivery of receiver.received) {
      const timestamp = String(delivery.headers["x-lyss-timestamp"]);
      const signature = String(delivery.headers["x-lyss-signature"]);
      expect(signature).toMatch(/^sha256=[0-9a-f]{64}$/);
      expect(verifyWebhook(webhook.body.secret, timestamp, delivery.body, signature)).toBe(true);
      expect(verifyWebhook(webhook.body.secret, timestamp, delivery.body.replace('"max":5', '"max":50'), signature)).toBe(false);
      expect(verifyWebhook(webhook.body.secret, String(Number(timestamp) + 1), delivery.body, signature)).toBe(false);
    }
    const events = receiver.received.map((delivery) => JSON.parse(delivery.body));
    expect(new Set(events.map((event) => event.id))).toEqual(new Set(stored.map((row) => row.id)));
    expect(events[0]).toEqual({
      id: expect.any(String),
      kind: "quota.threshold",
      tenant_id: admin.tenant.id,
      title: expect.any(String),
      message: expect.any(String),
      data: { scope: "token", scope_id: token.id, metric: "requests", window: "total", max: 5, used: 4, threshold: 0.8 },
      created_at: expect.any(String),
    });
    expect((await app.call("GET", "/api/v1/notifications/webhook", { token: owner.token, tenant: admin.tenant.id })).status).toBe(403);
  });

  it("marks one or all read for the caller alone, pages with a cursor, and hides other users' notifications", async () => {
    const notify = (index: number) =>
      app.services.notifications.notify(admin.tenant.id, {
        kind: "quota.threshold",
        title: `notice ${index}`,
        message: "m",
        data: { index },
        userIds: [owner.id, outsider.id],
        dedupeKey: `test:${index}`,
      });
    const created = [];
    for (let index = 0; index < 3; index++) created.push(await notify(index));
    expect(await notify(0)).toBeNull();
    expect(await app.infra.db.kysely.selectFrom("notification_recipients").selectAll().execute()).toHaveLength(3);

    const firstPage = (await list(owner, "?limit=2")).body;
    expect(firstPage.data.map((item: { title: string }) => item.title)).toEqual(["notice 2", "notice 1"]);
    const secondPage = (await list(owner, `?limit=2&cursor=${firstPage.next_cursor}`)).body;
    expect(secondPage).toMatchObject({ data: [{ title: "notice 0" }], next_cursor: null });

    const id = created[1]?.id ?? "";
    expect((await app.call("POST", `/api/v1/notifications/${id}/read`, { token: bystander.token, tenant: admin.tenant.id })).status).toBe(
      404,
    );
    expect((await app.call("POST", `/api/v1/notifications/${id}/read`, { token: admin.token, tenant: admin.tenant.id })).status).toBe(404);
    const read = await app.call("POST", `/api/v1/notifications/${id}/read`, { token: owner.token, tenant: admin.tenant.id });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ id, read_at: expect.any(String) });
    const unread = (await list(owner, "?unread=true")).body;
    expect(unread.data.map((item: { id: string }) => item.id)).toEqual([created[2]?.id, created[0]?.id]);
    expect(unread.unread_count).toBe(2);

    const all = await app.call("POST", "/api/v1/notifications/read-all", { token: owner.token, tenant: admin.tenant.id, body: {} });
    expect(all.body).toEqual({ updated: 2 });
    expect((await list(owner, "?unread=true")).body).toMatchObject({ data: [], unread_count: 0 });
    expect((await list(owner)).body.data).toHaveLength(3);
  });

  it("stores one notification when the same dedupe key is sent concurrently", async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        app.services.notifications.notify(admin.tenant.id, {
          kind: "channel.enabled",
          title: "t",
          message: "m",
          data: {},
          dedupeKey: "same",
        }),
      ),
    );
    expect(results.filter((result) => result !== null)).toHaveLength(1);
    expect(await app.infra.db.kysely.selectFrom("notifications").selectAll().execute()).toHaveLength(1);
    // Owners and admins by default: the platform administrator (owner) and the tenant admin.
    expect((await list(tenantAdmin)).body.data).toHaveLength(1);
    expect((await list(admin)).body.data).toHaveLength(1);
    expect((await list(owner)).body.data).toHaveLength(0);
  });

  it("retries a delivery the receiver answered with a 500, and gives up after 3 attempts without throwing", async () => {
    receiver.statuses.push(500);
    const notice = await app.services.notifications.notify(admin.tenant.id, {
      kind: "channel.enabled",
      title: "t",
      message: "m",
      data: {},
      dedupeKey: "retry",
    });
    await app.services.notifications.idle();
    expect(receiver.received).toHaveLength(2);
    expect(receiver.received.map((delivery) => JSON.parse(delivery.body).id)).toEqual([notice?.id, notice?.id]);

    receiver.received.length = 0;
    receiver.statuses.push(500, 502, 503);
    await app.services.notifications.notify(admin.tenant.id, {
      kind: "channel.enabled",
      title: "t",
      message: "m",
      data: {},
      dedupeKey: "fail",
    });
    await app.services.notifications.idle();
    expect(receiver.received).toHaveLength(3);
  });

  it("sends a signed test event on request and answers the delivery status", async () => {
    const asAdmin = { token: tenantAdmin.token, tenant: admin.tenant.id };
    const ok = await app.call("POST", "/api/v1/notifications/webhook/test", asAdmin);
    expect(ok.body).toEqual({ delivered: true, url: receiver.url, attempts: 1, status: 200, error: null });
    const event = JSON.parse(receiver.received[0]?.body ?? "{}");
    expect(event).toMatchObject({ kind: "webhook.test", tenant_id: admin.tenant.id });
    const { secret } = (await app.call("GET", "/api/v1/notifications/webhook", asAdmin)).body;
    const headers = receiver.received[0]?.headers ?? {};
    expect(
      verifyWebhook(secret, String(headers["x-lyss-timestamp"]), receiver.received[0]?.body ?? "", String(headers["x-lyss-signature"])),
    ).toBe(true);

    receiver.statuses.push(500);
    const failed = await app.call("POST", "/api/v1/notifications/webhook/test", asAdmin);
    expect(failed.body).toMatchObject({ delivered: false, attempts: 1, status: 500 });
    expect((await app.call("POST", "/api/v1/notifications/webhook/test", { token: owner.token, tenant: admin.tenant.id })).status).toBe(
      403,
    );

    await app.call("PATCH", "/api/v1/settings/tenant", { token: admin.token, body: { notification_webhook_url: "" } });
    const off = await app.call("POST", "/api/v1/notifications/webhook/test", asAdmin);
    expect(off.body).toMatchObject({ delivered: false, url: null, attempts: 0 });
    const refused = await app.call("PATCH", "/api/v1/settings/tenant", {
      token: admin.token,
      body: { notification_webhook_url: "ftp://x" },
    });
    expect(refused.status).toBe(400);
  });
});
