import { anthropic } from "./providers/anthropic/index.ts";
import { azure } from "./providers/azure/index.ts";
import { deepseek } from "./providers/deepseek/index.ts";
import { ernie } from "./providers/ernie/index.ts";
import { gemini } from "./providers/gemini/index.ts";
import { moonshot } from "./providers/moonshot/index.ts";
import { ollama } from "./providers/ollama/index.ts";
import { openai } from "./providers/openai/index.ts";
import { genericOpenAICompatible } from "./providers/openai-compatible/index.ts";
import { openrouter } from "./providers/openrouter/index.ts";
import { qwen } from "./providers/qwen/index.ts";
import { zhipu } from "./providers/zhipu/index.ts";
import type { ProviderSpec } from "./spec.ts";

/** Every provider Lyss can talk to, in the order the console lists them. */
export const PROVIDERS: readonly ProviderSpec[] = [
  openai,
  anthropic,
  azure,
  gemini,
  deepseek,
  qwen,
  zhipu,
  moonshot,
  ernie,
  openrouter,
  ollama,
  genericOpenAICompatible,
];

const BY_ID = new Map(PROVIDERS.map((provider) => [provider.id, provider]));

export function getProvider(id: string): ProviderSpec | undefined {
  return BY_ID.get(id);
}
