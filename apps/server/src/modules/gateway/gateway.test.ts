import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { eventually } from "../../test/eventually.ts";
import { suiteSimulators } from "../../test/simulators.ts";
import { createAccessToken, createChannel, createTestApp, listen, setupAdmin, type TestApp, usageLogsOf } from "../../test/test-app.ts";

describe("OpenAI-compatible data plane through a listening server", () => {
  const [sim, backup] = suiteSimulators();
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let client: OpenAI;
  let baseUrl: string;
  let key: string;

  beforeEach(async () => {
    app = await createTestApp({ env: { LYSS_STREAM_KEEPALIVE_MS: "200" } });
    admin = await setupAdmin(app);
    await createChannel(app, admin.token, admin.tenant.id, {
      name: "primary",
      provider: "openai",
      base_url: `${sim.url}/v1`,
      credentials: { api_key: "sk-upstream-primary" },
      models: ["gpt-4o-mini", "text-embedding-3-small"],
      model_mapping: { smart: "gpt-4o" },
      priority: 10,
    });
    await createChannel(app, admin.token, admin.tenant.id, {
      name: "backup",
      provider: "openai-compatible",
      base_url: backup.url,
      credentials: { api_key: "sk-upstream-backup" },
      models: ["gpt-4o-mini"],
      priority: 0,
    });
    key = (await createAccessToken(app, admin.token, admin.tenant.id, { allow_dry_run: true })).key;
    baseUrl = await listen(app);
    client = new OpenAI({ apiKey: key, baseURL: `${baseUrl}/v1`, maxRetries: 0 });
  });
  afterEach(async () => app.close());

  /** A streamed answer to `content` as the SDK reads it: its text, its chunks, and its usage when asked for. */
  async function streamed(content: string, includeUsage = false) {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content }],
      stream: true,
      ...(includeUsage ? { stream_options: { include_usage: true } } : {}),
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    return { text, usage, chunks };
  }

  /** The text of a streamed answer to `content`. */
  const streamedText = async (content: string) => (await streamed(content)).text;

  it("answers a plain chat completion from the highest-priority channel and records usage", async () => {
    const completion = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi there" }] });
    expect(completion.choices[0]?.message.content).toBe("Hello from the simulator. You said: hi there");
    expect(completion.model).toBe("gpt-4o-mini");
    expect(completion.usage?.total_tokens).toBeGreaterThan(0);
    expect(sim.requestsTo("/chat/completions")).toHaveLength(1);
    expect(backup.requests).toHaveLength(0);
    const upstream = sim.requestsTo("/chat/completions")[0];
    expect(upstream?.headers.authorization).toBe("Bearer sk-upstream-primary");
    expect(upstream?.path).toBe("/v1/chat/completions");

    await app.services.usage.flush();
    const logs = await app.call("GET", "/api/v1/usage/logs", { token: admin.token });
    expect(logs.body.data).toHaveLength(1);
    expect(logs.body.data[0]).toMatchObject({
      requested_model: "gpt-4o-mini",
      status_code: 200,
      stream: false,
      attempts: 1,
      endpoint: "chat",
    });
    expect(logs.body.data[0].prompt_tokens).toBe(completion.usage?.prompt_tokens);
  });

  it("maps public model names to upstream names", async () => {
    const completion = await client.chat.completions.create({ model: "smart", messages: [{ role: "user", content: "x" }] });
    expect(completion.model).toBe("smart");
    expect((sim.requestsTo("/chat/completions")[0]?.body as { model: string } | undefined)?.model).toBe("gpt-4o");
    // Streamed chunks pass through as the upstream wrote them, but with the public name.
    const stream = await client.chat.completions.create({ model: "smart", messages: [{ role: "user", content: "x" }], stream: true });
    const models = new Set<string>();
    let text = "";
    for await (const chunk of stream) {
      models.add(chunk.model);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    expect([...models]).toEqual(["smart"]);
    expect(text).toBe("Hello from the simulator. You said: x");
  });

  it("streams chunk by chunk with usage in the last chunk", async () => {
    const { text, usage, chunks } = await streamed("stream please", true);
    expect(text).toBe("Hello from the simulator. You said: stream please");
    expect(chunks).toBeGreaterThan(4);
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    // The stream is written straight to the socket: the headers set before it began still go out.
    const raw = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-request-id": "stream-headers-1" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], stream: true }),
    });
    expect(raw.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(raw.headers.get("x-request-id")).toBe("stream-headers-1");
    expect((await raw.text()).endsWith("data: [DONE]\n\n")).toBe(true);
    // Usage is always asked for upstream, so it can be recorded.
    expect((sim.requestsTo("/chat/completions")[0]?.body as { stream_options: unknown } | undefined)?.stream_options).toEqual({
      include_usage: true,
    });
  });

  it("relays a stream that came whole in one piece: every frame, the usage, one record", async () => {
    sim.fail({ path: "/chat/completions" }, { onePiece: true, times: 1 });
    const { text, usage } = await streamed("in one go", true);
    expect(text).toBe("Hello from the simulator. You said: in one go");
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    await app.services.usage.flush();
    const page = await app.call("GET", "/api/v1/usage/logs", { token: admin.token });
    expect(page.body.data).toHaveLength(1);
    expect(page.body.data[0]).toMatchObject({ status_code: 200, stream: true, completion_tokens: usage?.completion_tokens });
  });

  it("sends a stream that came whole before any of it went out with its length, and a paced one chunked", async () => {
    const raw = async (content: string) => {
      const answer = await fetch(`${baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content }], stream: true }),
      });
      const body = Buffer.from(await answer.arrayBuffer());
      const text = body.toString("utf8");
      const frames = text.split("\n\n").filter((frame) => frame.startsWith("data: {"));
      const said = frames.map((frame) => JSON.parse(frame.slice(6)).choices[0]?.delta?.content ?? "").join("");
      return { headers: answer.headers, body, text, said };
    };
    sim.fail({ path: "/chat/completions" }, { onePiece: true, times: 1 });
    const whole = await raw("in one go, déjà vu 日本");
    expect(whole.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(whole.headers.get("transfer-encoding")).toBeNull();
    expect(whole.headers.get("content-length")).toBe(String(whole.body.length));
    expect(whole.said).toBe("Hello from the simulator. You said: in one go, déjà vu 日本");
    expect(whole.text.endsWith("data: [DONE]\n\n")).toBe(true);

    sim.fail({ path: "/chat/completions" }, { frameDelayMs: 5, times: 1 });
    const paced = await raw("one frame at a time");
    expect(paced.headers.get("transfer-encoding")).toBe("chunked");
    expect(paced.headers.get("content-length")).toBeNull();
    expect(paced.said).toBe("Hello from the simulator. You said: one frame at a time");
    expect(paced.text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("passes the padding OpenAI adds to each streamed frame on as it came, renamed model or not", async () => {
    for (const model of ["gpt-4o-mini", "smart"]) {
      const raw = await fetch(`${baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ model, messages: [{ role: "user", content: "padded" }], stream: true }),
      });
      const chunks = (await raw.text())
        .split("\n\n")
        .filter((event) => event.startsWith("data: {"))
        .map((event) => JSON.parse(event.slice(6)) as { model: string; obfuscation?: string; choices: { delta: { content?: string } }[] });
      expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("")).toBe("Hello from the simulator. You said: padded");
      expect(new Set(chunks.map((chunk) => chunk.model))).toEqual(new Set([model]));
      // Each frame's own padding, not one frame's for all.
      const paddings = chunks.map((chunk) => chunk.obfuscation);
      expect(paddings.every((value) => typeof value === "string" && value.length > 0)).toBe(true);
      expect(new Set(paddings).size).toBeGreaterThan(3);
    }
  });

  it("streams tool calls with their arguments in pieces", async () => {
    const stream = client.chat.completions.stream({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "what is the weather in Paris?" }],
      tools: [
        { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } },
      ],
    });
    let argumentDeltas = 0;
    stream.on("chunk", (chunk) => {
      if (chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments) argumentDeltas++;
    });
    const final = await stream.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === "function" && call.function.name).toBe("get_weather");
    expect(call?.type === "function" && JSON.parse(call.function.arguments)).toEqual({ city: "Paris", unit: "celsius" });
    expect(final.choices[0]?.finish_reason).toBe("tool_calls");
    expect(argumentDeltas).toBeGreaterThan(1);
  });

  it("creates embeddings and lists models, mapped names included", async () => {
    const result = await client.embeddings.create({ model: "text-embedding-3-small", input: ["a", "b c"] });
    expect(result.data).toHaveLength(2);
    expect(result.data[0]?.embedding).toHaveLength(8);
    const models = await client.models.list();
    expect(models.data.map((model) => model.id)).toEqual(["gpt-4o-mini", "smart", "text-embedding-3-small"]);
    expect((await client.models.retrieve("smart")).id).toBe("smart");
    await expect(client.models.retrieve("nope")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("refuses bad keys, unknown models and models the key may not use, in OpenAI's error shape", async () => {
    const bad = new OpenAI({ apiKey: "sk-wrong", baseURL: `${baseUrl}/v1`, maxRetries: 0 });
    const unauthorized = await bad.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
      .catch((error) => error);
    expect(unauthorized).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(unauthorized.error).toMatchObject({ type: "invalid_request_error", code: "invalid_api_key" });

    const unknown = await client.chat.completions
      .create({ model: "nope", messages: [{ role: "user", content: "x" }] })
      .catch((error) => error);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect(unknown.code).toBe("model_not_found");

    const limited = (await createAccessToken(app, admin.token, admin.tenant.id, { models: ["smart"] })).key;
    const narrow = new OpenAI({ apiKey: limited, baseURL: `${baseUrl}/v1`, maxRetries: 0 });
    const denied = await narrow.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] })
      .catch((error) => error);
    expect(denied).toBeInstanceOf(OpenAI.PermissionDeniedError);
    expect(denied.code).toBe("model_not_allowed");
    expect((await narrow.models.list()).data.map((model) => model.id)).toEqual(["smart"]);

    const invalid = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [] }).catch((error) => error);
    expect(invalid).toBeInstanceOf(OpenAI.BadRequestError);
    expect(sim.requests).toHaveLength(0);

    // x-api-key works as well as a bearer token.
    const viaHeader = await fetch(`${baseUrl}/v1/models`, { headers: { "x-api-key": key } });
    expect(viaHeader.status).toBe(200);
  });

  it("fails over to the next channel on 5xx, 429 and error frames before content, but not on 400", async () => {
    sim.fail({ path: "/chat/completions" }, { status: 500, times: 1 });
    const first = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "one" }] });
    expect(first.choices[0]?.message.content).toContain("one");
    expect(backup.requestsTo("/chat/completions")).toHaveLength(1);

    sim.fail({ path: "/chat/completions" }, { errorFrameFirst: true, times: 1 });
    expect(await streamedText("two")).toContain("two");
    expect(backup.requestsTo("/chat/completions")).toHaveLength(2);

    sim.fail({ path: "/chat/completions" }, { status: 400, message: "bad temperature", times: 1 });
    const rejected = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "three" }] })
      .catch((error) => error);
    expect(rejected).toBeInstanceOf(OpenAI.BadRequestError);
    expect(rejected.message).toContain("bad temperature");
    expect(backup.requestsTo("/chat/completions")).toHaveLength(2);

    sim.fail({ path: "/chat/completions" }, { status: 503 });
    backup.fail({ path: "/chat/completions" }, { status: 503 });
    const exhausted = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "four" }] })
      .catch((error) => error);
    expect(exhausted.status).toBe(503);
    await app.services.usage.flush();
    const failed = await app.call("GET", "/api/v1/usage/logs?status=error", { token: admin.token });
    expect(failed.body.data[0]).toMatchObject({ status_code: 503, attempts: 2 });
  });

  it("marks a channel whose credentials the upstream refuses, and routes around it", async () => {
    sim.fail({ path: "/chat/completions" }, { status: 401, message: "invalid key", times: 1 });
    await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] });
    // biome-ignore lint/suspicious/noExplicitAny: a JSON answer read loosely
    const health: any = await (await fetch(`${baseUrl}/v1/models/health`, { headers: { authorization: `Bearer ${key}` } })).json();
    const model = health.data.find((entry: { model: string }) => entry.model === "gpt-4o-mini");
    const primary = model.channels.find((channel: { name: string }) => channel.name === "primary");
    expect(primary).toMatchObject({ credentials_failing: true, healthy: false });
    // The next request goes to the healthy channel first.
    await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "y" }] });
    expect(sim.requestsTo("/chat/completions")).toHaveLength(1);
    expect(backup.requestsTo("/chat/completions")).toHaveLength(2);
  });

  it("sends a protocol-correct error event when the upstream drops after the first content", async () => {
    sim.fail({ path: "/chat/completions" }, { dropAfterFrames: 3, times: 1 });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "drop me" }],
      stream: true,
    });
    let text = "";
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    })().catch((caught) => caught);
    expect(text.length).toBeGreaterThan(0);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    // No retry after content reached the client.
    expect(backup.requests).toHaveLength(0);
  });

  /** A slow stream to `content`, stopped by the client at its first content. */
  async function stopAtFirstContent(content: string) {
    sim.fail({ path: "/chat/completions" }, { frameDelayMs: 300, times: 1 });
    const controller = new AbortController();
    const stream = await client.chat.completions.create(
      { model: "gpt-4o-mini", messages: [{ role: "user", content }], stream: true },
      { signal: controller.signal },
    );
    await (async () => {
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) controller.abort();
      }
    })().catch(() => undefined);
  }

  /** The usage logs once the call's record has been written. */
  const usageLogs = () => usageLogsOf(app, admin.token);

  it("aborts the upstream request when the client goes away", async () => {
    await stopAtFirstContent("slow");
    const upstream = await eventually(() => (sim.requests[0]?.aborted ? sim.requests[0] : undefined));
    expect(upstream.completed).toBe(false);
    const logs = await usageLogs();
    expect(logs[0].status_code).toBe(499);
  });

  it("records an estimate of a stream stopped mid-way, its text naming special tokens included", async () => {
    await stopAtFirstContent("What does <|endoftext|> mean to a tokenizer, and <|fim_prefix|>?");
    const logs = await usageLogs();
    expect(logs[0].status_code).toBe(499);
    // The special tokens count as the text they are: "<|endoftext|>" alone is several tokens.
    expect(logs[0].prompt_tokens).toBeGreaterThan(20);
    expect(logs[0].completion_tokens).toBeGreaterThan(0);
  });

  it("lets go of an upstream that keeps its stream open after [DONE], and answers the client at once", async () => {
    sim.fail({ path: "/chat/completions" }, { holdOpen: true, times: 1 });
    expect(await streamedText("and then?")).toBe("Hello from the simulator. You said: and then?");
    // The upstream's response was never ended: Lyss closed it once the stream was complete.
    const upstream = await eventually(() => (sim.requests[0]?.aborted ? sim.requests[0] : undefined));
    expect(upstream.completed).toBe(false);
    await app.services.usage.flush();
    const page = await app.call("GET", "/api/v1/usage/logs", { token: admin.token });
    expect(page.body.data[0]).toMatchObject({ status_code: 200, stream: true });
  });

  it("sends keep-alive comments while the upstream is slow to start", async () => {
    sim.fail({ path: "/chat/completions" }, { delayMs: 700, times: 1 });
    const response = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "wait" }], stream: true }),
    });
    const text = await response.text();
    expect(text.startsWith(": keep-alive")).toBe(true);
    const content = text
      .split("\n")
      .filter((line) => line.startsWith("data: {"))
      .map((line) => JSON.parse(line.slice(6)).choices[0]?.delta.content ?? "")
      .join("");
    expect(content).toBe("Hello from the simulator. You said: wait");
    expect(text.trim().endsWith("data: [DONE]")).toBe(true);
  });

  it("passes a chat request on as the client's own bytes, and serialises one it must change", async () => {
    const post = (body: string) =>
      fetch(`${baseUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body,
      });
    const sent = () => sim.requestsTo("/chat/completions").at(-1)?.text;

    // As written, an integer beyond a double's precision included.
    const plain = '{ "model": "gpt-4o-mini",\n "messages": [{"role": "user", "content": "caf\\u00e9"}], "seed": 12345678901234567890 }';
    expect((await post(plain)).status).toBe(200);
    expect(sent()).toBe(plain);
    // Streamed: the usage is asked for by splicing stream_options in.
    const streamed = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"stream":true}';
    const stream = await post(streamed);
    expect(await stream.text()).toContain("data: [DONE]");
    expect(sent()).toBe(`${streamed.slice(0, -1)},"stream_options":{"include_usage":true}}`);
    // A mapped model, or one named twice (the last one is routed and priced), goes out serialised.
    await post('{"model":"smart","messages":[{"role":"user","content":"x"}]}');
    expect(JSON.parse(sent() ?? "").model).toBe("gpt-4o");
    const twice = await post('{"model":"smart","model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}');
    expect(twice.status).toBe(200);
    expect(sent()?.split('"model"')).toHaveLength(2);
    expect(JSON.parse(sent() ?? "").model).toBe("gpt-4o-mini");
    // Embeddings the same way.
    const embedding = '{"input": ["a", "b c"], "model": "text-embedding-3-small", "encoding_format": "float"}';
    const embedded = await fetch(`${baseUrl}/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: embedding,
    });
    expect(embedded.status).toBe(200);
    expect(sim.requestsTo("/embeddings").at(-1)?.text).toBe(embedding);
    // Keys alike but for letter case (a server decoding JSON as Go does reads the last of them) are refused.
    for (const body of [
      '{"model":"gpt-4o-mini","MODEL":"gpt-4o","messages":[{"role":"user","content":"x"}]}',
      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"Messages":[{"role":"user","content":"y"}]}',
      '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":{"include_usage":true,"Include_Usage":false}}',
    ]) {
      const refused = await post(body);
      expect(refused.status, body).toBe(400);
      expect(await refused.json()).toMatchObject({ error: { type: "invalid_request_error" } });
    }
    // Fastify's refusal of prototype keys still holds.
    const poisoned = await post('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"__proto__":{"admin":true}}');
    expect(poisoned.status).toBe(400);
    expect(await poisoned.json()).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("answers a dry run with the chosen channel and the masked upstream request, sending nothing", async () => {
    const response = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json", "x-lyss-dry-run": "1" },
      body: JSON.stringify({ model: "smart", messages: [{ role: "user", content: "plan" }] }),
    });
    // biome-ignore lint/suspicious/noExplicitAny: a JSON answer read loosely
    const plan: any = await response.json();
    expect(plan).toMatchObject({ dry_run: true, channel: { name: "primary", provider: "openai" } });
    expect(plan.upstream_request.url).toBe(`${sim.url}/v1/chat/completions`);
    expect(plan.upstream_request.body.model).toBe("gpt-4o");
    expect(plan.upstream_request.headers.authorization).not.toContain("sk-upstream-primary");
    expect(sim.requests).toHaveLength(0);

    const plain = (await createAccessToken(app, admin.token, admin.tenant.id)).key;
    const refused = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${plain}`, "content-type": "application/json", "x-lyss-dry-run": "1" },
      body: JSON.stringify({ model: "smart", messages: [{ role: "user", content: "plan" }] }),
    });
    expect(refused.status).toBe(403);
  });

  it("takes channel and token changes on the next request", async () => {
    const channels = await app.call("GET", "/api/v1/channels", { token: admin.token });
    const primary = channels.body.data.find((channel: { name: string }) => channel.name === "primary");
    await app.call("PATCH", `/api/v1/channels/${primary.id}`, { token: admin.token, body: { status: "disabled" } });
    await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] });
    expect(sim.requests).toHaveLength(0);
    expect(backup.requests).toHaveLength(1);

    const tokens = await app.call("GET", "/api/v1/tokens", { token: admin.token });
    for (const token of tokens.body.data)
      await app.call("PATCH", `/api/v1/tokens/${token.id}`, { token: admin.token, body: { status: "disabled" } });
    await expect(client.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});
