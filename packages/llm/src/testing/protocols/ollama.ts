import type { ChatMessage } from "../../chat-types.ts";
import { pieces, replyFor, type SimProtocol } from "../simulator.ts";
import { conversationOf, embed } from "./openai.ts";

interface ChatBody {
  model: string;
  messages?: ChatMessage[];
  stream?: boolean;
  tools?: { function: { name: string } }[];
}

const ROUTES = new Set(["POST /api/chat", "POST /api/embed", "GET /api/tags"]);
const CREATED_AT = "2024-11-14T22:13:20Z";
const line = (payload: unknown) => `${JSON.stringify(payload)}\n`;

/** Ollama's native API: `/api/chat` (NDJSON stream unless `stream: false`), `/api/embed`, `/api/tags`. */
export function ollamaProtocol(options: { models?: string[] } = {}): SimProtocol {
  const models = options.models ?? ["llama3.2:latest", "qwen2.5:7b", "nomic-embed-text:latest"];
  return {
    name: "ollama",
    matches: (method, path) => ROUTES.has(`${method} ${path}`),
    model: (_path, body) => (body as { model?: string } | undefined)?.model,
    errorBody: (_status, message) => ({ error: message }),
    errorFrame: (message) => line({ error: message }),
    async handle(request) {
      if (request.path === "/api/tags") {
        request.json(200, { models: models.map((name) => ({ name, model: name, modified_at: CREATED_AT, size: 0, digest: "sim" })) });
        return;
      }
      if (request.path === "/api/embed") {
        const body = request.body as { model: string; input: string | string[] };
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        const tokens = inputs.reduce((sum, text) => sum + String(text).split(/\s+/).length, 0);
        request.json(200, { model: body.model, embeddings: inputs.map((text) => embed(String(text))), prompt_eval_count: tokens });
        return;
      }
      const body = request.body as ChatBody;
      const reply = replyFor({ ...conversationOf(body.messages ?? []), toolNames: (body.tools ?? []).map((tool) => tool.function.name) });
      const toolCalls = reply.toolCall
        ? [{ function: { name: reply.toolCall.name, arguments: JSON.parse(reply.toolCall.arguments) as Record<string, unknown> } }]
        : undefined;
      const last = {
        model: body.model,
        created_at: CREATED_AT,
        done: true,
        done_reason: "stop",
        total_duration: 1_000_000,
        prompt_eval_count: reply.promptTokens,
        eval_count: reply.completionTokens,
      };
      if (body.stream === false) {
        const message = { role: "assistant", content: reply.text, ...(toolCalls ? { tool_calls: toolCalls } : {}) };
        request.json(200, { ...last, message });
        return;
      }
      const partial = (message: Record<string, unknown>) =>
        line({ model: body.model, created_at: CREATED_AT, message: { role: "assistant", ...message }, done: false });
      const frames = toolCalls
        ? [partial({ content: "", tool_calls: toolCalls })]
        : pieces(reply.text, 5).map((content) => partial({ content }));
      frames.push(line({ ...last, message: { role: "assistant", content: "" } }));
      await request.stream(frames, { malformed: '{"model": "broken\n', contentType: "application/x-ndjson" });
    },
  };
}
