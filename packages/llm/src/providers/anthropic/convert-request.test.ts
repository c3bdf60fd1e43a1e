import { describe, expect, it } from "vitest";
import type { ChatRequest } from "../../chat-types.ts";
import { requestJson } from "../../common.ts";
import type { CallContext } from "../../spec.ts";
import { anthropic } from "./index.ts";

const context: CallContext = { baseUrl: "https://api.anthropic.com", credentials: { api_key: "sk-ant-test" }, model: "claude-sonnet-4-5" };

function translate(body: Partial<ChatRequest>, callContext: CallContext = context) {
  const { request, warnings } = anthropic.chat.request({ model: "alias", messages: [], ...body }, callContext);
  return { request, body: (requestJson(request) ?? {}) as ReturnType<typeof JSON.parse>, warnings };
}

describe("anthropic request translation", () => {
  it("addresses /v1/messages with the key and version headers", () => {
    const { request } = translate({ messages: [{ role: "user", content: "hi" }] });
    expect(request.method).toBe("POST");
    expect(request.url).toBe("https://api.anthropic.com/v1/messages");
    expect(request.headers).toMatchObject({
      "x-api-key": "sk-ant-test",
      "anthropic-version": "2023-06-01",
      "content-type": "application/json",
    });
    expect(request.headers.authorization).toBeUndefined();
    const custom = translate(
      {},
      { ...context, credentials: { api_key: "k", anthropic_version: "2024-01-01" }, extraHeaders: { "anthropic-beta": "x" } },
    );
    expect(custom.request.headers).toMatchObject({ "anthropic-version": "2024-01-01", "anthropic-beta": "x" });
  });

  it("moves system and developer messages to the system prompt and uses the channel's model", () => {
    const { body } = translate({
      messages: [
        { role: "system", content: "You are terse." },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "Hello" },
      ],
    });
    expect(body).toEqual({
      model: "claude-sonnet-4-5",
      max_tokens: 4096,
      system: "You are terse.\n\nAnswer in French.",
      messages: [{ role: "user", content: [{ type: "text", text: "Hello" }] }],
    });
  });

  it("sends data URLs inline as base64 and other URLs by reference", () => {
    const { body } = translate({
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg", detail: "high" } },
          ],
        },
      ],
    });
    expect(body.messages[0].content).toEqual([
      { type: "text", text: "What is in these?" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
    ]);
  });

  it("turns tool calls into tool_use blocks and merges consecutive tool results into one user message", () => {
    const { body, warnings } = translate({
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: "Checking both.",
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            { id: "functions.get_weather:1", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "18°C" },
        { role: "tool", tool_call_id: "functions.get_weather:1", content: [{ type: "text", text: "24°C" }] },
        { role: "user", content: "Thanks, and tomorrow?" },
      ],
    });
    expect(warnings).toEqual([]);
    expect(body.messages).toEqual([
      { role: "user", content: [{ type: "text", text: "Weather in Paris and Rome?" }] },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Checking both." },
          { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
          { type: "tool_use", id: "functions_get_weather_1", name: "get_weather", input: { city: "Rome" } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "call_1", content: "18°C" },
          { type: "tool_result", tool_use_id: "functions_get_weather_1", content: [{ type: "text", text: "24°C" }] },
          { type: "text", text: "Thanks, and tomorrow?" },
        ],
      },
    ]);
  });

  it("leaves empty assistant text out and warns about arguments that are not an object", () => {
    const { body, warnings } = translate({
      messages: [
        { role: "user", content: "go" },
        {
          role: "assistant",
          content: "",
          tool_calls: [{ id: "call_x", type: "function", function: { name: "run", arguments: "not json" } }],
        },
      ],
    });
    expect(body.messages[1]).toEqual({ role: "assistant", content: [{ type: "tool_use", id: "call_x", name: "run", input: {} }] });
    expect(warnings).toEqual(['the arguments of tool call "call_x" are not a JSON object; they were sent as {}']);
  });

  it("translates tools and each tool_choice", () => {
    const tools: ChatRequest["tools"] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather for a city",
          parameters: { type: "object", properties: { city: { type: "string" } } },
        },
      },
      { type: "function", function: { name: "ping" } },
    ];
    const { body } = translate({ tools, messages: [{ role: "user", content: "x" }] });
    expect(body.tools).toEqual([
      {
        name: "get_weather",
        description: "Weather for a city",
        input_schema: { type: "object", properties: { city: { type: "string" } } },
      },
      { name: "ping", input_schema: { type: "object", properties: {} } },
    ]);
    expect(body.tool_choice).toBeUndefined();
    const choice = (tool_choice: ChatRequest["tool_choice"], parallel?: boolean) =>
      translate({ tools, tool_choice, ...(parallel === undefined ? {} : { parallel_tool_calls: parallel }) }).body.tool_choice;
    expect(choice("auto")).toEqual({ type: "auto" });
    expect(choice("none")).toEqual({ type: "none" });
    expect(choice("required")).toEqual({ type: "any" });
    expect(choice({ type: "function", function: { name: "ping" } })).toEqual({ type: "tool", name: "ping" });
    expect(choice(undefined, false)).toEqual({ type: "auto", disable_parallel_tool_use: true });
    expect(translate({ tool_choice: "required" }).body.tool_choice).toBeUndefined();
  });

  it("maps stop, sampling, max tokens, stream and user", () => {
    expect(translate({ stop: "END" }).body.stop_sequences).toEqual(["END"]);
    const { body, warnings } = translate({
      stop: ["a", "b"],
      temperature: 0.3,
      top_p: 0.9,
      max_tokens: 100,
      max_completion_tokens: 200,
      stream: true,
      stream_options: { include_usage: true },
      user: "user-42",
    });
    expect(warnings).toEqual([]);
    expect(body).toEqual({
      model: "claude-sonnet-4-5",
      max_tokens: 200,
      messages: [],
      temperature: 0.3,
      top_p: 0.9,
      stop_sequences: ["a", "b"],
      metadata: { user_id: "user-42" },
      stream: true,
    });
    expect(translate({ max_tokens: 100 }).body.max_tokens).toBe(100);
    expect(translate({}).body.max_tokens).toBe(4096);
  });

  it("warns about every parameter Anthropic cannot honour", () => {
    const { body, warnings } = translate({
      n: 2,
      presence_penalty: 0.5,
      frequency_penalty: 0.5,
      seed: 7,
      logit_bias: { "50256": -100 },
      response_format: { type: "json_object" },
      temperature: 1.5,
      messages: [{ role: "user", content: [{ type: "input_audio", input_audio: { data: "", format: "wav" } }] }],
    });
    expect(warnings).toEqual([
      'Anthropic does not support "presence_penalty"; it was not sent',
      'Anthropic does not support "frequency_penalty"; it was not sent',
      'Anthropic does not support "seed"; it was not sent',
      'Anthropic does not support "logit_bias"; it was not sent',
      'Anthropic returns a single choice; "n" was not sent',
      'Anthropic has no JSON mode; "response_format" (json_object) was not sent',
      'Anthropic does not support "input_audio" content parts; one was not sent',
      "Anthropic accepts a temperature up to 1; 1.5 was sent as 1",
    ]);
    expect(body).toEqual({ model: "claude-sonnet-4-5", max_tokens: 4096, messages: [], temperature: 1 });
    expect(translate({ n: 1, response_format: { type: "text" } }).warnings).toEqual([]);
  });
});
