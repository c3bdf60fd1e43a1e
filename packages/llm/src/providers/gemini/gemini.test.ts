import { describe, expect, it } from "vitest";
import type { ChatRequest } from "../../chat-types.ts";
import { requestJson } from "../../common.ts";
import type { CallContext } from "../../spec.ts";
import { readFixture, reassemble, replayFixture } from "../../testing/replay.ts";
import { gemini } from "./index.ts";

const fixture = (name: string) => new URL(`./__fixtures__/${name}`, import.meta.url);
const json = (name: string) => JSON.parse(readFixture(fixture(name))) as unknown;

const context: CallContext = {
  baseUrl: "https://generativelanguage.googleapis.com",
  credentials: { api_key: "k" },
  model: "gemini-2.0-flash",
};
const streamed: ChatRequest = { model: "gemini", messages: [{ role: "user", content: "Hello" }], stream: true };
const callId = expect.stringMatching(/^call_[\w-]{16}$/);

describe("gemini recorded responses", () => {
  it("reads a plain answer with thoughts, cached and reasoning tokens", () => {
    expect(gemini.chat.response(json("generate-content.json"), context)).toEqual({
      id: "chatcmpl-mK42Z6uXAZ2wnvgPq6jB0Ac",
      object: "chat.completion",
      created: expect.any(Number),
      model: "gemini-2.5-flash",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: "Hello! How can I help you today?",
            reasoning_content: "**Greeting the user**\n\nThe user greeted me. I will answer briefly and offer help.\n",
          },
          finish_reason: "stop",
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: 2061,
        completion_tokens: 97,
        total_tokens: 2158,
        prompt_tokens_details: { cached_tokens: 2048 },
        completion_tokens_details: { reasoning_tokens: 88 },
      },
    });
  });

  it("reads parallel function calls as tool calls with generated ids", () => {
    const completion = gemini.chat.response(json("generate-content-function-call.json"), context);
    expect(completion.choices).toEqual([
      {
        index: 0,
        message: {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: callId, type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } },
            { id: callId, type: "function", function: { name: "get_time", arguments: '{"timezone":"Europe/Paris"}' } },
          ],
        },
        finish_reason: "tool_calls",
        logprobs: null,
      },
    ]);
    expect(completion.usage).toEqual({ prompt_tokens: 96, completion_tokens: 31, total_tokens: 127 });
  });

  it("answers a blocked prompt with a content_filter choice", () => {
    const completion = gemini.chat.response(
      { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 } },
      context,
    );
    expect(completion.choices).toEqual([
      { index: 0, message: { role: "assistant", content: null }, finish_reason: "content_filter", logprobs: null },
    ]);
  });

  it("streams text deltas (CRLF framing, split reads), a finish chunk and a final usage chunk", async () => {
    const { chunks, done, error } = await replayFixture(gemini, fixture("stream.sse.txt"), context, streamed);
    expect(error).toBeUndefined();
    expect(done).toBe(true);
    const base = {
      id: "chatcmpl-nL42Z4WcKaGanvgPp9Tn0QQ",
      object: "chat.completion.chunk",
      created: expect.any(Number),
      model: "gemini-2.0-flash",
    };
    expect(chunks).toEqual([
      { ...base, choices: [{ index: 0, delta: { role: "assistant", content: "Hello" }, finish_reason: null }], usage: null },
      { ...base, choices: [{ index: 0, delta: { content: "! How can I help you" }, finish_reason: null }], usage: null },
      { ...base, choices: [{ index: 0, delta: { content: " today? 你好！" }, finish_reason: null }], usage: null },
      { ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: null },
      { ...base, choices: [], usage: { prompt_tokens: 8, completion_tokens: 12, total_tokens: 20 } },
    ]);
  });

  it("streams thoughts as reasoning and a whole function call as one tool-call delta", async () => {
    const { chunks } = await replayFixture(gemini, fixture("stream-function-call.sse.txt"), context, streamed);
    const toolDeltas = chunks.flatMap((chunk) => chunk.choices.flatMap((choice) => choice.delta.tool_calls ?? []));
    expect(toolDeltas).toEqual([
      { index: 0, id: callId, type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } },
    ]);
    expect(reassemble(chunks)).toEqual({
      content: "",
      reasoning: "**Checking the forecast**\n\nThe user wants the weather in Paris, so I should call the tool.\n",
      toolCalls: [{ id: callId, type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } }],
      finishReason: "tool_calls",
      roleChunks: 1,
      usage: {
        prompt_tokens: 1130,
        completion_tokens: 70,
        total_tokens: 1200,
        prompt_tokens_details: { cached_tokens: 1024 },
        completion_tokens_details: { reasoning_tokens: 52 },
      },
    });
  });

  it("ends a stream stopped by the safety filters with content_filter", async () => {
    const { chunks, done } = await replayFixture(gemini, fixture("stream-safety.sse.txt"), context, streamed);
    expect(done).toBe(true);
    expect(reassemble(chunks)).toEqual({
      content: "Sure, the first step is",
      reasoning: "",
      toolCalls: [],
      finishReason: "content_filter",
      roleChunks: 1,
      usage: { prompt_tokens: 15, completion_tokens: 6, total_tokens: 21 },
    });
  });

  it("reports an error object inside the stream", async () => {
    const { chunks, error, done } = await replayFixture(gemini, fixture("stream-error.sse.txt"), context, streamed);
    expect(reassemble(chunks).content).toBe("Once upon");
    expect(done).toBe(false);
    expect(error).toEqual({
      status: 503,
      message: "The model is overloaded. Please try again later.",
      type: "api_error",
      code: "UNAVAILABLE",
    });
  });

  it("flags a malformed frame", () => {
    const decoder = gemini.chat.stream(context, streamed);
    expect(decoder.decode({ data: '{"candidates": [' }).error).toEqual({
      status: 502,
      message: "malformed stream frame from upstream",
      type: "api_error",
    });
    expect(decoder.flush()).toEqual([]);
  });

  it("reads Gemini's error bodies", () => {
    expect(gemini.error(400, readFixture(fixture("error-api-key.json")))).toEqual({
      message: "API key not valid. Please pass a valid API key.",
      type: "authentication_error",
      code: "INVALID_ARGUMENT",
    });
    expect(gemini.error(429, readFixture(fixture("error-rate-limit.json")))).toEqual({
      message: "You exceeded your current quota, please check your plan and billing details.",
      type: "rate_limit_error",
      code: "RESOURCE_EXHAUSTED",
    });
    expect(gemini.error(502, "<html>Bad Gateway</html>")).toEqual({ message: "<html>Bad Gateway</html>", type: "api_error", code: null });
  });
});

