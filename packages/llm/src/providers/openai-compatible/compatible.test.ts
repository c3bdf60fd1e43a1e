import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ChatChunk, ChatRequest } from "../../chat-types.ts";
import { requestJson } from "../../common.ts";
import { getProvider } from "../../registry.ts";
import type { ProviderSpec } from "../../spec.ts";
import { readFrames } from "../../stream-reader.ts";

const fixture = (name: string) => fs.readFileSync(path.join(import.meta.dirname, "__fixtures__", name), "utf8");
const provider = (id: string) => getProvider(id) as ProviderSpec;
const context = (model: string) => ({ baseUrl: "https://upstream.example", credentials: { api_key: "sk-up" }, model });

/** Replays a recorded SSE transcript in small uneven pieces through a provider's stream decoder. */
async function replay(spec: ProviderSpec, text: string) {
  async function* pieces() {
    for (let index = 0; index < text.length; index += 7) yield text.slice(index, index + 7);
  }
  const decoder = spec.chat.stream(context("m"), { model: "m", messages: [] });
  const chunks: ChatChunk[] = [];
  let done = false;
  for await (const frame of readFrames(pieces(), "sse")) {
    const decoded = decoder.decode(frame);
    chunks.push(...decoded.chunks);
    done ||= Boolean(decoded.done);
  }
  chunks.push(...decoder.flush());
  const content = chunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
  const args = chunks.map((chunk) => chunk.choices[0]?.delta.tool_calls?.[0]?.function?.arguments ?? "").join("");
  return {
    chunks,
    done,
    content,
    args,
    finish: chunks.map((chunk) => chunk.choices[0]?.finish_reason).find(Boolean),
    usage: chunks.find((chunk) => chunk.usage)?.usage,
  };
}

const OPENAI_COMPATIBLE = ["openai", "deepseek", "qwen", "zhipu", "moonshot", "ernie", "openrouter", "openai-compatible"];

