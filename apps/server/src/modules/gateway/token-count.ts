import type { ChatRequest, Usage } from "@lyss/llm";
import { textOf } from "@lyss/llm";

type Encoder = (text: string) => number;
let encoder: Encoder | undefined;

/** Counts tokens with the o200k vocabulary (loaded on first use); a close estimate for any model. */
async function count(text: string): Promise<number> {
  if (!text) return 0;
  if (!encoder) {
    const module = await import("gpt-tokenizer");
    encoder = (value: string) => module.encode(value).length;
  }
  return encoder(text);
}

/** Usage when the upstream reported none: the prompt's and the answer's text, tokenized. */
export async function estimateUsage(body: ChatRequest, completionText: string): Promise<Usage> {
  const promptText = body.messages
    .map((message) => `${message.role}: ${textOf(message.content)}${message.tool_calls ? JSON.stringify(message.tool_calls) : ""}`)
    .join("\n");
  const prompt = (await count(promptText)) + body.messages.length * 3;
  const completion = await count(completionText);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
