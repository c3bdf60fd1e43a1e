import type { ChatRequest, Usage } from "@lyss/llm";
import { textOf } from "@lyss/llm";
import { type TokenCounter, tokenCounter } from "../../infra/tokenizer.ts";

/** Four characters a token, should the vocabulary be unreadable: the call is still recorded and billed. */
const rough: TokenCounter = { count: (text) => Math.ceil(text.length / 4) };

/**
 * Characters counted exactly; a longer text is estimated from their tokens per character. Counting
 * takes about 0.1 ms per thousand characters on the serving thread: a 20 MB prompt counted whole
 * would stall it for seconds at each stopped stream.
 */
export const COUNTED_CHARS = 256 * 1024;

const tokensOf = (counter: TokenCounter, text: string) =>
  text.length <= COUNTED_CHARS
    ? counter.count(text)
    : Math.round((counter.count(text.slice(0, COUNTED_CHARS)) * text.length) / COUNTED_CHARS);

/**
 * Usage when the upstream reported none (a stream stopped before its end, an upstream that counts
 * nothing): the prompt's and the answer's text counted in the o200k vocabulary, a close estimate
 * for any model; four characters a token when the vocabulary cannot be read.
 */
export async function estimateUsage(
  body: ChatRequest,
  completionText: string,
  counting: () => Promise<TokenCounter> = tokenCounter,
): Promise<Usage> {
  const counter = await counting().catch(() => rough);
  const promptText = body.messages
    .map((message) => `${message.role}: ${textOf(message.content)}${message.tool_calls ? JSON.stringify(message.tool_calls) : ""}`)
    .join("\n");
  const prompt = tokensOf(counter, promptText) + body.messages.length * 3;
  const completion = tokensOf(counter, completionText);
  return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
}