describe.each(OPENAI_COMPATIBLE)("%s on recorded OpenAI-format fixtures", (id) => {
  const spec = provider(id);

  it("reads a plain answer with cached-token usage", () => {
    const completion = spec.chat.response(JSON.parse(fixture("chat.json")), context("gpt-4o"));
    expect(completion.choices[0]?.message.content).toBe("The capital of France is Paris.");
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(completion.usage).toEqual({
      prompt_tokens: 1117,
      completion_tokens: 46,
      total_tokens: 1163,
      prompt_tokens_details: { cached_tokens: 1024 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
  });

  it("decodes a streamed answer chunk by chunk, usage last", async () => {
    const result = await replay(spec, fixture("stream-text.sse"));
    expect(result.content).toBe("Hello there!");
    expect(result.finish).toBe("stop");
    expect(result.done).toBe(true);
    expect(result.usage).toMatchObject({ prompt_tokens: 9, completion_tokens: 3, total_tokens: 12 });
  });

  it("decodes streamed tool-call arguments incrementally", async () => {
    const result = await replay(spec, fixture("stream-tools.sse"));
    expect(result.chunks[0]?.choices[0]?.delta.tool_calls?.[0]).toMatchObject({
      id: "call_DdmO9pD3xa9XTPNJ32zg2hcA",
      function: { name: "get_weather" },
    });
    expect(JSON.parse(result.args)).toEqual({ location: "Paris" });
    expect(result.finish).toBe("tool_calls");
  });

  it("reads error bodies and in-stream errors", async () => {
    expect(spec.error(401, fixture("error.json"))).toEqual({
      message: expect.stringContaining("Incorrect API key"),
      type: "invalid_request_error",
      code: "invalid_api_key",
    });
    const decoded = spec.chat
      .stream(context("m"), { model: "m", messages: [] })
      .decode({ data: '{"error":{"message":"overloaded","type":"server_error","code":503}}' });
    expect(decoded.error).toMatchObject({ status: 503, message: "overloaded" });
    expect(spec.chat.stream(context("m"), { model: "m", messages: [] }).decode({ data: '{"broken' }).error?.status).toBe(502);
  });
});

describe("provider quirks", () => {
  const request: ChatRequest = {
    model: "m",
    messages: [{ role: "user", content: "hi" }],
    stream: true,
    temperature: 0,
    tools: [{ type: "function", function: { name: "f", parameters: {} } }],
    tool_choice: { type: "function", function: { name: "f" } },
    n: 2,
    seed: 1,
  };
  const body = (id: string) => {
    const translated = provider(id).chat.request(request, context("upstream-model"));
    return {
      url: translated.request.url,
      headers: translated.request.headers,
      json: (requestJson(translated.request) ?? {}) as ReturnType<typeof JSON.parse>,
      warnings: translated.warnings,
    };
  };

  it("addresses each provider's API prefix and asks for streamed usage where it is supported", () => {
    expect(body("openai").url).toBe("https://upstream.example/v1/chat/completions");
    expect(body("zhipu").url).toBe("https://upstream.example/v4/chat/completions");
    expect(body("ernie").url).toBe("https://upstream.example/v2/chat/completions");
    expect(body("openai").json.stream_options).toEqual({ include_usage: true });
    expect(body("zhipu").json.stream_options).toBeUndefined();
    expect(body("openai").json.model).toBe("upstream-model");
    expect(body("openai").headers.authorization).toBe("Bearer sk-up");
  });

  it("drops what a provider cannot honour, with a warning for each", () => {
    const zhipu = body("zhipu");
    expect(zhipu.json.tool_choice).toBe("auto");
    expect(zhipu.json.temperature).toBe(0.01);
    expect(zhipu.json.n).toBeUndefined();
    expect(zhipu.warnings.join(" ")).toMatch(/tool_choice.*temperature|temperature.*tool_choice|"n"/s);
    const deepseek = body("deepseek");
    expect(deepseek.json.seed).toBeUndefined();
    expect(deepseek.warnings).toEqual(expect.arrayContaining([expect.stringContaining('"seed"'), expect.stringContaining('"n"')]));
    expect(body("openai").warnings).toEqual([]);
  });

  it("reads DeepSeek's cache hits and Moonshot's usage inside the last choice", async () => {
    const deepseek = provider("deepseek").chat.response(JSON.parse(fixture("deepseek-chat.json")), context("deepseek-chat"));
    expect(deepseek.usage?.prompt_tokens_details?.cached_tokens).toBe(8);
    const result = await replay(provider("moonshot"), fixture("moonshot-stream.sse"));
    expect(result.content).toBe("你好");
    expect(result.usage).toEqual({ prompt_tokens: 19, completion_tokens: 13, total_tokens: 32 });
  });

  it("sends attribution and app headers from credentials", () => {
    const openrouter = provider("openrouter").chat.request(request, {
      ...context("m"),
      credentials: { api_key: "k", site_url: "https://a.example", site_name: "A" },
    });
    expect(openrouter.request.headers).toMatchObject({ "http-referer": "https://a.example", "x-title": "A" });
    const ernie = provider("ernie").chat.request(request, { ...context("m"), credentials: { api_key: "k", appid: "app-1" } });
    expect(ernie.request.headers.appid).toBe("app-1");
  });
});

describe("decodeCompatibleFrame pass-through", () => {
  const decode = provider("openai").chat.stream(context("m"), { model: "m", messages: [] }).decode;

  it("hands back the frame's own text for a chunk already in OpenAI's format", () => {
    const data =
      '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}';
    const decoded = decode({ data });
    expect(decoded.raw).toBe(data);
    expect(decoded.chunks[0]?.choices[0]?.delta.content).toBe("hi");
  });

  it("gives no text to pass through when it had to change the chunk", () => {
    const usage = decode({
      data: '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"prompt_cache_hit_tokens":1}}',
    });
    expect(usage.raw).toBeUndefined();
    expect(usage.chunks[0]?.usage).toEqual({
      prompt_tokens: 3,
      completion_tokens: 2,
      total_tokens: 5,
      prompt_tokens_details: { cached_tokens: 1 },
    });
    const noObject = decode({ data: '{"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}' });
    expect(noObject.raw).toBeUndefined();
    expect(noObject.chunks[0]?.object).toBe("chat.completion.chunk");
    expect(decode({ data: " [DONE] " })).toEqual({ chunks: [], done: true });
    expect(decode({ data: "  " })).toEqual({ chunks: [] });
    expect(decode({ data: "{oops" }).error?.status).toBe(502);
  });
});

describe("openAIFormat", () => {
  it("is declared by the providers that answer in OpenAI's format as they come, and by no other", () => {
    for (const id of OPENAI_COMPATIBLE) expect(provider(id).capabilities.openAIFormat).toBe(true);
    for (const id of ["azure", "anthropic", "gemini", "ollama"]) expect(provider(id).capabilities.openAIFormat).toBe(false);
  });
});
