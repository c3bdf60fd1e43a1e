import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/eventually.ts";
import {
  createAccessToken,
  createChannel,
  createTestApp,
  freshStorage,
  listen,
  setupAdmin,
  TEST_REDIS_URL,
  type TestApp,
} from "../../test/test-app.ts";

/** Polls until the check answers true, for at most about two seconds. */

describe.skipIf(!TEST_REDIS_URL)("two gateway instances sharing one database and Redis", () => {
  let sim: UpstreamSimulator;
  let storage: Awaited<ReturnType<typeof freshStorage>>;
  let first: TestApp;
  let second: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let key: string;
  let firstUrl: string;
  let secondUrl: string;

  const client = (baseUrl: string, apiKey = key) => new OpenAI({ apiKey, baseURL: `${baseUrl}/v1`, maxRetries: 0 });
  /** One chat request through an instance: the upstream key that answered it, or the error's status. */
  const chat = async (baseUrl: string, apiKey = key): Promise<string | number> => {
    const before = sim.requests.length;
    try {
      await client(baseUrl, apiKey).chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
      return String(sim.requests[before]?.headers.authorization).slice(10);
    } catch (error) {
      return (error as { status?: number }).status ?? -1;
    }
  };
  const channelBody = (name: string, priority: number) => ({
    name,
    provider: "openai",
    base_url: sim.url,
    credentials: { api_key: `sk-${name}` },
    models: ["gpt-4o-mini"],
    priority,
  });

  beforeAll(async () => {
    sim = await startSimulator();
    storage = await freshStorage();
    first = await createTestApp({ storage });
    second = await createTestApp({ storage });
    admin = await setupAdmin(first);
    key = (await createAccessToken(first, admin.token, admin.tenant.id)).key;
    firstUrl = await listen(first);
    secondUrl = await listen(second);
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await storage?.drop();
    await sim?.close();
  });

  it("takes a channel created or disabled on one instance on the other's next requests", async () => {
    // The second instance knows no channel yet.
    expect(await chat(secondUrl)).toBe(404);

    const backup = await createChannel(first, admin.token, admin.tenant.id, channelBody("backup", 0));
    expect(await eventually(async () => (await chat(secondUrl)) === "backup")).toBe(true);

    const primary = await createChannel(first, admin.token, admin.tenant.id, channelBody("primary", 10));
    expect(await eventually(async () => (await chat(secondUrl)) === "primary")).toBe(true);
    expect(await chat(firstUrl)).toBe("primary");

    await first.call("PATCH", `/api/v1/channels/${primary.id}`, {
      token: admin.token,
      tenant: admin.tenant.id,
      body: { status: "disabled" },
    });
    expect(await eventually(async () => (await chat(secondUrl)) === "backup")).toBe(true);
    for (let index = 0; index < 3; index++) expect(await chat(secondUrl)).toBe("backup");

    await first.call("DELETE", `/api/v1/channels/${backup.id}`, { token: admin.token, tenant: admin.tenant.id });
    expect(await eventually(async () => (await chat(secondUrl)) === 503)).toBe(true);
  });

  it("refuses on one instance a token disabled on the other", async () => {
    await createChannel(first, admin.token, admin.tenant.id, channelBody("shared", 0));
    const token = await createAccessToken(first, admin.token, admin.tenant.id, { name: "roaming" });
    // Warm both instances' token caches.
    expect(await eventually(async () => (await chat(secondUrl, token.key)) === "shared")).toBe(true);
    expect(await chat(firstUrl, token.key)).toBe("shared");

    const disabled = await first.call("PATCH", `/api/v1/tokens/${token.id}`, {
      token: admin.token,
      tenant: admin.tenant.id,
      body: { status: "disabled" },
    });
    expect(disabled.body.status).toBe("disabled");
    expect(await chat(firstUrl, token.key)).toBe(401);
    expect(await eventually(async () => (await chat(secondUrl, token.key)) === 401)).toBe(true);
    await expect(client(secondUrl, token.key).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);

    // Re-enabled on the second instance, it works on the first again.
    await second.call("PATCH", `/api/v1/tokens/${token.id}`, { token: admin.token, tenant: admin.tenant.id, body: { status: "enabled" } });
    expect(await eventually(async () => (await chat(firstUrl, token.key)) === "shared")).toBe(true);
  });
});
