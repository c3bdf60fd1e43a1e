import { describe, expect, it } from "vitest";
import type { ChatRequest } from "../../chat-types.ts";
import { requestJson } from "../../common.ts";
import type { CallContext } from "../../spec.ts";
import { cleanSchema } from "./clean-schema.ts";
import { gemini } from "./index.ts";

const context: CallContext = {
  baseUrl: "https://generativelanguage.googleapis.com",
  credentials: { api_key: "AIza-test" },
  model: "gemini-2.0-flash",
};

const translate = (body: Partial<ChatRequest>, callContext = context) => {
  const { request, warnings } = gemini.chat.request({ model: "gemini", messages: [], ...body } as ChatRequest, callContext);
  return { request, warnings, body: (requestJson(request) ?? {}) as Record<string, unknown> };
};

describe("gemini request translation", () => {
  it("posts generateContent with the key in x-goog-api-key, and streams with alt=sse", () => {
    const plain = translate({ messages: [{ role: "user", content: "Hi" }] });
    expect(plain.request.method).toBe("POST");
    expect(plain.request.url).toBe("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent");
    expect(plain.request.headers).toEqual({ "content-type": "application/json", "x-goog-api-key": "AIza-test" });
    expect(plain.body).toEqual({ contents: [{ role: "user", parts: [{ text: "Hi" }] }] });
    expect(plain.warnings).toEqual([]);

    const streamed = translate({ messages: [{ role: "user", content: "Hi" }], stream: true }, { ...context, model: "tunedModels/my-tune" });
    expect(streamed.request.url).toBe("https://generativelanguage.googleapis.com/v1beta/tunedModels/my-tune:streamGenerateContent?alt=sse");
  });

  it("moves system and developer messages to systemInstruction and maps roles, images and tool turns", () => {
    const { body, warnings } = translate({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these pictures, and the weather?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
            { type: "image_url", image_url: { url: "https://example.com/cat.webp?size=large" } },
            { type: "image_url", image_url: { url: "https://example.com/photo" } },
          ],
        },
        {
          role: "assistant",
          content: "Let me check.",
          tool_calls: [
            { id: "call_a", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
            { id: "call_b", type: "function", function: { name: "get_time", arguments: "" } },
          ],
        },
        { role: "tool", tool_call_id: "call_a", content: '{"temperature":21}' },
        { role: "tool", tool_call_id: "call_b", content: "14:05" },
        { role: "user", content: "Thanks" },
      ],
    });
    expect(warnings).toEqual([]);
    expect(body).toEqual({
      systemInstruction: { parts: [{ text: "Be brief." }, { text: "Answer in French." }] },
      contents: [
        {
          role: "user",
          parts: [
            { text: "What is in these pictures, and the weather?" },
            { inlineData: { mimeType: "image/png", data: "iVBORw0KGgo=" } },
            { fileData: { fileUri: "https://example.com/cat.webp?size=large", mimeType: "image/webp" } },
            { fileData: { fileUri: "https://example.com/photo", mimeType: "image/jpeg" } },
          ],
        },
        {
          role: "model",
          parts: [
            { text: "Let me check." },
            { functionCall: { name: "get_weather", args: { city: "Paris" } } },
            { functionCall: { name: "get_time", args: {} } },
          ],
        },
        {
          role: "user",
          parts: [
            { functionResponse: { name: "get_weather", response: { temperature: 21 } } },
            { functionResponse: { name: "get_time", response: { content: "14:05" } } },
            { text: "Thanks" },
          ],
        },
      ],
    });
  });

  it("declares tools with cleaned schemas and maps tool_choice", () => {
    const tools: ChatRequest["tools"] = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather for a city",
          strict: true,
          parameters: {
            $schema: "http://json-schema.org/draft-07/schema#",
            type: "object",
            additionalProperties: false,
            properties: {
              city: { type: "string", format: "email", minLength: 1 },
              unit: { type: ["string", "null"], enum: ["celsius", "fahrenheit"] },
              when: { type: "string", format: "date-time" },
              tags: { type: "array", items: { type: "object", additionalProperties: false, properties: { k: { const: "v" } } } },
            },
            required: ["city"],
          },
        },
      },
      { type: "function", function: { name: "get_time", parameters: { type: "object", properties: {}, additionalProperties: false } } },
    ];
    const auto = translate({ messages: [{ role: "user", content: "x" }], tools });
    expect(auto.body.tools).toEqual([
      {
        functionDeclarations: [
          {
            name: "get_weather",
            description: "Weather for a city",
            parameters: {
              type: "object",
              properties: {
                city: { type: "string", minLength: 1 },
                unit: { nullable: true, type: "string", enum: ["celsius", "fahrenheit"] },
                when: { type: "string", format: "date-time" },
                tags: { type: "array", items: { type: "object", properties: { k: { enum: ["v"] } } } },
              },
              required: ["city"],
            },
          },
          { name: "get_time" },
        ],
      },
    ]);
    expect(auto.body.toolConfig).toBeUndefined();
    expect(auto.warnings).toEqual([]);
    const mode = (choice: ChatRequest["tool_choice"]) => translate({ messages: [], tools, tool_choice: choice }).body.toolConfig;
    expect(mode("auto")).toEqual({ functionCallingConfig: { mode: "AUTO" } });
    expect(mode("none")).toEqual({ functionCallingConfig: { mode: "NONE" } });
    expect(mode("required")).toEqual({ functionCallingConfig: { mode: "ANY" } });
    expect(mode({ type: "function", function: { name: "get_time" } })).toEqual({
      functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_time"] },
    });
  });

  it("maps sampling settings to generationConfig and JSON modes to a response schema", () => {
    const { body, warnings } = translate({
      messages: [{ role: "user", content: "x" }],
      temperature: 0.3,
      top_p: 0.9,
      max_tokens: 100,
      max_completion_tokens: 200,
      stop: "END",
      n: 2,
      seed: 7,
      presence_penalty: 0.1,
      frequency_penalty: 0.2,
      reasoning_effort: "low",
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: { type: "object", properties: { ok: { type: "boolean" } }, additionalProperties: false } },
      },
    });
    expect(warnings).toEqual([]);
    expect(body.generationConfig).toEqual({
      temperature: 0.3,
      topP: 0.9,
      maxOutputTokens: 200,
      stopSequences: ["END"],
      candidateCount: 2,
      seed: 7,
      presencePenalty: 0.1,
      frequencyPenalty: 0.2,
      responseMimeType: "application/json",
      responseSchema: { type: "object", properties: { ok: { type: "boolean" } } },
      thinkingConfig: { thinkingBudget: 1024, includeThoughts: true },
    });
    const jsonObject = translate({ messages: [], response_format: { type: "json_object" } });
    expect(jsonObject.body.generationConfig).toEqual({ responseMimeType: "application/json" });
  });

  it("warns about what Gemini cannot honour instead of dropping it silently", () => {
    const { body, warnings } = translate({
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "x" },
            { type: "video_url", video_url: "v" },
          ],
        },
        { role: "tool", tool_call_id: "call_unknown", content: "[1,2]" },
      ],
      logit_bias: { 50256: -100 },
      logprobs: true,
      parallel_tool_calls: false,
    });
    expect(warnings).toEqual([
      'Gemini does not support "logit_bias"; it was not sent',
      'Gemini does not support "logprobs"; it was not sent',
      'Gemini does not support "video_url" content parts; one was not sent',
      'tool message call_unknown answers no earlier tool call; sent as "unknown"',
      'Gemini does not support "parallel_tool_calls": false; it was not sent',
    ]);
    expect(body.contents).toEqual([
      { role: "user", parts: [{ text: "x" }, { functionResponse: { name: "unknown", response: { content: "[1,2]" } } }] },
    ]);
  });

  it("cleans schemas: nullable unions, oneOf, and empty input", () => {
    expect(cleanSchema({ anyOf: [{ type: "string" }, { type: "null" }] })).toEqual({ nullable: true, type: "string" });
    expect(cleanSchema({ oneOf: [{ type: "string" }, { type: "integer" }], $ref: "#/x" })).toEqual({
      anyOf: [{ type: "string" }, { type: "integer" }],
    });
    expect(cleanSchema({})).toBeUndefined();
  });
});
