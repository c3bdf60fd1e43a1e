import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { suiteSimulators } from "../../test/simulators.ts";
import { createAccessToken, createChannel, gatewayApp, type setupAdmin, type TestApp, usageLogsOf } from "../../test/test-app.ts";
import { openAIInbound } from "./inbound.ts";

/** What a call was refused or failed with (undefined when it succeeded). */
const failureOf = (call: Promise<unknown>): Promise<unknown> =>
  call.then(
    () => undefined,
    (error: unknown) => error,
  );

const hi = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "hi" }] };

/**
 * Bodies no provider could be sent, answers that are not what they claim to be, and a call that throws
 * where nothing expected it to: each ends in a clear error in the client's protocol, with the call's
 * quota reservation given back and its usage recorded.
 */
describe("malformed requests, malformed answers and unforeseen failures", () => {
  const [sim, backup] = suiteSimulators();
  let app: TestApp;
  let admin: Awaited<ReturnType<typeof setupAdmin>>;
  let baseUrl: string;
  let channel: { id: string };

  beforeEach(async () => {
    ({ app, admin, baseUrl, channel } = await gatewayApp(`${sim.url}/v1`));
  });
  afterEach(async () => app.close());

  /** A client on a token that may make one request in all: a reservation held for good refuses the next. */
  async function oneRequestClient() {
    const token = await createAccessToken(app, admin.token, admin.tenant.id, { limits: [{ metric: "requests", window: "total", max: 1 }] });
    return { token, client: new OpenAI({ apiKey: token.key, baseURL: `${baseUrl}/v1`, maxRetries: 0 }) };
  }

  /** A channel of `provider` serving `model` (a key, no limits). */
  const addChannel = (provider: string, model: string, origin: string, extra: Record<string, unknown> = {}) =>
    createChannel(app, admin.token, admin.tenant.id, {
      name: model,
      provider,
      base_url: origin,
      credentials: { api_key: "k" },
      models: [model],
      ...extra,
    });

  /** A client on a token without limits. */
  const openClient = async () =>
    new OpenAI({ apiKey: (await createAccessToken(app, admin.token, admin.tenant.id)).key, baseURL: `${baseUrl}/v1`, maxRetries: 0 });

  const requestLimit = async (tokenId: string) =>
    (await app.call("GET", `/api/v1/tokens/${tokenId}`, { token: admin.token })).body.limits[0];

  const usageLogs = () => usageLogsOf(app, admin.token);

  /** Runs `call` with the channel statistics throwing once they have counted a success, as a fault nothing expects. */
  async function withStatisticsAway<T>(call: () => Promise<T>): Promise<T> {
    const stats = app.services.relay.stats;
    const succeeded = stats.succeeded;
    stats.succeeded = (...args) => {
      succeeded.apply(stats, args);
      throw new Error("channel statistics away");
    };
    try {
      return await call();
    } finally {
      stats.succeeded = succeeded;
    }
  }

  it("refuses with a 400 a body whose messages or tools no provider could be sent, before any upstream call", async () => {
    const { client } = await oneRequestClient();
    const user = (content: unknown) => [{ role: "user", content }];
    const bodies: Record<string, unknown>[] = [
      { messages: user(5) },
      { messages: user([null]) },
      { messages: user([{ type: "text" }]) },
      { messages: user([{ type: "image_url", image_url: { detail: "low" } }]) },
      { messages: [{ role: "assistant", tool_calls: [{ id: "c1", type: "function" }] }] },
      { messages: user("hi"), tools: [{ type: "function" }] },
      { messages: user("hi"), stop: 5 },
    ];
    for (const body of bodies) {
      const refusal = await failureOf(
        client.chat.completions.create({ model: "gpt-4o-mini", ...body } as unknown as OpenAI.ChatCompletionCreateParamsNonStreaming),
      );
      expect(refusal, JSON.stringify(body)).toBeInstanceOf(OpenAI.BadRequestError);
      expect((refusal as InstanceType<typeof OpenAI.BadRequestError>).error).toMatchObject({ type: "invalid_request_error" });
    }
    expect(sim.requests).toHaveLength(0);
    // Parts of types the adapters do not read pass on as they came.
    const passed = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "hi" },
            { type: "input_audio", input_audio: { data: "", format: "wav" } },
          ],
        },
      ],
    });
    expect(passed.choices[0]?.message.content).toContain("hi");
  });

  it("fails over from an answer that is not a chat completion, and settles the call once", async () => {
    await addChannel("openai-compatible", "gpt-4o-mini", backup.url, { priority: -1 });
    sim.fail({ path: "/chat/completions" }, { body: JSON.stringify({ id: "x", object: "chat.completion", model: "gpt-4o-mini" }) });
    const { token, client } = await oneRequestClient();
    const completion = await client.chat.completions.create(hi);
    expect(completion.choices[0]?.message.content).toContain("hi");
    expect(sim.requests).toHaveLength(1);
    expect(backup.requests).toHaveLength(1);
    const [log] = await usageLogs();
    expect(log).toMatchObject({ status_code: 200, attempts: 2 });
    expect(await requestLimit(token.id)).toMatchObject({ used: 1, reserved: 0 });
  });

  it("answers 502 when every channel's answer is malformed, and gives the reservation back", async () => {
    for (const body of [{ object: "chat.completion", choices: [{ message: null }] }, { choices: [{ message: { tool_calls: [{}] } }] }]) {
      sim.fail({ path: "/chat/completions" }, { body: JSON.stringify(body), times: 1 });
    }
    const { token, client } = await oneRequestClient();
    for (let round = 0; round < 2; round++) {
      const failure = await failureOf(client.chat.completions.create(hi));
      expect(failure).toBeInstanceOf(OpenAI.APIError);
      expect((failure as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
      expect((failure as Error).message).toContain("malformed response from upstream");
    }
    expect(await requestLimit(token.id)).toMatchObject({ used: 0, reserved: 0 });
    // The request budget is whole: the next call is served.
    expect((await client.chat.completions.create(hi)).choices[0]?.message.content).toContain("hi");
  });

  it("takes an empty object from an Anthropic, Gemini or Ollama upstream for a malformed answer, not for an empty one", async () => {
    const upstreams = [
      { provider: "anthropic", model: "claude-x", path: "/v1/messages" },
      { provider: "gemini", model: "gemini-x", path: ":generateContent" },
      { provider: "ollama", model: "llama-x", path: "/api/chat" },
    ];
    for (const { provider, model } of upstreams) {
      await addChannel(provider, model, sim.url);
    }
    const { token, client } = await oneRequestClient();
    for (const { model, path } of upstreams) {
      sim.fail({ path }, { body: "{}", times: 1 });
      const failure = await failureOf(client.chat.completions.create({ ...hi, model }));
      expect((failure as InstanceType<typeof OpenAI.APIError>).status, model).toBe(502);
      expect((failure as Error).message).toContain("malformed response from upstream");
      // The same upstream's real answer is served.
      sim.reset();
    }
    expect(await requestLimit(token.id)).toMatchObject({ used: 0, reserved: 0 });
    // Each upstream's real answer is served (on a token without the one-request budget).
    const open = await openClient();
    for (const { model } of upstreams) {
      expect((await open.chat.completions.create({ ...hi, model })).choices[0]?.message.content, model).toContain("hi");
    }
  });

  it("answers 502 to an embeddings answer without its embeddings, and gives the reservation back", async () => {
    const upstreams = [
      { provider: "openai", model: "embed-openai", path: "/embeddings", base_url: `${sim.url}/v1` },
      { provider: "gemini", model: "embed-gemini", path: ":batchEmbedContents", base_url: sim.url },
      { provider: "ollama", model: "embed-ollama", path: "/api/embed", base_url: sim.url },
    ];
    for (const { provider, model, base_url } of upstreams) {
      await addChannel(provider, model, base_url);
    }
    const { token, client } = await oneRequestClient();
    for (const { model, path } of upstreams) {
      sim.fail({ path }, { body: JSON.stringify({ object: "list", model }), times: 1 });
      const failure = await failureOf(client.embeddings.create({ model, input: "hi" }));
      expect((failure as InstanceType<typeof OpenAI.APIError>).status, model).toBe(502);
    }
    expect(await requestLimit(token.id)).toMatchObject({ used: 0, reserved: 0 });
    const logs = await usageLogs();
    expect(logs.map((log: { endpoint: string; status_code: number }) => [log.endpoint, log.status_code])).toEqual([
      ["embeddings", 502],
      ["embeddings", 502],
      ["embeddings", 502],
    ]);
    const served = await client.embeddings.create({ model: "embed-ollama", input: "hi" });
    expect(served.data[0]?.embedding.length).toBeGreaterThan(0);
  });

  it("settles and records a plain call that throws where nothing expected it to, and answers a 500 in the client's protocol", async () => {
    const { token, client } = await oneRequestClient();
    const failure = await withStatisticsAway(() => failureOf(client.chat.completions.create(hi)));
    expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
    expect((failure as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      type: "api_error",
      message: expect.stringContaining("internal error (request"),
    });
    const [log] = await usageLogs();
    expect(log).toMatchObject({ status_code: 500, error: "internal error: channel statistics away", channel_id: channel.id });
    expect(await requestLimit(token.id)).toMatchObject({ used: 0, reserved: 0 });
    expect((await client.chat.completions.create(hi)).choices[0]?.message.content).toContain("hi");
  });

  it("settles and records with its channel an embeddings call that throws where nothing expected it to", async () => {
    const { token, client } = await oneRequestClient();
    const failure = await withStatisticsAway(() => failureOf(client.embeddings.create({ model: "gpt-4o-mini", input: "hi" })));
    expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
    const [log] = await usageLogs();
    expect(log).toMatchObject({ endpoint: "embeddings", status_code: 500, channel_id: channel.id });
    expect(await requestLimit(token.id)).toMatchObject({ used: 0, reserved: 0 });
  });

  it("gives a stream attempt's place in flight back when it throws before the channel heard how it ended", async () => {
    const { token, client } = await oneRequestClient();
    const streamEncoder = openAIInbound.streamEncoder;
    openAIInbound.streamEncoder = () => {
      openAIInbound.streamEncoder = streamEncoder;
      throw new Error("encoder away");
    };
    try {
      const failure = await failureOf(client.chat.completions.create({ ...hi, stream: true }));
      expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
    } finally {
      openAIInbound.streamEncoder = streamEncoder;
    }
    expect(app.services.relay.stats.get(channel.id).inFlight).toBe(0);
    const [log] = await usageLogs();
    expect(log).toMatchObject({ status_code: 500, error: "internal error: encoder away", channel_id: channel.id, completion_tokens: 0 });
    expect(await requestLimit(token.id)).toMatchObject({ used: 0, reserved: 0 });
  });

  it("records and settles a call whose pricing throws at zero cost, and still answers it", async () => {
    const { token, client } = await oneRequestClient();
    const quota = app.services.relay.quota;
    const multiplier = quota.multiplier;
    let calls = 0;
    // The first ask is the admission's estimate; the second, the finished call's cost.
    quota.multiplier = (...args) => {
      if (++calls === 2) throw new Error("multipliers away");
      return multiplier.apply(quota, args);
    };
    try {
      expect((await client.chat.completions.create(hi)).choices[0]?.message.content).toContain("hi");
    } finally {
      quota.multiplier = multiplier;
    }
    expect(calls).toBe(2);
    const [log] = await usageLogs();
    expect(log).toMatchObject({ status_code: 200, cost_micro_usd: 0, channel_id: channel.id });
    expect(await requestLimit(token.id)).toMatchObject({ used: 1, reserved: 0 });
  });

  it("ends a stream that throws after its first content with an error event, recorded once", async () => {
    const { token, client } = await oneRequestClient();
    let text = "";
    const failure = await withStatisticsAway(async () => {
      const stream = await client.chat.completions.create({ ...hi, stream: true });
      return failureOf(
        (async () => {
          for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
        })(),
      );
    });
    expect(text).toContain("hi");
    expect(failure).toBeInstanceOf(OpenAI.APIError);
    expect((failure as Error).message).toMatch(/internal error \(request /);
    const logs = await usageLogs();
    expect(logs).toHaveLength(1);
    // Recorded with its channel and the usage of what the client got, and counted.
    expect(logs[0]).toMatchObject({ status_code: 500, error: "internal error: channel statistics away", channel_id: channel.id });
    expect(logs[0].completion_tokens).toBeGreaterThan(0);
    expect(await requestLimit(token.id)).toMatchObject({ used: 1, reserved: 0 });
  });

  it("answers an unforeseen failure on /v1/messages in Anthropic's shape, settled", async () => {
    const { token } = await oneRequestClient();
    const anthropic = new Anthropic({ apiKey: token.key, baseURL: baseUrl, maxRetries: 0 });
    const failure = await withStatisticsAway(() =>
      failureOf(anthropic.messages.create({ model: "gpt-4o-mini", max_tokens: 50, messages: [{ role: "user", content: "hi" }] })),
    );
    expect(failure).toBeInstanceOf(Anthropic.InternalServerError);
    expect((failure as InstanceType<typeof Anthropic.APIError>).error).toMatchObject({ type: "error", error: { type: "api_error" } });
    expect(await requestLimit(token.id)).toMatchObject({ used: 0, reserved: 0 });
  });

  it("passes tools of other kinds than functions to an OpenAI channel, leaves them out for an Anthropic one, and serves custom tool calls", async () => {
    await addChannel("anthropic", "claude-x", sim.url);
    const client = await openClient();
    const tools = [
      { type: "custom", custom: { name: "grammar" } },
      { type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } },
    ] as unknown as OpenAI.ChatCompletionTool[];
    await client.chat.completions.create({ ...hi, tools });
    expect((sim.requests[0]?.body as { tools?: unknown[] } | undefined)?.tools).toHaveLength(2);
    const answer = {
      id: "chatcmpl-custom",
      object: "chat.completion",
      created: 1,
      model: "gpt-4o-mini",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c1", type: "custom", custom: { name: "grammar", input: "x" } }],
          },
          finish_reason: "tool_calls",
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    };
    sim.fail({ path: "/chat/completions" }, { body: JSON.stringify(answer), times: 1 });
    const custom = await client.chat.completions.create({ ...hi, tools });
    expect(custom.choices[0]?.message.tool_calls?.[0]).toMatchObject({ type: "custom", custom: { name: "grammar", input: "x" } });
    sim.reset();
    const { response } = await client.chat.completions.create({ ...hi, model: "claude-x", tools }).withResponse();
    expect(response.headers.get("x-lyss-warnings")).toContain("Anthropic supports function tools only");
    expect((sim.requests[0]?.body as { tools?: { name: string }[] } | undefined)?.tools?.map((tool) => tool.name)).toEqual(["lookup"]);
  });
});
