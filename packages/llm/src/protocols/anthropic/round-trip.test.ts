import http from "node:http";
import type { AddressInfo } from "node:net";
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getProvider } from "../../registry.ts";
import type { CallContext } from "../../spec.ts";
import { readFrames } from "../../stream-reader.ts";
import { startSimulator, type UpstreamSimulator } from "../../testing/index.ts";
import { anthropicErrorBody } from "./errors.ts";
import { anthropicRequestToOpenAI } from "./request.ts";
import { openAICompletionToAnthropic } from "./response.ts";
import { createAnthropicStreamEncoder } from "./stream-encoder.ts";

/**
 * The whole path an Anthropic client takes through Lyss, in miniature: the inbound protocol turns its
 * request into OpenAI's format, a channel's adapter takes it to the (simulated) upstream, and the
 * answer goes back in Anthropic's format, read by the official SDK.
 */
let simulator: UpstreamSimulator;
let gateway: http.Server;
let gatewayUrl: string;

const CHANNELS: Record<string, string> = { openai: "gpt-4o-mini", anthropic: "claude-sonnet-4-5" };

async function relay(req: http.IncomingMessage, res: http.ServerResponse) {
  let raw = "";
  for await (const part of req) raw += part;
  const inbound = JSON.parse(raw) as { model: string };
  const { request } = anthropicRequestToOpenAI(inbound);
  const providerId = String(req.headers["x-channel"]);
  const provider = getProvider(providerId);
  if (!provider) throw new Error(`no provider ${providerId}`);
  const context: CallContext = { baseUrl: simulator.url, credentials: { api_key: "sk-sim" }, model: CHANNELS[providerId] ?? "" };
  const upstream = provider.chat.request(request, context).request;
  const response = await fetch(upstream.url, { method: upstream.method, headers: upstream.headers, body: upstream.body });
  if (!response.ok) {
    const info = provider.error(response.status, await response.text());
    res
      .writeHead(response.status, { "content-type": "application/json" })
      .end(JSON.stringify(anthropicErrorBody(response.status, info.message)));
    return;
  }
  if (!request.stream) {
    const completion = provider.chat.response(await response.json(), context);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(openAICompletionToAnthropic(completion, inbound.model)));
    return;
  }
  res.writeHead(200, { "content-type": "text/event-stream" });
  const decoder = provider.chat.stream(context, request);
  const encoder = createAnthropicStreamEncoder(inbound.model);
  for await (const frame of readFrames(response.body as unknown as AsyncIterable<Uint8Array>, provider.streamFormat)) {
    const decoded = decoder.decode(frame);
    for (const chunk of decoded.chunks) res.write(encoder.encode(chunk));
    if (decoded.error) return void res.end(encoder.error(anthropicErrorBody(decoded.error.status, "").error.type, decoded.error.message));
    if (decoded.done) break;
  }
  for (const chunk of decoder.flush()) res.write(encoder.encode(chunk));
  res.end(encoder.finish());
}

beforeAll(async () => {
  simulator = await startSimulator();
  gateway = http.createServer((req, res) => void relay(req, res).catch(() => res.destroy()));
  await new Promise<void>((resolve) => gateway.listen(0, "127.0.0.1", resolve));
  gatewayUrl = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise<void>((resolve) => gateway.close(() => resolve()));
  await simulator.close();
});

const weatherTool = {
  name: "get_weather",
  description: "Weather",
  input_schema: { type: "object" as const, properties: { city: { type: "string" } } },
};

describe.each(Object.keys(CHANNELS))("an Anthropic SDK client reaching a %s channel", (channel) => {
  const client = () =>
    new Anthropic({ apiKey: "lyss-token", baseURL: gatewayUrl, maxRetries: 0, defaultHeaders: { "x-channel": channel } });
  const ask = (text: string) => ({
    model: "claude-alias",
    max_tokens: 256,
    system: "Be brief.",
    messages: [{ role: "user" as const, content: text }],
  });

  it("gets a plain message", async () => {
    const message = await client().messages.create(ask("hello there"));
    expect(message).toMatchObject({
      type: "message",
      role: "assistant",
      model: "claude-alias",
      content: [{ type: "text", text: "Hello from the simulator. You said: hello there" }],
      stop_reason: "end_turn",
      usage: { input_tokens: 4, output_tokens: 8 },
    });
    expect(message.id).toMatch(/^msg_/);
  });

  it("streams a message", async () => {
    const message = await client().messages.stream(ask("hello there")).finalMessage();
    expect(message.content).toEqual([{ type: "text", text: "Hello from the simulator. You said: hello there" }]);
    expect(message).toMatchObject({ stop_reason: "end_turn", usage: { input_tokens: 4, output_tokens: 8, cache_read_input_tokens: 0 } });
  });

  it("streams a tool use and sends its result back", async () => {
    const first = await client()
      .messages.stream({ ...ask("What's the weather in Paris?"), tools: [weatherTool] })
      .finalMessage();
    expect(first.stop_reason).toBe("tool_use");
    const [toolUse] = first.content;
    expect(toolUse).toMatchObject({ type: "tool_use", name: "get_weather", input: { city: "Paris", unit: "celsius" } });
    if (toolUse?.type !== "tool_use") throw new Error("expected a tool use");
    const second = await client().messages.create({
      model: "claude-alias",
      max_tokens: 256,
      messages: [
        { role: "user", content: "Say hi" },
        { role: "assistant", content: first.content },
        { role: "user", content: [{ type: "tool_result", tool_use_id: toolUse.id, content: "sunny" }] },
      ],
    });
    expect(second.content).toEqual([{ type: "text", text: "Hello from the simulator. You said: Say hi" }]);
  });

  it("sees upstream failures as Anthropic errors", async () => {
    simulator.fail({ model: CHANNELS[channel] }, { status: 429, message: "slow down", times: 1 });
    const error = await client()
      .messages.create(ask("hi"))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Anthropic.RateLimitError);
    expect(error).toMatchObject({ status: 429, type: "rate_limit_error", apiMessage: "slow down" });
  });
});
