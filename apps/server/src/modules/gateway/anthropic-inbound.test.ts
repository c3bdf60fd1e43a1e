import Anthropic from "@anthropic-ai/sdk";
import { startSimulator, type UpstreamSimulator } from "@lyss/llm/testing";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createAccessToken, createChannel, createTestApp, listen, setupAdmin, type TestApp } from "../../test/test-app.ts";

describe("Anthropic Messages endpoint through a listening server", () => {
  let sim: UpstreamSimulator;
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let client: Anthropic;

  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(async () => sim.close());

  beforeEach(async () => {
    sim.reset();
    app = await createTestApp();
    admin = await setupAdmin(app);
    await createChannel(app, admin.token, admin.tenant.id, {
      name: "openai",
      provider: "openai",
      base_url: sim.url,
      credentials: { api_key: "sk-openai" },
      models: ["gpt-4o-mini"],
    });
    await createChannel(app, admin.token, admin.tenant.id, {
      name: "anthropic",
      provider: "anthropic",
      base_url: sim.url,
      credentials: { api_key: "sk-ant-upstream" },
      models: ["claude-sonnet-4-5"],
    });
    const key = (await createAccessToken(app, admin.token, admin.tenant.id)).key;
    client = new Anthropic({ apiKey: key, baseURL: await listen(app), maxRetries: 0 });
  });
  afterEach(async () => app.close());

  for (const model of ["gpt-4o-mini", "claude-sonnet-4-5"]) {
    it(`answers plain and streamed messages from a channel serving ${model}`, async () => {
      const message = await client.messages.create({
        model,
        max_tokens: 100,
        system: "be brief",
        messages: [{ role: "user", content: "hello" }],
      });
      expect(message.type).toBe("message");
      expect(message.model).toBe(model);
      expect(message.content[0]?.type === "text" && message.content[0].text).toBe("Hello from the simulator. You said: hello");
      expect(message.stop_reason).toBe("end_turn");
      expect(message.usage.output_tokens).toBeGreaterThan(0);

      const stream = client.messages.stream({ model, max_tokens: 100, messages: [{ role: "user", content: "streamed" }] });
      let deltas = 0;
      stream.on("text", () => deltas++);
      const final = await stream.finalMessage();
      expect(final.content[0]?.type === "text" && final.content[0].text).toBe("Hello from the simulator. You said: streamed");
      expect(deltas).toBeGreaterThan(1);
      expect(final.usage.output_tokens).toBeGreaterThan(0);
    });

    it(`streams tool use with incremental input from ${model}`, async () => {
      const stream = client.messages.stream({
        model,
        max_tokens: 200,
        tools: [
          { name: "get_weather", description: "weather", input_schema: { type: "object", properties: { city: { type: "string" } } } },
        ],
        messages: [{ role: "user", content: "what is the weather in Paris?" }],
      });
      let jsonDeltas = 0;
      stream.on("inputJson", () => jsonDeltas++);
      const final = await stream.finalMessage();
      const toolUse = final.content.find((block) => block.type === "tool_use");
      expect(toolUse?.type === "tool_use" && toolUse.name).toBe("get_weather");
      expect(toolUse?.type === "tool_use" && toolUse.input).toEqual({ city: "Paris", unit: "celsius" });
      expect(final.stop_reason).toBe("tool_use");
      expect(jsonDeltas).toBeGreaterThan(1);
    });
  }

  it("streams a whole message from the next channel when the first breaks off before any content", async () => {
    await createChannel(app, admin.token, admin.tenant.id, {
      name: "openai backup",
      provider: "openai",
      base_url: sim.url,
      credentials: { api_key: "sk-openai-backup" },
      models: ["gpt-4o-mini"],
      priority: -1,
    });
    // The first channel sends its role frame (no content yet) and drops: what that attempt encoded is
    // dropped with it, and the client's message starts once, from the next channel.
    sim.fail({ path: "/chat/completions" }, { dropAfterFrames: 1, times: 1 });
    const stream = client.messages.stream({ model: "gpt-4o-mini", max_tokens: 100, messages: [{ role: "user", content: "again" }] });
    const final = await stream.finalMessage();
    expect(final.content[0]?.type === "text" && final.content[0].text).toBe("Hello from the simulator. You said: again");
    expect(sim.requestsTo("/chat/completions")).toHaveLength(2);
  });

  it("translates the request for an OpenAI upstream", async () => {
    await client.messages.create({ model: "gpt-4o-mini", max_tokens: 50, system: "sys", messages: [{ role: "user", content: "hi" }] });
    const upstream = sim.requestsTo("/v1/chat/completions")[0]?.body as {
      messages: { role: string; content: unknown }[];
      max_tokens: number;
    };
    expect(upstream.messages[0]).toEqual({ role: "system", content: "sys" });
    expect(upstream.max_tokens).toBe(50);
  });

  it("answers errors in Anthropic's shape", async () => {
    const bad = new Anthropic({ apiKey: "sk-bad", baseURL: client.baseURL, maxRetries: 0 });
    await expect(
      bad.messages.create({ model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "x" }] }),
    ).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
    const missing = await client.messages
      .create({ model: "nope", max_tokens: 5, messages: [{ role: "user", content: "x" }] })
      .catch((error) => error);
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError);
    expect(missing.error).toMatchObject({ type: "error", error: { type: "not_found_error" } });
    const invalid = await fetch(`${client.baseURL}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": client.apiKey ?? "", "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [] }),
    });
    expect(invalid.status).toBe(400);
    expect(await invalid.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    sim.fail({ path: "/chat/completions" }, { status: 503 });
    const failed = await client.messages
      .create({ model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "x" }] })
      .catch((error) => error);
    expect(failed.status).toBe(503);
    expect(failed.error.type).toBe("error");
  });
});
