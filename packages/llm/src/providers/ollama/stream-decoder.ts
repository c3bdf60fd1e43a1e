import type { ChatChunk } from "../../chat-types.ts";
import { asRecord, completionId, frameJson } from "../../common.ts";
import type { CallContext, DecodedFrames, StreamDecoder, StreamFrame } from "../../spec.ts";
import type { OllamaChatResponse } from "./api-types.ts";
import { createdOf, ollamaUsage, toolCallsOf } from "./convert-response.ts";
import { mapOllamaFinishReason } from "./finish-reason.ts";

type Delta = ChatChunk["choices"][number]["delta"];

/**
 * Ollama streams one JSON object a line: message increments while `done` is false, then a last
 * line with the done reason and the token counts (a finish chunk and a usage chunk here).
 */
export function ollamaStreamDecoder(context: CallContext): StreamDecoder {
  const id = completionId();
  let created: number | undefined;
  let started = false;
  let toolCount = 0;

  const chunk = (body: OllamaChatResponse, choices: ChatChunk["choices"], usage: ChatChunk["usage"] = null): ChatChunk => ({
    id,
    object: "chat.completion.chunk",
    created: created ?? 0,
    model: body.model ?? context.model,
    choices,
    usage,
  });

  const opening = (delta: Delta): Delta => {
    if (started) return delta;
    started = true;
    return { role: "assistant", ...delta };
  };

  return {
    decode(frame: StreamFrame): DecodedFrames {
      const json = frameJson(frame);
      if (!json.ok) return json.result;
      const parsed = json.value;
      const body = asRecord(parsed) as OllamaChatResponse;
      if (typeof body.error === "string") return { chunks: [], error: { status: 500, message: body.error, type: "api_error", code: null } };
      created ??= createdOf(body);
      const message = body.message ?? {};
      const deltas: Delta[] = [];
      if (message.thinking) deltas.push({ reasoning_content: message.thinking });
      if (message.content) deltas.push({ content: message.content });
      const calls = toolCallsOf(message.tool_calls);
      if (calls.length) {
        deltas.push({ tool_calls: calls.map((call, offset) => ({ index: toolCount + offset, ...call })) });
        toolCount += calls.length;
      }
      const chunks = deltas.map((delta) => chunk(body, [{ index: 0, delta: opening(delta), finish_reason: null }]));
      if (!body.done) return { chunks };
      const reason = mapOllamaFinishReason(body.done_reason, toolCount > 0);
      chunks.push(chunk(body, [{ index: 0, delta: opening({}), finish_reason: reason }]), chunk(body, [], ollamaUsage(body)));
      return { chunks, done: true };
    },
    flush: () => [],
  };
}
