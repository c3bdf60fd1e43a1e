import { describe, expect, it } from "vitest";
import type { ChatRequest } from "../../chat-types.ts";
import { requestJson } from "../../common.ts";
import type { CallContext } from "../../spec.ts";
import { readFixture, reassemble, replayFixture } from "../../testing/replay.ts";
import { azure } from "./index.ts";

const fixture = (name: string) => new URL(`./__fixtures__/${name}`, import.meta.url);

const context: CallContext = {
  baseUrl: "https://my-resource.openai.azure.com",
  credentials: { api_key: "azure-key-1", api_version: "2024-10-21", deployment: "" },
  model: "gpt-4o",
};
const hello: ChatRequest = { model: "gpt-4o", messages: [{ role: "user", content: "Hello" }] };

describe("azure request translation", () => {
  it("addresses the deployment named after the model, with an api-key header and no model in the body", () => {
    const { request, warnings } = azure.chat.request({ ...hello, temperature: 0.2, stream_options: { include_usage: false } }, context);
    expect(request).toEqual({
      method: "POST",
      url: "https://my-resource.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
      headers: { "content-type": "application/json", "api-key": "azure-key-1" },
      body: JSON.stringify({ messages: hello.messages, temperature: 0.2 }),
    });
    expect(warnings).toEqual([]);
  });

  it("uses the configured deployment and api-version, asks for stream usage, keeps extra headers", () => {
    const custom: CallContext = {
      ...context,
      baseUrl: "https://my-resource.openai.azure.com/openai/",
      credentials: { api_key: "k", api_version: "2025-01-01-preview", deployment: "prod gpt4o" },
      extraHeaders: { "x-ms-client-request-id": "r1" },
    };
    const { request } = azure.chat.request({ ...hello, stream: true }, custom);
    expect(request.url).toBe(
      "https://my-resource.openai.azure.com/openai/deployments/prod%20gpt4o/chat/completions?api-version=2025-01-01-preview",
    );
    expect(request.headers).toEqual({ "content-type": "application/json", "x-ms-client-request-id": "r1", "api-key": "k" });
    expect(request.headers.authorization).toBeUndefined();
    expect(requestJson(request)).toEqual({ messages: hello.messages, stream: true, stream_options: { include_usage: true } });
  });

  it("addresses each channel's resource, deployment and api-version apart, however often it is called", () => {
    const url = (change: Partial<CallContext>, credentials: Record<string, string> = {}) =>
      azure.chat.request(hello, { ...context, ...change, credentials: { ...context.credentials, ...credentials } }).request.url;
    const base = "https://my-resource.openai.azure.com/openai/deployments/gpt-4o/chat/completions";
    for (let round = 0; round < 2; round++) {
      expect(url({})).toBe(`${base}?api-version=2024-10-21`);
      expect(url({}, { api_version: "2025-01-01-preview" })).toBe(`${base}?api-version=2025-01-01-preview`);
      expect(url({}, { deployment: "other" })).toBe(
        "https://my-resource.openai.azure.com/openai/deployments/other/chat/completions?api-version=2024-10-21",
      );
      expect(url({ baseUrl: "https://second.openai.azure.com/" })).toBe(
        "https://second.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21",
      );
    }
  });

  it("falls back to the default api-version when none is stored", () => {
    const { request } = azure.chat.request(hello, { ...context, credentials: { api_key: "k" } });
    expect(request.url).toContain("?api-version=2024-10-21");
  });

  it("sends embeddings to the deployment without a model, and lists models", () => {
    const { request } =
      azure.embeddings?.request({ model: "emb", input: ["a", "b"], dimensions: 256 }, { ...context, model: "text-embedding-3-small" }) ??
      {};
    expect(request?.url).toBe(
      "https://my-resource.openai.azure.com/openai/deployments/text-embedding-3-small/embeddings?api-version=2024-10-21",
    );
    expect(requestJson(request ?? {})).toEqual({ input: ["a", "b"], dimensions: 256 });
    expect(azure.models?.request(context)).toEqual({
      method: "GET",
      url: "https://my-resource.openai.azure.com/openai/models?api-version=2024-10-21",
      headers: { "content-type": "application/json", "api-key": "azure-key-1" },
    });
    expect(azure.models?.response(JSON.parse(readFixture(fixture("models.json"))))).toEqual([
      "gpt-4o-2024-08-06",
      "text-embedding-3-small",
    ]);
  });
});

