import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { ChatChunk, ToolCall } from "../../chat-types.ts";
import { getProvider } from "../../registry.ts";
import type { CallContext, DecodedFrames } from "../../spec.ts";
import { readFrames } from "../../stream-reader.ts";
import { anthropic } from "./index.ts";

const context: CallContext = { baseUrl: "https://api.anthropic.com", credentials: { api_key: "sk-ant-test" }, model: "claude-sonnet-4-5" };

const fixture = (name: string) => readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), "utf8");

/** The recorded bytes in small, uneven pieces, as a network delivers them (cutting through characters). */
async function* bytes(text: string) {
  const buffer = Buffer.from(text, "utf8");
  for (let index = 0, size = 3; index < buffer.length; index += size, size = (size % 11) + 3) yield buffer.subarray(index, index + size);
}

/** Replays a recorded stream through the adapter the way the core reads it. */
async function replay(name: string) {
  const decoder = anthropic.chat.stream(context, { model: "claude-sonnet-4-5", messages: [], stream: true });
  const chunks: ChatChunk[] = [];
  let end: DecodedFrames = { chunks: [] };
  for await (const frame of readFrames(bytes(fixture(name)), "sse")) {
    end = decoder.decode(frame);
    chunks.push(...end.chunks);
    if (end.error || end.done) break;
  }
  chunks.push(...decoder.flush());
  return { chunks, error: end.error, done: end.done ?? false };
}

/** What a client assembles from the chunks. */
function assemble(chunks: ChatChunk[]) {
  let content = "";
  let reasoning = "";
  const calls: ToolCall[] = [];
  const finishReasons: string[] = [];
  for (const chunk of chunks) {
    for (const choice of chunk.choices) {
      content += choice.delta.content ?? "";
      reasoning += choice.delta.reasoning_content ?? "";
      for (const delta of choice.delta.tool_calls ?? []) {
        calls[delta.index] ??= { id: "", type: "function", function: { name: "", arguments: "" } };
        const call = calls[delta.index] as ToolCall;
        if (delta.id) call.id = delta.id;
        call.function.name += delta.function?.name ?? "";
        call.function.arguments += delta.function?.arguments ?? "";
      }
      if (choice.finish_reason) finishReasons.push(choice.finish_reason);
    }
  }
  return { content, reasoning, calls, finishReasons, usage: chunks.filter((chunk) => chunk.usage).map((chunk) => chunk.usage) };
}