describe("gemini embeddings and models", () => {
  it("batches embedContent requests and estimates usage Gemini does not report", () => {
    const embedContext = { ...context, model: "text-embedding-004" };
    const translated = gemini.embeddings?.request({ model: "e", input: ["Hello world", "Bonjour"], dimensions: 256 }, embedContext);
    expect(translated?.request.url).toBe("https://generativelanguage.googleapis.com/v1beta/models/text-embedding-004:batchEmbedContents");
    expect(requestJson(translated?.request ?? {})).toEqual({
      requests: [
        { model: "models/text-embedding-004", content: { parts: [{ text: "Hello world" }] }, outputDimensionality: 256 },
        { model: "models/text-embedding-004", content: { parts: [{ text: "Bonjour" }] }, outputDimensionality: 256 },
      ],
    });
    expect(translated?.warnings).toEqual([]);
    expect(gemini.embeddings?.response(json("batch-embed-contents.json"), embedContext)).toEqual({
      object: "list",
      data: [
        { object: "embedding", index: 0, embedding: [0.013168523, -0.008711934, -0.046782676, 0.000699375] },
        { object: "embedding", index: 1, embedding: [-0.021049365, 0.015380848, -0.030223714, 0.01188573] },
      ],
      model: "text-embedding-004",
      usage: { prompt_tokens: 5, total_tokens: 5 },
    });
  });

  it("warns for token arrays and base64", () => {
    const translated = gemini.embeddings?.request({ model: "e", input: [1, 2, 3], encoding_format: "base64" }, context);
    expect(translated?.warnings).toEqual([
      "Gemini embeds only text; token arrays were sent as text",
      'Gemini does not support encoding_format "base64"; floats are returned',
    ]);
  });

  it("lists models without the models/ prefix", () => {
    expect(gemini.models?.request(context)).toEqual({
      method: "GET",
      url: "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000",
      headers: { "content-type": "application/json", "x-goog-api-key": "k" },
    });
    expect(gemini.models?.response(json("models.json"))).toEqual(["gemini-2.0-flash", "text-embedding-004"]);
  });
});
