import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ChatRequest, FunctionTool } from "../../chat-types.ts";
import type { CallContext, UpstreamRequest } from "../../spec.ts";
import { startSimulator, type UpstreamSimulator } from "../../testing/index.ts";
import { decodeStream, reassemble } from "../../testing/replay.ts";
import { azure } from "./index.ts";

let simulator: UpstreamSimulator;
let context: CallContext;

beforeAll(async () => {
  simulator = await startSimulator();
  context = { baseUrl: simulator.url, credentials: { api_key: "sim-key", api_version: "2024-10-21" }, model: "gpt-4o-mini" };
});
beforeEach(() => simulator.reset());
afterAll(() => simulator.close());

const send = (request: UpstreamRequest) =>
  fetch(request.url, { method: request.method, headers: request.headers, body: request.body ?? null });

const weather: FunctionTool = {
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};
const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content }],
  ...extra,
});

describe("azure against the simulator", () => {
  it("answers a plain request at the deployment path", async () => {
    const response = await send(azure.chat.request(ask("ping"), context).request);
    expect(response.status).toBe(200);
    const completion = azure.chat.response(await response.json(), context);
    expect(completion.choices[0]?.message.content).toBe("Hello from the simulator. You said: ping");
    expect(completion.usage).toEqual({
      prompt_tokens: 1,
      completion_tokens: 7,
      total_tokens: 8,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    expect(completion).not.toHaveProperty("prompt_filter_results");
    const [recorded] = simulator.requestsTo("/openai/deployments/gpt-4o-mini/chat/completions");
    expect(recorded?.headers["api-key"]).toBe("sim-key");
    expect(recorded?.query.get("api-version")).toBe("2024-10-21");
    expect(recorded?.body).not.toHaveProperty("model");
  });

  it("streams text, skipping the prompt-filter chunk, with usage at the end", async () => {
    const request = ask("stream please", { stream: true });
    const response = await send(azure.chat.request(request, context).request);
    const { chunks, done } = await decodeStream(azure, response.body as AsyncIterable<Uint8Array>, context, request);
    expect(done).toBe(true);
    expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
    expect(reassemble(chunks)).toMatchObject({
      content: "Hello from the simulator. You said: stream please",
      finishReason: "stop",
      usage: { prompt_tokens: 2, completion_tokens: 8, total_tokens: 10 },
    });
  });

  it("streams a tool call", async () => {
    const request = ask("what is the weather", { stream: true, tools: [weather] });
    const response = await send(azure.chat.request(request, context).request);
    const { toolCalls, finishReason } = reassemble(
      (await decodeStream(azure, response.body as AsyncIterable<Uint8Array>, context, request)).chunks,
    );
    expect(finishReason).toBe("tool_calls");
    expect(toolCalls).toEqual([
      { id: "call_sim_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } },
    ]);
  });

  it("reads the simulator's error status and in-stream error frame", async () => {
    simulator.fail({ path: "/openai/deployments/" }, { status: 429, message: "slow down", times: 1 });
    const failed = await send(azure.chat.request(ask("hi"), context).request);
    expect(failed.status).toBe(429);
    expect(azure.error(429, await failed.text())).toEqual({ message: "slow down", type: "rate_limit_error", code: "429" });

    simulator.fail({ model: "gpt-4o-mini" }, { errorFrameFirst: true, message: "overloaded", times: 1 });
    const request = ask("hi", { stream: true });
    const response = await send(azure.chat.request(request, context).request);
    const { error, chunks } = await decodeStream(azure, response.body as AsyncIterable<Uint8Array>, context, request);
    expect(chunks).toEqual([]);
    expect(error).toMatchObject({ status: 503, message: "overloaded" });
  });

  it("embeds and lists models", async () => {
    const embedContext = { ...context, model: "text-embedding-3-small" };
    const translated = azure.embeddings?.request({ model: "e", input: ["one", "two words"] }, embedContext);
    const response = await send(translated?.request as UpstreamRequest);
    const embeddings = azure.embeddings?.response(await response.json(), embedContext);
    expect(embeddings?.data.map((item) => item.index)).toEqual([0, 1]);
    expect(embeddings?.usage).toEqual({ prompt_tokens: 3, total_tokens: 3 });

    const models = await send(azure.models?.request(context) as UpstreamRequest);
    expect(azure.models?.response(await models.json())).toEqual(["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]);
  });
});
