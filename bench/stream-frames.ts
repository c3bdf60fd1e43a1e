/**
 * The benchmark's OpenAI-format stream, frame by frame: what `fake-upstream.ts` sends and what
 * `frame-loop.ts` relays in a loop. 20 text chunks after the role chunk, then the finishing chunk, a
 * usage chunk and `[DONE]`.
 */

export const CHUNKS = 20;

/** A chunk of the benchmark's stream with these choices (and these fields besides) as a server-sent event. */
function frame(model: string, created: number, choices: unknown[], extra: Record<string, unknown> = {}): string {
  return `data: ${JSON.stringify({ id: "chatcmpl-bench", object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`;
}

/** One chunk as a server-sent event. */
export const chunkFrame = (model: string, created: number, delta: Record<string, unknown>, finish: string | null) =>
  frame(model, created, [{ index: 0, delta, finish_reason: finish }]);

/** The usage chunk as a server-sent event. */
export const usageFrame = (model: string, created: number) =>
  frame(model, created, [], { usage: { prompt_tokens: 5, completion_tokens: CHUNKS, total_tokens: 5 + CHUNKS } });

/** What ends a stream: the finishing chunk, the usage chunk and `[DONE]`. */
export const streamEnd = (model: string, created: number) =>
  `${chunkFrame(model, created, {}, "stop")}${usageFrame(model, created)}data: [DONE]\n\n`;

/** The whole stream's text, as the one-piece stream sends it in one write (each chunk's text `piece`). */
export function wholeStream(model: string, created: number, piece = "tok "): string {
  let text = chunkFrame(model, created, { role: "assistant", content: "" }, null);
  for (let i = 0; i < CHUNKS; i++) text += chunkFrame(model, created, { content: piece }, null);
  return text + streamEnd(model, created);
}