describe("anthropic adapter against recorded upstream traffic", () => {
  it("is registered and declares what it can do", () => {
    expect(getProvider("anthropic")).toBe(anthropic);
    expect(anthropic.capabilities).toEqual({
      chat: true,
      embeddings: false,
      tools: true,
      vision: true,
      jsonMode: false,
      modelListing: true,
      streamUsage: true,
      openAIFormat: false,
    });
    expect(anthropic.embeddings).toBeUndefined();
    expect(anthropic.credentialSchema.map((field) => [field.name, field.type, field.required, field.default])).toEqual([
      ["api_key", "secret", true, undefined],
      ["anthropic_version", "text", false, "2023-06-01"],
    ]);
  });

  it("reads a plain answer with text, a tool use and cache reads", () => {
    const completion = anthropic.chat.response(JSON.parse(fixture("message.json")), context);
    expect(completion).toEqual({
      id: "msg_01XFDUDYJgAACzvnptvVoYEL",
      object: "chat.completion",
      created: expect.any(Number),
      model: "claude-sonnet-4-5-20250929",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: "I'll check the current weather in Paris for you.",
            tool_calls: [
              {
                id: "toolu_01A09q90qw90lq917835lq9",
                type: "function",
                function: { name: "get_weather", arguments: '{"location":"Paris, France","unit":"celsius"}' },
              },
            ],
          },
          finish_reason: "tool_calls",
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 2268, completion_tokens: 71, total_tokens: 2339, prompt_tokens_details: { cached_tokens: 1856 } },
    });
  });

  it("reads thinking as reasoning and counts cache writes as prompt tokens", () => {
    const completion = anthropic.chat.response(JSON.parse(fixture("message-thinking.json")), context);
    expect(completion.choices[0]).toEqual({
      index: 0,
      message: {
        role: "assistant",
        content: "Crimson leaves drifting\nWhispers of the cooling wind\nAutumn settles in",
        reasoning_content: "The user wants a haiku about autumn. Five, seven, five syllables.",
      },
      finish_reason: "length",
      logprobs: null,
    });
    expect(completion.usage).toEqual({
      prompt_tokens: 158,
      completion_tokens: 64,
      total_tokens: 222,
      prompt_tokens_details: { cached_tokens: 0 },
    });
  });

  it("decodes a streamed text answer chunk by chunk", async () => {
    const { chunks, error, done } = await replay("stream-text.sse");
    expect(error).toBeUndefined();
    expect(done).toBe(true);
    const base = {
      id: "msg_01HCDu5LRGeP2o7s2xGmxyx8",
      object: "chat.completion.chunk",
      created: expect.any(Number),
      model: "claude-sonnet-4-5-20250929",
    };
    const choice = (delta: object, finish_reason: string | null = null) => ({ ...base, choices: [{ index: 0, delta, finish_reason }] });
    expect(chunks).toEqual([
      choice({ role: "assistant", content: "" }),
      choice({ content: "Hello" }),
      choice({ content: "! How can I help" }),
      choice({ content: " you today? 你好！" }),
      choice({}, "stop"),
      {
        ...base,
        choices: [],
        usage: { prompt_tokens: 2069, completion_tokens: 15, total_tokens: 2084, prompt_tokens_details: { cached_tokens: 2048 } },
      },
    ]);
  });

  it("reassembles streamed tool calls from their input_json_delta pieces", async () => {
    const { chunks, done } = await replay("stream-tool-use.sse");
    expect(done).toBe(true);
    const toolDeltas = chunks.flatMap((chunk) => chunk.choices.flatMap((choice) => choice.delta.tool_calls ?? []));
    expect(toolDeltas.slice(0, 3)).toEqual([
      { index: 0, id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6", type: "function", function: { name: "get_weather", arguments: "" } },
      { index: 0, function: { arguments: '{"location":' } },
      { index: 0, function: { arguments: ' "San' } },
    ]);
    expect(assemble(chunks)).toEqual({
      content: "Okay, let's check the weather for San Francisco, CA:",
      reasoning: "",
      calls: [
        {
          id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
          type: "function",
          function: { name: "get_weather", arguments: '{"location": "San Francisco, CA", "unit": "fahrenheit"}' },
        },
        {
          id: "toolu_01Bk2sDJ9wLBUPnGu7cZ5Qd4",
          type: "function",
          function: { name: "get_time", arguments: '{"timezone": "America/Los_Angeles"}' },
        },
      ],
      finishReasons: ["tool_calls"],
      usage: [{ prompt_tokens: 472, completion_tokens: 89, total_tokens: 561 }],
    });
  });

  it("streams thinking as reasoning_content, before the answer", async () => {
    const { chunks } = await replay("stream-thinking.sse");
    expect(assemble(chunks)).toEqual({
      content: "27 × 453 = **12,231**",
      reasoning: "27 * 453 = 27 * 400 + 27 * 53 = 10800 + 1431 = 12231",
      calls: [],
      finishReasons: ["stop"],
      usage: [{ prompt_tokens: 44, completion_tokens: 58, total_tokens: 102, prompt_tokens_details: { cached_tokens: 0 } }],
    });
  });

  it("reports an error event mid-stream as a transient upstream failure", async () => {
    const { chunks, error, done } = await replay("stream-error.sse");
    expect(done).toBe(false);
    expect(assemble(chunks).content).toBe("Once upon");
    expect(error).toEqual({ status: 503, message: "Overloaded", type: "api_error", code: "overloaded_error" });
  });

  it("maps each error event type to its status", () => {
    const status = (type: string) =>
      anthropic.chat
        .stream(context, { model: "m", messages: [] })
        .decode({ event: "error", data: JSON.stringify({ type: "error", error: { type, message: "x" } }) }).error?.status;
    expect(["overloaded_error", "rate_limit_error", "api_error", "invalid_request_error", "something_new"].map(status)).toEqual([
      503, 429, 500, 400, 500,
    ]);
  });

  it("reports a malformed frame and ignores pings", () => {
    const decoder = anthropic.chat.stream(context, { model: "m", messages: [] });
    expect(decoder.decode({ event: "ping", data: '{"type": "ping"}' })).toEqual({ chunks: [] });
    expect(decoder.decode({ event: "content_block_delta", data: '{"type": "content_bl' }).error?.status).toBe(502);
    expect(decoder.flush()).toEqual([]);
  });

  it("reads Anthropic error bodies", () => {
    expect(anthropic.error(404, fixture("error.json"))).toEqual({
      message: "model: claude-3-opus-nonexistent",
      type: "invalid_request_error",
      code: "not_found_error",
    });
    const overloaded = JSON.stringify({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    expect(anthropic.error(529, overloaded)).toEqual({ message: "Overloaded", type: "api_error", code: "overloaded_error" });
    expect(anthropic.error(502, "<html>Bad gateway</html>")).toEqual({
      message: "<html>Bad gateway</html>",
      type: "api_error",
      code: null,
    });
  });

  it("lists models from GET /v1/models", () => {
    const request = anthropic.models?.request(context);
    expect(request).toEqual({
      method: "GET",
      url: "https://api.anthropic.com/v1/models?limit=1000",
      headers: expect.objectContaining({ "x-api-key": "sk-ant-test" }),
    });
    const page = { data: [{ type: "model", id: "claude-opus-4-1-20250805", display_name: "Claude Opus 4.1" }, { id: 3 }], has_more: false };
    expect(anthropic.models?.response(page)).toEqual(["claude-opus-4-1-20250805"]);
  });
});
