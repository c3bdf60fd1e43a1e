import { describe, expect, it } from "vitest";
import type { ChatRequest } from "../../chat-types.ts";
import { requestJson } from "../../common.ts";
import type { CallContext } from "../../spec.ts";
import { readFixture, reassemble, replayFixture } from "../../testing/replay.ts";
import { ollama } from "./index.ts";

const fixture = (name: string) => new URL(`./__fixtures__/${name}`, import.meta.url);
const json = (name: string) => JSON.parse(readFixture(fixture(name))) as unknown;

const context: CallContext = { baseUrl: "http://127.0.0.1:11434", credentials: {}, model: "llama3.2" };
const streamed: ChatRequest = { model: "llama", messages: [{ role: "user", content: "Hello" }], stream: true };
const callId = expect.stringMatching(/^call_[\w-]{16}$/);

const translate = (body: Partial<ChatRequest>, callContext = context) => {
  const { request, warnings } = ollama.chat.request({ model: "llama", messages: [], ...body } as ChatRequest, callContext);
  return { request, warnings, body: (requestJson(request) ?? {}) as Record<string, unknown> };
};

describe("ollama request translation", () => {
  it("posts /api/chat, always saying whether to stream, with bearer auth only when a key is set", () => {
    const plain = translate({ messages: [{ role: "user", content: "Hi" }] });
    expect(plain.request).toMatchObject({
      method: "POST",
      url: "http://127.0.0.1:11434/api/chat",
      headers: { "content-type": "application/json" },
    });
    expect(plain.body).toEqual({ model: "llama3.2", messages: [{ role: "user", content: "Hi" }], stream: false });
    const proxied = translate({ messages: [], stream: true }, { ...context, credentials: { api_key: "proxy-token" } });
    expect(proxied.request.headers.authorization).toBe("Bearer proxy-token");
    expect(proxied.body.stream).toBe(true);
  });

  it("translates messages, images, tool calls, options, format and tools", () => {
    const tools: ChatRequest["tools"] = [
      { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: {} } } },
    ];
    const { body, warnings } = translate({
      messages: [
        { role: "developer", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: "data:image/jpeg;base64,/9j/4AAQSkZJRg==" } },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }],
        },
        { role: "tool", tool_call_id: "call_1", content: "21°C" },
      ],
      temperature: 0.5,
      top_p: 0.8,
      max_tokens: 64,
      stop: ["\n\n"],
      seed: 42,
      presence_penalty: 0.1,
      frequency_penalty: 0.2,
      response_format: {
        type: "json_schema",
        json_schema: { name: "x", schema: { type: "object", properties: { a: { type: "string" } } } },
      },
      tools,
      reasoning_effort: "high",
    });
    expect(warnings).toEqual([]);
    expect(body).toEqual({
      model: "llama3.2",
      stream: false,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "What is this?", images: ["/9j/4AAQSkZJRg=="] },
        { role: "assistant", content: "", tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }] },
        { role: "tool", content: "21°C", tool_name: "get_weather" },
      ],
      options: { temperature: 0.5, top_p: 0.8, num_predict: 64, stop: ["\n\n"], seed: 42, presence_penalty: 0.1, frequency_penalty: 0.2 },
      format: { type: "object", properties: { a: { type: "string" } } },
      tools,
      think: true,
    });
    expect(translate({ messages: [], response_format: { type: "json_object" } }).body.format).toBe("json");
    expect(translate({ messages: [], tools, tool_choice: "none" }).body.tools).toBeUndefined();
  });

  it("warns about what Ollama cannot honour", () => {
    const { warnings } = translate({
      messages: [
        {
          role: "user",
          content: [
            { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
            { type: "input_audio", input_audio: { data: "", format: "wav" } },
          ],
        },
      ],
      n: 3,
      logit_bias: { 1: 2 },
      tools: [{ type: "function", function: { name: "f" } }],
      tool_choice: "required",
    });
    expect(warnings).toEqual([
      'Ollama returns one choice; "n": 3 was not sent',
      'Ollama does not support "logit_bias"; it was not sent',
      'Ollama does not support tool_choice "required"; the model chooses for itself',
      "Ollama takes only inline (data:) images; an image URL was not sent",
      'Ollama does not support "input_audio" content parts; one was not sent',
    ]);
  });
});

