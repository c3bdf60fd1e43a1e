import { describe, expect, it } from "vitest";
import type { ChatCompletion } from "../../chat-types.ts";
import { anthropicErrorBody } from "./errors.ts";
import { anthropicMessageId, openAICompletionToAnthropic } from "./response.ts";

const completion = (
  message: ChatCompletion["choices"][number]["message"],
  finish: ChatCompletion["choices"][number]["finish_reason"],
): ChatCompletion => ({
  id: "chatcmpl-abc123",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "gpt-4o-mini-2024-07-18",
  choices: [{ index: 0, message, finish_reason: finish }],
  usage: { prompt_tokens: 120, completion_tokens: 30, total_tokens: 150, prompt_tokens_details: { cached_tokens: 100 } },
});

describe("openAICompletionToAnthropic", () => {
  it("converts text, naming the model the client asked for", () => {
    expect(openAICompletionToAnthropic(completion({ role: "assistant", content: "Hi!" }, "stop"), "claude-sonnet-4-5")).toEqual({
      id: "msg_abc123",
      type: "message",
      role: "assistant",
      model: "claude-sonnet-4-5",
      content: [{ type: "text", text: "Hi!" }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: 20, output_tokens: 30, cache_read_input_tokens: 100 },
    });
  });

  it("converts reasoning and tool calls, with arguments as objects", () => {
    const message = openAICompletionToAnthropic(
      completion(
        {
          role: "assistant",
          content: null,
          reasoning_content: "Need the weather.",
          tool_calls: [
            { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            { id: "", type: "function", function: { name: "noop", arguments: "" } },
          ],
        },
        "tool_calls",
      ),
      "claude-x",
    );
    expect(message.content).toEqual([
      { type: "thinking", thinking: "Need the weather.", signature: "" },
      { type: "tool_use", id: "call_1", name: "get_weather", input: { city: "Paris" } },
      { type: "tool_use", id: expect.stringMatching(/^toolu_/), name: "noop", input: {} },
    ]);
    expect(message.stop_reason).toBe("tool_use");
  });

  it("maps every finish reason", () => {
    const reasons = (["stop", "length", "tool_calls", "content_filter", null] as const).map(
      (finish) => openAICompletionToAnthropic(completion({ role: "assistant", content: "x" }, finish), "m").stop_reason,
    );
    expect(reasons).toEqual(["end_turn", "max_tokens", "tool_use", "refusal", "end_turn"]);
  });

  it("gives message ids Anthropic's form", () => {
    expect(anthropicMessageId("msg_keep")).toBe("msg_keep");
    expect(anthropicMessageId("chatcmpl-Ab1")).toBe("msg_Ab1");
    expect(anthropicMessageId(undefined)).toMatch(/^msg_[\w-]{16}$/);
  });
});

describe("anthropicErrorBody", () => {
  it("names the error type for each status", () => {
    const statuses = [400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504, 529];
    expect(Object.fromEntries(statuses.map((status) => [status, anthropicErrorBody(status, "m").error.type]))).toEqual({
      400: "invalid_request_error",
      401: "authentication_error",
      403: "permission_error",
      404: "not_found_error",
      413: "request_too_large",
      422: "invalid_request_error",
      429: "rate_limit_error",
      500: "api_error",
      502: "api_error",
      503: "overloaded_error",
      504: "api_error",
      529: "overloaded_error",
    });
    expect(anthropicErrorBody(401, "bad key")).toEqual({ type: "error", error: { type: "authentication_error", message: "bad key" } });
  });
});
