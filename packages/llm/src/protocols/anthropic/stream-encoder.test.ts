import http from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChatChunk, Usage } from "../../chat-types.ts";
import { createAnthropicStreamEncoder } from "./stream-encoder.ts";

type Delta = ChatChunk["choices"][number]["delta"];

const chunk = (delta: Delta, finish: ChatChunk["choices"][number]["finish_reason"] = null): ChatChunk => ({
  id: "chatcmpl-enc1",
  object: "chat.completion.chunk",
  created: 1_700_000_000,
  model: "gpt-4o-mini",
  choices: [{ index: 0, delta, finish_reason: finish }],
});

const usage: Usage = { prompt_tokens: 50, completion_tokens: 9, total_tokens: 59, prompt_tokens_details: { cached_tokens: 20 } };
const usageChunk: ChatChunk = { ...chunk({}), choices: [], usage };

const scenarios: Record<string, ChatChunk[]> = {
  text: [
    chunk({ role: "assistant", content: "" }),
    chunk({ content: "Hello" }),
    chunk({ content: ", world." }),
    chunk({}, "stop"),
    usageChunk,
  ],
  tools: [
    chunk({ role: "assistant", content: null, reasoning_content: "Two cities, " }),
    chunk({ reasoning_content: "two calls." }),
    chunk({ content: "Checking." }),
    chunk({ tool_calls: [{ index: 0, id: "call_a", type: "function", function: { name: "get_weather", arguments: "" } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }),
    chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
    chunk({ tool_calls: [{ index: 1, id: "call_b", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } }] }),
    chunk({}, "tool_calls"),
    usageChunk,
  ],
};

/** The SSE text a whole scenario becomes. */
function encodeAll(chunks: ChatChunk[], model = "claude-sonnet-4-5"): string {
  const encoder = createAnthropicStreamEncoder(model);
  return chunks.map((item) => encoder.encode(item)).join("") + encoder.finish();
}

const parse = (text: string) =>
  text
    .split("\n\n")
    .filter(Boolean)
    .map((frame) => {
      const [eventLine, dataLine] = frame.split("\n");
      const data = JSON.parse(dataLine?.replace(/^data: /, "") ?? "");
      expect(eventLine).toBe(`event: ${data.type}`);
      return data;
    });

describe("createAnthropicStreamEncoder", () => {
  it("writes a text answer as Anthropic's event sequence", () => {
    const events = parse(encodeAll(scenarios.text ?? []));
    expect(events).toEqual([
      {
        type: "message_start",
        message: {
          id: "msg_enc1",
          type: "message",
          role: "assistant",
          model: "claude-sonnet-4-5",
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { input_tokens: 0, output_tokens: 0 },
        },
      },
      { type: "content_block_start", index: 0, content_block: { type: "text", text: "" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "Hello" } },
      { type: "content_block_delta", index: 0, delta: { type: "text_delta", text: ", world." } },
      { type: "content_block_stop", index: 0 },
      {
        type: "message_delta",
        delta: { stop_reason: "end_turn", stop_sequence: null },
        usage: { input_tokens: 30, output_tokens: 9, cache_read_input_tokens: 20 },
      },
      { type: "message_stop" },
    ]);
  });

  it("writes thinking, text and each tool call as its own block", () => {
    const events = parse(encodeAll(scenarios.tools ?? []));
    const outline = events.map((event) =>
      [event.type, event.index, event.content_block?.type ?? event.delta?.type ?? event.delta?.stop_reason].filter(
        (part) => part !== undefined,
      ),
    );
    expect(outline).toEqual([
      ["message_start"],
      ["content_block_start", 0, "thinking"],
      ["content_block_delta", 0, "thinking_delta"],
      ["content_block_delta", 0, "thinking_delta"],
      ["content_block_stop", 0],
      ["content_block_start", 1, "text"],
      ["content_block_delta", 1, "text_delta"],
      ["content_block_stop", 1],
      ["content_block_start", 2, "tool_use"],
      ["content_block_delta", 2, "input_json_delta"],
      ["content_block_delta", 2, "input_json_delta"],
      ["content_block_stop", 2],
      ["content_block_start", 3, "tool_use"],
      ["content_block_delta", 3, "input_json_delta"],
      ["content_block_stop", 3],
      ["message_delta", "tool_use"],
      ["message_stop"],
    ]);
    expect(events[8].content_block).toEqual({ type: "tool_use", id: "call_a", name: "get_weather", input: {} });
  });

  it("finishes once, starting the message if nothing came, and writes errors in Anthropic's shape", () => {
    const encoder = createAnthropicStreamEncoder("m");
    const closing = parse(encoder.finish(usage));
    expect(closing.map((event) => event.type)).toEqual(["message_start", "message_delta", "message_stop"]);
    expect(encoder.finish()).toBe("");
    expect(encoder.encode(chunk({ content: "late" }))).toBe("");
    expect(createAnthropicStreamEncoder("m").error("overloaded_error", "busy")).toBe(
      'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n',
    );
  });
});

describe("the encoded stream, read by the official Anthropic SDK", () => {
  let server: http.Server;
  let client: Anthropic;

  beforeAll(async () => {
    server = http.createServer(async (req, res) => {
      let raw = "";
      for await (const part of req) raw += part;
      const { model } = JSON.parse(raw) as { model: string };
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      if (model === "error") {
        const encoder = createAnthropicStreamEncoder(model);
        res.end(encoder.encode(chunk({ content: "Par" })) + encoder.error("overloaded_error", "Overloaded"));
        return;
      }
      // One event string a write, so the client reassembles frames across network reads.
      const encoder = createAnthropicStreamEncoder(model);
      for (const item of scenarios[model] ?? []) res.write(encoder.encode(item));
      res.end(encoder.finish());
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    client = new Anthropic({ apiKey: "sk-ant-test", baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, maxRetries: 0 });
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const stream = (model: string) => client.messages.stream({ model, max_tokens: 100, messages: [{ role: "user", content: "hi" }] });

  it("assembles a text message", async () => {
    const messageStream = stream("text");
    const texts: string[] = [];
    messageStream.on("text", (text) => texts.push(text));
    const message = await messageStream.finalMessage();
    expect(texts).toEqual(["Hello", ", world."]);
    expect(message).toMatchObject({
      id: "msg_enc1",
      type: "message",
      role: "assistant",
      model: "text",
      content: [{ type: "text", text: "Hello, world." }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 30, output_tokens: 9, cache_read_input_tokens: 20 },
    });
  });

  it("assembles thinking and tool uses with their inputs", async () => {
    const message = await stream("tools").finalMessage();
    expect(message.content).toEqual([
      { type: "thinking", thinking: "Two cities, two calls.", signature: "" },
      { type: "text", text: "Checking." },
      { type: "tool_use", id: "call_a", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: "call_b", name: "get_weather", input: { city: "Rome" } },
    ]);
    expect(message.stop_reason).toBe("tool_use");
  });

  it("raises an error event as an API error of its type", async () => {
    const error = await stream("error")
      .finalMessage()
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error).toMatchObject({ type: "overloaded_error", apiMessage: "Overloaded" });
  });
});
