import { describe, expect, it } from "vitest";
import { anthropicRequestToOpenAI } from "./request.ts";

describe("anthropicRequestToOpenAI", () => {
  it("converts a plain request with a system string", () => {
    expect(
      anthropicRequestToOpenAI({
        model: "claude-sonnet-4-5",
        max_tokens: 1024,
        system: "You are terse.",
        messages: [{ role: "user", content: "Hello" }],
        temperature: 0.2,
        top_p: 0.8,
        stop_sequences: ["END"],
        metadata: { user_id: "u-1" },
      }),
    ).toEqual({
      request: {
        model: "claude-sonnet-4-5",
        messages: [
          { role: "system", content: "You are terse." },
          { role: "user", content: "Hello" },
        ],
        max_tokens: 1024,
        temperature: 0.2,
        top_p: 0.8,
        stop: ["END"],
        user: "u-1",
      },
      warnings: [],
    });
  });

  it("reads system blocks, images, documents and multi-part text", () => {
    const { request, warnings } = anthropicRequestToOpenAI({
      model: "m",
      max_tokens: 10,
      system: [
        { type: "text", text: "Rule one.", cache_control: { type: "ephemeral" } },
        { type: "text", text: "Rule two." },
      ],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "<context>x</context>" },
            { type: "text", text: "Describe these." },
          ],
        },
        { role: "assistant", content: "Send them." },
        {
          role: "user",
          content: [
            { type: "image", source: { type: "base64", media_type: "image/jpeg", data: "/9j/4AAQ" } },
            { type: "image", source: { type: "url", url: "https://example.com/a.png" } },
            { type: "document", source: { type: "base64", media_type: "application/pdf", data: "JVBERi0=" }, title: "spec.pdf" },
            { type: "document", source: { type: "text", media_type: "text/plain", data: "plain doc" } },
            { type: "document", source: { type: "file", file_id: "file_1" } },
          ],
        },
      ],
    });
    expect(request.messages).toEqual([
      { role: "system", content: "Rule one.\nRule two." },
      { role: "user", content: "<context>x</context>\nDescribe these." },
      { role: "assistant", content: "Send them." },
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: "data:image/jpeg;base64,/9j/4AAQ" } },
          { type: "image_url", image_url: { url: "https://example.com/a.png" } },
          { type: "file", file: { filename: "spec.pdf", file_data: "data:application/pdf;base64,JVBERi0=" } },
          { type: "text", text: "plain doc" },
        ],
      },
    ]);
    expect(warnings).toEqual(['documents with a "file" source are not supported; one was left out']);
  });

  it("turns tool_use into tool calls and tool_result into tool messages placed before the user's text", () => {
    const { request, warnings } = anthropicRequestToOpenAI({
      model: "m",
      max_tokens: 10,
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: [
            { type: "thinking", thinking: "two calls", signature: "sig" },
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Paris" } },
            { type: "tool_use", id: "toolu_2", name: "get_weather", input: { city: "Rome" } },
          ],
        },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "toolu_1", content: "18°C" },
            {
              type: "tool_result",
              tool_use_id: "toolu_2",
              is_error: false,
              content: [
                { type: "text", text: "24°C" },
                { type: "image", source: { type: "url", url: "https://example.com/rome.png" } },
              ],
            },
            { type: "text", text: "And tomorrow?" },
          ],
        },
      ],
    });
    expect(warnings).toEqual([]);
    expect(request.messages).toEqual([
      { role: "user", content: "Weather in Paris and Rome?" },
      {
        role: "assistant",
        content: "Checking.",
        tool_calls: [
          { id: "toolu_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
          { id: "toolu_2", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome"}' } },
        ],
      },
      { role: "tool", tool_call_id: "toolu_1", content: "18°C" },
      { role: "tool", tool_call_id: "toolu_2", content: "24°C" },
      {
        role: "user",
        content: [
          { type: "image_url", image_url: { url: "https://example.com/rome.png" } },
          { type: "text", text: "And tomorrow?" },
        ],
      },
    ]);
  });

  it("converts tools and every tool_choice", () => {
    const tools = [
      { name: "get_weather", description: "Weather", input_schema: { type: "object", properties: { city: { type: "string" } } } },
      { type: "web_search_20250305", name: "web_search", max_uses: 3 },
    ];
    const convert = (tool_choice?: object) => anthropicRequestToOpenAI({ model: "m", max_tokens: 1, messages: [], tools, tool_choice });
    const { request, warnings } = convert();
    expect(request.tools).toEqual([
      {
        type: "function",
        function: { name: "get_weather", description: "Weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
      },
    ]);
    expect(request.tool_choice).toBeUndefined();
    expect(warnings).toEqual(['the server tool "web_search" (web_search_20250305) is not supported; it was not offered']);
    expect(convert({ type: "auto" }).request.tool_choice).toBe("auto");
    expect(convert({ type: "any" }).request.tool_choice).toBe("required");
    expect(convert({ type: "none" }).request.tool_choice).toBe("none");
    expect(convert({ type: "tool", name: "get_weather" }).request.tool_choice).toEqual({
      type: "function",
      function: { name: "get_weather" },
    });
    expect(convert({ type: "auto", disable_parallel_tool_use: true }).request).toMatchObject({
      tool_choice: "auto",
      parallel_tool_calls: false,
    });
  });

  it("asks for usage when streaming and warns about fields it cannot carry", () => {
    const { request, warnings } = anthropicRequestToOpenAI({
      model: "m",
      max_tokens: 64,
      stream: true,
      top_k: 5,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [
        {
          role: "user",
          content: [
            { type: "search_result", source: "x" },
            { type: "text", text: "hi" },
          ],
        },
      ],
    });
    expect(request).toEqual({
      model: "m",
      max_tokens: 64,
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "hi" }],
    });
    expect(warnings).toEqual([
      '"top_k" is not supported; it was ignored',
      '"thinking" is not supported; it was ignored',
      '"search_result" content blocks are not supported; one was left out',
    ]);
  });
});