describe("azure recorded responses", () => {
  it("reads a plain completion without Azure's filter annotations", () => {
    const completion = azure.chat.response(JSON.parse(readFixture(fixture("chat-completion.json"))), context);
    expect(completion).toEqual({
      id: "chatcmpl-AThGq9Z0ZbH3s1yT1aJm0pQk2xYzB",
      object: "chat.completion",
      created: 1731600000,
      model: "gpt-4o-2024-08-06",
      system_fingerprint: "fp_04751d0b65",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: "Hello! How can I assist you today?", refusal: null },
          finish_reason: "stop",
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: 19,
        completion_tokens: 10,
        total_tokens: 29,
        prompt_tokens_details: { cached_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
  });

  it("skips the prompt-filter chunk and annotation-only chunks of a stream", async () => {
    const { chunks, done, error } = await replayFixture(azure, fixture("chat-stream.sse.txt"), context, { ...hello, stream: true });
    expect(error).toBeUndefined();
    expect(done).toBe(true);
    expect(chunks.every((chunk) => chunk.id === "chatcmpl-AThGrKx2mVb8pQy7Zc3LnW4dTe5Fa")).toBe(true);
    expect(chunks.every((chunk) => !("prompt_filter_results" in chunk))).toBe(true);
    expect(chunks.flatMap((chunk) => chunk.choices).every((choice) => !("content_filter_results" in choice))).toBe(true);
    // 1 role chunk + 9 content chunks + finish + usage; the filter chunks are gone.
    expect(chunks).toHaveLength(12);
    expect(reassemble(chunks)).toEqual({
      content: "Hello! How can I assist you today?",
      reasoning: "",
      toolCalls: [],
      finishReason: "stop",
      roleChunks: 1,
      usage: {
        prompt_tokens: 19,
        completion_tokens: 10,
        total_tokens: 29,
        prompt_tokens_details: { cached_tokens: 0 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
    expect(chunks.at(-1)).toMatchObject({ choices: [], object: "chat.completion.chunk" });
  });

  it("reassembles a streamed tool call and reports cached prompt tokens", async () => {
    const { chunks } = await replayFixture(azure, fixture("chat-stream-tool.sse.txt"), context, { ...hello, stream: true });
    expect(reassemble(chunks)).toEqual({
      content: "",
      reasoning: "",
      toolCalls: [
        {
          id: "call_Qm3WZr8dKc1sVbYh0TnLpJ2e",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
        },
      ],
      finishReason: "tool_calls",
      roleChunks: 1,
      usage: {
        prompt_tokens: 1230,
        completion_tokens: 18,
        total_tokens: 1248,
        prompt_tokens_details: { cached_tokens: 1024 },
        completion_tokens_details: { reasoning_tokens: 0 },
      },
    });
  });

  it("ends a stream cut by the content filter with finish_reason content_filter", async () => {
    const { chunks } = await replayFixture(azure, fixture("chat-stream-filtered.sse.txt"), context, { ...hello, stream: true });
    expect(reassemble(chunks)).toEqual({
      content: "Here is how",
      reasoning: "",
      toolCalls: [],
      finishReason: "content_filter",
      roleChunks: 1,
      usage: { prompt_tokens: 25, completion_tokens: 3, total_tokens: 28 },
    });
  });

  it("reads Azure's error bodies", () => {
    expect(azure.error(400, readFixture(fixture("error-content-filter.json")))).toEqual({
      message: expect.stringContaining("content management policy"),
      type: "invalid_request_error",
      code: "content_filter",
    });
    expect(azure.error(404, readFixture(fixture("error-deployment-not-found.json")))).toEqual({
      message:
        "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
      type: "invalid_request_error",
      code: "DeploymentNotFound",
    });
    expect(azure.error(429, '{"error":{"code":"429","message":"Requests have exceeded the token rate limit."}}')).toEqual({
      message: "Requests have exceeded the token rate limit.",
      type: "rate_limit_error",
      code: "429",
    });
  });

  it("declares its form in both languages", () => {
    expect(azure.credentialSchema.map((field) => [field.name, field.type, field.required, field.default])).toEqual([
      ["api_key", "secret", true, undefined],
      ["api_version", "text", false, "2024-10-21"],
      ["deployment", "text", false, undefined],
    ]);
    for (const field of azure.credentialSchema) {
      expect(field.label.en && field.label["zh-CN"] && field.help?.en && field.help["zh-CN"]).toBeTruthy();
    }
  });
});
