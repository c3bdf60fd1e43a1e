import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ChatRequest, FunctionTool } from "../../chat-types.ts";
import type { CallContext, UpstreamRequest } from "../../spec.ts";
import { startSimulator, type UpstreamSimulator } from "../../testing/index.ts";
import { decodeStream, reassemble } from "../../testing/replay.ts";
import { ollama } from "./index.ts";

let simulator: UpstreamSimulator;
let context: CallContext;

beforeAll(async () => {
  simulator = await startSimulator();
  context = { baseUrl: simulator.url, credentials: {}, model: "llama3.2:latest" };
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
  model: "llama",
  messages: [{ role: "user", content }],
  ...extra,
});

describe("ollama against the simulator", () => {
  it("answers a plain request", async () => {
    const response = await send(ollama.chat.request(ask("ping"), context).request);
    const completion = ollama.chat.response(await response.json(), context);
    expect(completion.choices[0]).toEqual({
      index: 0,
      message: { role: "assistant", content: "Hello from the simulator. You said: ping" },
      finish_reason: "stop",
      logprobs: null,
    });
    expect(completion.usage).toEqual({ prompt_tokens: 1, completion_tokens: 7, total_tokens: 8 });
    expect(simulator.requestsTo("/api/chat")[0]?.body).toMatchObject({ model: "llama3.2:latest", stream: false });
  });

  it("streams NDJSON with usage on the done line", async () => {
    const request = ask("stream please", { stream: true });
    const response = await send(ollama.chat.request(request, context).request);
    const { chunks, done } = await decodeStream(ollama, bodyOf(response), context, request);
    expect(done).toBe(true);
    expect(reassemble(chunks)).toEqual({
      content: "Hello from the simulator. You said: stream please",
      reasoning: "",
      toolCalls: [],
      finishReason: "stop",
      roleChunks: 1,
      usage: { prompt_tokens: 2, completion_tokens: 8, total_tokens: 10 },
    });
  });

  it("streams a tool call", async () => {
    const request = ask("what is the weather", { stream: true, tools: [weather] });
    const response = await send(ollama.chat.request(request, context).request);
    const { toolCalls, finishReason } = reassemble((await decodeStream(ollama, bodyOf(response), context, request)).chunks);
    expect(finishReason).toBe("tool_calls");
    expect(toolCalls).toEqual([
      {
        id: expect.stringMatching(/^call_/),
        type: "function",
        function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
      },
    ]);
  });

  it("reads error statuses and in-stream error lines", async () => {
    simulator.fail({ path: "/api/chat" }, { status: 404, message: 'model "x" not found, try pulling it first', times: 1 });
    const failed = await send(ollama.chat.request(ask("hi"), context).request);
    expect(failed.status).toBe(404);
    expect(ollama.error(404, await failed.text())).toEqual({
      message: 'model "x" not found, try pulling it first',
      type: "invalid_request_error",
    });

    const request = ask("hi", { stream: true });
    simulator.fail({ path: "/api/chat" }, { errorFrameFirst: true, message: "overloaded", times: 1 });
    const errored = await decodeStream(ollama, bodyOf(await send(ollama.chat.request(request, context).request)), context, request);
    expect(errored).toMatchObject({ chunks: [], error: { status: 500, message: "overloaded" } });
  });

  it("embeds and lists models", async () => {
    const embedContext = { ...context, model: "nomic-embed-text:latest" };
    const translated = ollama.embeddings?.request({ model: "e", input: "one two" }, embedContext);
    const embeddings = ollama.embeddings?.response(await (await send(translated?.request as UpstreamRequest)).json(), embedContext);
    expect(embeddings?.data).toHaveLength(1);
    expect(embeddings?.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });

    const models = await send(ollama.models?.request(context) as UpstreamRequest);
    expect(ollama.models?.response(await models.json())).toEqual(["llama3.2:latest", "qwen2.5:7b", "nomic-embed-text:latest"]);
  });
});
