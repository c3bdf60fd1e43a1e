import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ChatChunk, ChatRequest } from "../../chat-types.ts";
import type { CallContext, UpstreamErrorInfo } from "../../spec.ts";
import { readFrames } from "../../stream-reader.ts";
import { startSimulator, type UpstreamSimulator } from "../../testing/index.ts";
import { anthropic } from "./index.ts";

let simulator: UpstreamSimulator;
let context: CallContext;

beforeAll(async () => {
  simulator = await startSimulator();
  context = { baseUrl: simulator.url, credentials: { api_key: "sk-ant-sim" }, model: "claude-sonnet-4-5" };
});
afterAll(() => simulator.close());
beforeEach(() => simulator.reset());

const weatherTool: NonNullable<ChatRequest["tools"]>[number] = {
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};

/** Sends a chat request the way the core does and reads the answer back in OpenAI's format. */
async function chat(body: ChatRequest) {
  const { request } = anthropic.chat.request(body, context);
  const response = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body });
  if (!response.ok) return { status: response.status, error: anthropic.error(response.status, await response.text()) };
  if (!body.stream) return { status: response.status, completion: anthropic.chat.response(await response.json(), context) };
  const decoder = anthropic.chat.stream(context, body);
  const chunks: ChatChunk[] = [];
  let error: (UpstreamErrorInfo & { status: number }) | undefined;
  for await (const frame of readFrames(response.body as unknown as AsyncIterable<Uint8Array>, anthropic.streamFormat)) {
    const decoded = decoder.decode(frame);
    chunks.push(...decoded.chunks);
    error ??= decoded.error;
    if (decoded.done || decoded.error) break;
  }
  chunks.push(...decoder.flush());
  const deltas = chunks.flatMap((chunk) => chunk.choices.map((choice) => choice.delta));
  return {
    status: response.status,
    error,
    content: deltas.map((delta) => delta.content ?? "").join(""),
    toolArguments: deltas
      .flatMap((delta) => delta.tool_calls ?? [])
      .map((call) => call.function?.arguments ?? "")
      .join(""),
    toolNames: deltas.flatMap((delta) => delta.tool_calls ?? []).flatMap((call) => call.function?.name ?? []),
    finish: chunks.flatMap((chunk) => chunk.choices.flatMap((choice) => choice.finish_reason ?? [])),
    usage: chunks.at(-1)?.usage,
  };
}

const messages: ChatRequest["messages"] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "hello there" },
];

describe("anthropic adapter against the simulator", () => {
  it("sends Anthropic's request shape and reads a plain answer", async () => {
    const result = await chat({ model: "alias", messages });
    expect(result.completion?.choices[0]?.message.content).toBe("Hello from the simulator. You said: hello there");
    expect(result.completion?.choices[0]?.finish_reason).toBe("stop");
    expect(result.completion?.usage).toEqual({
      prompt_tokens: 4,
      completion_tokens: 8,
      total_tokens: 12,
      prompt_tokens_details: { cached_tokens: 0 },
    });
    const [recorded] = simulator.requestsTo("/v1/messages");
    expect(recorded?.headers["x-api-key"]).toBe("sk-ant-sim");
    expect(recorded?.headers["anthropic-version"]).toBe("2023-06-01");
    expect(recorded?.body).toMatchObject({ model: "claude-sonnet-4-5", system: "Be brief.", max_tokens: 4096 });
  });

  it("streams text with usage at the end", async () => {
    const result = await chat({ model: "alias", messages, stream: true });
    expect(result).toMatchObject({
      status: 200,
      error: undefined,
      content: "Hello from the simulator. You said: hello there",
      finish: ["stop"],
      usage: { prompt_tokens: 4, completion_tokens: 8, total_tokens: 12 },
    });
  });

  it("streams a tool call, plain and forced", async () => {
    const ask: ChatRequest["messages"] = [{ role: "user", content: "What's the weather in Paris?" }];
    const auto = await chat({ model: "alias", messages: ask, tools: [weatherTool], stream: true });
    expect(auto).toMatchObject({ toolNames: ["get_weather"], toolArguments: '{"city":"Paris","unit":"celsius"}', finish: ["tool_calls"] });
    const forced = await chat({
      model: "alias",
      messages: messages,
      tools: [weatherTool],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    expect(forced.completion?.choices[0]?.message.tool_calls?.[0]?.function).toEqual({
      name: "get_weather",
      arguments: '{"city":"Paris","unit":"celsius"}',
    });
  });

  it("carries a tool result round trip", async () => {
    const result = await chat({
      model: "alias",
      stream: true,
      messages: [
        { role: "user", content: "Say hi" },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_sim_1", type: "function", function: { name: "get_weather", arguments: "{}" } }],
        },
        { role: "tool", tool_call_id: "call_sim_1", content: "sunny" },
      ],
    });
    expect(result.content).toBe("Hello from the simulator. You said: Say hi");
  });

  it("lists models, while OpenAI clients of the same path still get OpenAI's list", async () => {
    const request = anthropic.models?.request(context);
    if (!request) throw new Error("anthropic lists models");
    const response = await fetch(request.url, { headers: request.headers });
    expect(anthropic.models?.response(await response.json())).toEqual(["claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"]);
    const openAI = (await (await fetch(`${simulator.url}/v1/models`, { headers: { authorization: "Bearer x" } })).json()) as {
      data: { id: string }[];
    };
    expect(openAI.data.map((model) => model.id)).toContain("gpt-4o-mini");
  });

  it("reads injected error statuses in Anthropic's shape", async () => {
    simulator.fail({ path: "/v1/messages" }, { status: 529, message: "Overloaded", times: 1 });
    expect(await chat({ model: "alias", messages })).toEqual({
      status: 529,
      error: { message: "Overloaded", type: "api_error", code: "overloaded_error" },
    });
    simulator.fail({ path: "/v1/messages" }, { status: 429, message: "slow down", times: 1 });
    expect((await chat({ model: "alias", messages })).error).toEqual({
      message: "slow down",
      type: "rate_limit_error",
      code: "rate_limit_error",
    });
  });

  it("reports an error frame before any content so the core can fail over", async () => {
    simulator.fail({ path: "/v1/messages" }, { errorFrameFirst: true, message: "Overloaded", times: 1 });
    const result = await chat({ model: "alias", messages, stream: true });
    expect(result.error).toEqual({ status: 503, message: "Overloaded", type: "api_error", code: "overloaded_error" });
    expect(result.content).toBe("");
  });

  it("reports a malformed frame mid-stream", async () => {
    simulator.fail({ path: "/v1/messages" }, { malformedAfterFrames: 4, times: 1 });
    const result = await chat({ model: "alias", messages, stream: true });
    expect(result.error).toMatchObject({ status: 502, message: "malformed stream frame from upstream" });
  });

  it("is refused like Anthropic refuses a system role or a missing key", async () => {
    const body = { model: "claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "system", content: "x" }] };
    const headers = { "content-type": "application/json", "anthropic-version": "2023-06-01" };
    const noKey = await fetch(`${simulator.url}/v1/messages`, { method: "POST", headers, body: JSON.stringify(body) });
    expect(noKey.status).toBe(401);
    const bad = await fetch(`${simulator.url}/v1/messages`, {
      method: "POST",
      headers: { ...headers, "x-api-key": "k" },
      body: JSON.stringify(body),
    });
    expect(bad.status).toBe(400);
    expect(anthropic.error(400, await bad.text()).code).toBe("invalid_request_error");
  });
});
