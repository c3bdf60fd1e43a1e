import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ChatRequest, FunctionTool } from "../../chat-types.ts";
import type { CallContext, UpstreamRequest } from "../../spec.ts";
import { startSimulator, type UpstreamSimulator } from "../../testing/index.ts";
import { decodeStream, reassemble } from "../../testing/replay.ts";
import { gemini } from "./index.ts";

let simulator: UpstreamSimulator;
let context: CallContext;

beforeAll(async () => {
  simulator = await startSimulator();
  context = { baseUrl: simulator.url, credentials: { api_key: "sim-key" }, model: "gemini-2.0-flash" };
});
beforeEach(() => simulator.reset());
afterAll(() => simulator.close());

const send = (request: UpstreamRequest) =>
  fetch(request.url, { method: request.method, headers: request.headers, body: request.body ?? null });
const bodyOf = (response: Response) => response.body as AsyncIterable<Uint8Array>;

const weather: FunctionTool = {
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
};
const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "gemini",
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content },
  ],
  ...extra,
});

describe("gemini against the simulator", () => {
  it("answers a plain request like the OpenAI protocol does", async () => {
    const response = await send(gemini.chat.request(ask("ping"), context).request);
    expect(response.status).toBe(200);
    const completion = gemini.chat.response(await response.json(), context);
    expect(completion.choices).toEqual([
      {
        index: 0,
        message: { role: "assistant", content: "Hello from the simulator. You said: ping" },
        finish_reason: "stop",
        logprobs: null,
      },
    ]);
    expect(completion.usage).toEqual({ prompt_tokens: 3, completion_tokens: 7, total_tokens: 10 });
    const [recorded] = simulator.requestsTo("/v1beta/models/gemini-2.0-flash:generateContent");
    expect(recorded?.headers["x-goog-api-key"]).toBe("sim-key");
    expect(recorded?.body).toMatchObject({ systemInstruction: { parts: [{ text: "Be brief." }] } });
  });

  it("streams text with a final usage chunk", async () => {
    const request = ask("stream please", { stream: true });
    const response = await send(gemini.chat.request(request, context).request);
    expect(response.headers.get("content-type")).toBe("text/event-stream");
    const { chunks, done } = await decodeStream(gemini, bodyOf(response), context, request);
    expect(done).toBe(true);
    expect(reassemble(chunks)).toEqual({
      content: "Hello from the simulator. You said: stream please",
      reasoning: "",
      toolCalls: [],
      finishReason: "stop",
      roleChunks: 1,
      usage: { prompt_tokens: 4, completion_tokens: 8, total_tokens: 12 },
    });
  });

  it("streams a forced function call as a tool call", async () => {
    const request = ask("hello", { stream: true, tools: [weather], tool_choice: { type: "function", function: { name: "get_weather" } } });
    const response = await send(gemini.chat.request(request, context).request);
    const { toolCalls, finishReason } = reassemble((await decodeStream(gemini, bodyOf(response), context, request)).chunks);
    expect(finishReason).toBe("tool_calls");
    expect(toolCalls).toEqual([
      {
        id: expect.stringMatching(/^call_/),
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
      },
    ]);
  });

  it("reads error statuses, in-stream errors and malformed frames", async () => {
    simulator.fail({ model: "gemini-2.0-flash" }, { status: 429, message: "quota", times: 1 });
    const failed = await send(gemini.chat.request(ask("hi"), context).request);
    expect(failed.status).toBe(429);
    expect(gemini.error(429, await failed.text())).toEqual({ message: "quota", type: "rate_limit_error", code: "RESOURCE_EXHAUSTED" });

    const request = ask("hi", { stream: true });
    simulator.fail({ path: ":streamGenerateContent" }, { errorFrameFirst: true, message: "overloaded", times: 1 });
    const errored = await decodeStream(gemini, bodyOf(await send(gemini.chat.request(request, context).request)), context, request);
    expect(errored).toMatchObject({ chunks: [], error: { status: 503, message: "overloaded", code: "UNAVAILABLE" } });

    simulator.fail({ path: ":streamGenerateContent" }, { malformedAfterFrames: 2, times: 1 });
    const broken = await decodeStream(gemini, bodyOf(await send(gemini.chat.request(request, context).request)), context, request);
    expect(reassemble(broken.chunks).content).not.toBe("");
    expect(broken.error).toMatchObject({ status: 502 });
  });

  it("embeds and lists models", async () => {
    const embedContext = { ...context, model: "text-embedding-004" };
    const translated = gemini.embeddings?.request({ model: "e", input: ["one", "two"] }, embedContext);
    const response = await send(translated?.request as UpstreamRequest);
    const embeddings = gemini.embeddings?.response(await response.json(), embedContext);
    expect(embeddings?.data).toHaveLength(2);
    expect(embeddings?.data[0]?.embedding).toHaveLength(8);
    expect(embeddings?.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });

    const models = await send(gemini.models?.request(context) as UpstreamRequest);
    expect(gemini.models?.response(await models.json())).toEqual(["gemini-2.0-flash", "gemini-2.5-pro", "text-embedding-004"]);
  });
});
