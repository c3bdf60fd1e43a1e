import type { ChatMessage, ChatRequest } from "../../chat-types.ts";
import { textOf } from "../../chat-types.ts";
import { pieces, replyFor, type SimProtocol } from "../simulator.ts";

/** A deterministic embedding of a text, 8 dimensions. */
export function embed(text: string): number[] {
  const vector = Array.from({ length: 8 }, () => 0);
  for (let index = 0; index < text.length; index++) vector[index % 8] = (vector[index % 8] ?? 0) + text.charCodeAt(index) / 1000;
  const norm = Math.hypot(...vector) || 1;
  return vector.map((value) => Number((value / norm).toFixed(6)));
}

export function conversationOf(messages: ChatMessage[]) {
  const lastUser = [...messages].reverse().find((message) => message.role === "user");
  return { lastUserText: textOf(lastUser?.content), allText: messages.map((message) => textOf(message.content)).join(" ") };
}

const sse = (payload: unknown) => `data: ${JSON.stringify(payload)}\n\n`;

/** A frame's padding, as OpenAI's stream obfuscation adds one: letters and digits of a length that varies. */
const padding = (index: number) => "Zq3xY7pLw0Kd".slice(0, 1 + ((index * 5) % 11));

/** OpenAI's chat completions, embeddings and models, at any path prefix (`/v1`, `/v4`, `/api/v1`, …). */
export function openAIProtocol(options: { models?: string[] } = {}): SimProtocol {
  const models = options.models ?? ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"];
  return {
    name: "openai",
    matches: (method, path) =>
      (method === "POST" && /\/(chat\/completions|embeddings)$/.test(path) && !path.includes("/openai/deployments/")) ||
      (method === "GET" && /\/v\d+\/models$/.test(path) && !path.startsWith("/v1beta")),
    model: (_path, body) => (body as { model?: string } | undefined)?.model,
    errorBody: (status, message) => ({
      error: { message, type: status === 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error", code: null },
    }),
    errorFrame: (message) => sse({ error: { message, type: "server_error", code: 503 } }),
    async handle(request) {
      if (request.path.endsWith("/models")) {
        request.json(200, { object: "list", data: models.map((id) => ({ id, object: "model", created: 0, owned_by: "simulator" })) });
        return;
      }
      if (request.path.endsWith("/embeddings")) {
        const body = request.body as { model: string; input: string | string[]; encoding_format?: string };
        const encode = (vector: number[]) =>
          body.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        const tokens = inputs.reduce((sum, text) => sum + String(text).split(/\s+/).length, 0);
        request.json(200, {
          object: "list",
          data: inputs.map((text, index) => ({ object: "embedding", index, embedding: encode(embed(String(text))) })),
          model: body.model,
          usage: { prompt_tokens: tokens, total_tokens: tokens },
        });
        return;
      }
      const body = request.body as ChatRequest;
      const forced = typeof body.tool_choice === "object" ? body.tool_choice.function?.name : undefined;
      const reply = replyFor({
        ...conversationOf(body.messages ?? []),
        // (Function tools only: a custom tool is answered with text.)
        toolNames: (body.tools ?? []).flatMap((tool) => (tool.function ? [tool.function.name] : [])),
        forceTool: forced,
      });
      const id = "chatcmpl-sim";
      const created = 1_700_000_000;
      const usage = {
        prompt_tokens: reply.promptTokens,
        completion_tokens: reply.completionTokens,
        total_tokens: reply.promptTokens + reply.completionTokens,
        prompt_tokens_details: { cached_tokens: 0 },
      };
      const finish = reply.toolCall ? "tool_calls" : "stop";
      if (!body.stream) {
        request.json(200, {
          id,
          object: "chat.completion",
          created,
          model: body.model,
          choices: [
            {
              index: 0,
              message: {
                role: "assistant",
                content: reply.toolCall ? null : reply.text,
                ...(reply.toolCall
                  ? {
                      tool_calls: [
                        {
                          id: reply.toolCall.id,
                          type: "function",
                          function: { name: reply.toolCall.name, arguments: reply.toolCall.arguments },
                        },
                      ],
                    }
                  : {}),
              },
              finish_reason: finish,
              logprobs: null,
            },
          ],
          usage,
        });
        return;
      }
      // OpenAI pads each streamed delta with random characters unless asked not to (`include_obfuscation`).
      const padded = (body.stream_options as { include_obfuscation?: boolean } | undefined)?.include_obfuscation !== false;
      let frameIndex = 0;
      const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
        sse({
          id,
          object: "chat.completion.chunk",
          created,
          model: body.model,
          choices: [{ index: 0, delta, finish_reason: finishReason }],
          ...(padded ? { obfuscation: padding(frameIndex++) } : {}),
        });
      const frames = [chunk({ role: "assistant", content: "" })];
      if (reply.toolCall) {
        frames.push(
          chunk({
            tool_calls: [{ index: 0, id: reply.toolCall.id, type: "function", function: { name: reply.toolCall.name, arguments: "" } }],
          }),
        );
        for (const part of pieces(reply.toolCall.arguments, 4))
          frames.push(chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }));
      } else {
        for (const part of pieces(reply.text, 5)) frames.push(chunk({ content: part }));
      }
      frames.push(chunk({}, finish));
      if (body.stream_options?.include_usage) {
        frames.push(sse({ id, object: "chat.completion.chunk", created, model: body.model, choices: [], usage }));
      }
      frames.push("data: [DONE]\n\n");
      await request.stream(frames, { malformed: 'data: {"id": "broken\n\n', contentType: "text/event-stream" });
    },
  };
}