describe("ollama recorded responses", () => {
  it("reads a plain answer", () => {
    expect(ollama.chat.response(json("chat.json"), context)).toEqual({
      id: expect.stringMatching(/^chatcmpl-/),
      object: "chat.completion",
      created: 1731622400,
      model: "llama3.2",
      choices: [
        { index: 0, message: { role: "assistant", content: "Hello! How can I help you today?" }, finish_reason: "stop", logprobs: null },
      ],
      usage: { prompt_tokens: 26, completion_tokens: 10, total_tokens: 36 },
    });
  });

  it("streams NDJSON lines as chunks, then a finish chunk and a usage chunk", async () => {
    const { chunks, done, error } = await replayFixture(ollama, fixture("chat-stream.ndjson"), context, streamed);
    expect(error).toBeUndefined();
    expect(done).toBe(true);
    const base = { id: chunks[0]?.id, object: "chat.completion.chunk", created: 1731622400, model: "llama3.2" };
    const content = (text: string, first = false) => ({
      ...base,
      choices: [{ index: 0, delta: first ? { role: "assistant", content: text } : { content: text }, finish_reason: null }],
      usage: null,
    });
    expect(chunks).toEqual([
      content("Hello", true),
      content("!"),
      content(" How can I"),
      content(" help you today?"),
      { ...base, choices: [{ index: 0, delta: {}, finish_reason: "stop" }], usage: null },
      { ...base, choices: [], usage: { prompt_tokens: 26, completion_tokens: 10, total_tokens: 36 } },
    ]);
  });

  it("streams a tool call with object arguments as a JSON string", async () => {
    const { chunks } = await replayFixture(ollama, fixture("chat-stream-tool.ndjson"), { ...context, model: "qwen2.5:7b" }, streamed);
    expect(reassemble(chunks)).toEqual({
      content: "",
      reasoning: "",
      toolCalls: [{ id: callId, type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } }],
      finishReason: "tool_calls",
      roleChunks: 1,
      usage: { prompt_tokens: 187, completion_tokens: 24, total_tokens: 211 },
    });
  });

  it("streams thinking as reasoning and a length stop", async () => {
    const { chunks } = await replayFixture(ollama, fixture("chat-stream-thinking.ndjson"), context, streamed);
    expect(reassemble(chunks)).toEqual({
      content: "2 + 2 = 4",
      reasoning: "The user asks for 2+2. That is 4.",
      toolCalls: [],
      finishReason: "length",
      roleChunks: 1,
      usage: { prompt_tokens: 14, completion_tokens: 32, total_tokens: 46 },
    });
  });

  it("reports an error line", async () => {
    const { chunks, error, done } = await replayFixture(ollama, fixture("chat-stream-error.ndjson"), context, streamed);
    expect(reassemble(chunks).content).toBe("Once");
    expect(done).toBe(false);
    expect(error).toEqual({
      status: 500,
      message: "an error was encountered while running the model: unexpected EOF",
      type: "api_error",
      code: null,
    });
  });

  it("reads Ollama's error body", () => {
    expect(ollama.error(404, readFixture(fixture("error-model-not-found.json")))).toEqual({
      message: 'model "llama9" not found, try pulling it first',
      type: "invalid_request_error",
    });
  });
});

describe("ollama embeddings and models", () => {
  it("embeds through /api/embed", () => {
    const embedContext = { ...context, model: "nomic-embed-text" };
    const translated = ollama.embeddings?.request({ model: "e", input: ["a", "b"] }, embedContext);
    expect(translated?.request.url).toBe("http://127.0.0.1:11434/api/embed");
    expect(requestJson(translated?.request ?? {})).toEqual({ model: "nomic-embed-text", input: ["a", "b"] });
    expect(ollama.embeddings?.response(json("embed.json"), embedContext)).toEqual({
      object: "list",
      data: [
        { object: "embedding", index: 0, embedding: [0.010071029, -0.0017594862, 0.05007221, 0.04692972] },
        { object: "embedding", index: 1, embedding: [-0.0098027075, 0.06042469, 0.025257962, -0.006364387] },
      ],
      model: "nomic-embed-text",
      usage: { prompt_tokens: 8, total_tokens: 8 },
    });
  });

  it("lists models from /api/tags", () => {
    expect(ollama.models?.request(context)).toEqual({
      method: "GET",
      url: "http://127.0.0.1:11434/api/tags",
      headers: { "content-type": "application/json" },
    });
    expect(ollama.models?.response(json("tags.json"))).toEqual(["llama3.2:latest", "nomic-embed-text:latest"]);
  });
});
