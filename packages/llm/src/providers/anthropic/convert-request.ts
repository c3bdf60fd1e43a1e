import type { ChatRequest, FunctionTool, ToolChoice } from "../../chat-types.ts";
import { functionToolsOnly, unsupportedWarnings } from "../../common.ts";
import type { AnthropicMessagesRequest, AnthropicTool, AnthropicToolChoice } from "./api-types.ts";
import { convertMessages } from "./convert-messages.ts";

/** Anthropic requires `max_tokens`; this is what a request without one gets. */
export const DEFAULT_MAX_TOKENS = 4096;

/** OpenAI parameters Anthropic has no equivalent for. */
const UNSUPPORTED = ["presence_penalty", "frequency_penalty", "seed", "logit_bias", "top_logprobs", "reasoning_effort"] as const;

function convertTool(tool: FunctionTool): AnthropicTool {
  const { name, description, parameters } = tool.function;
  return { name, ...(description ? { description } : {}), input_schema: parameters ?? { type: "object", properties: {} } };
}

function convertToolChoice(choice: ToolChoice): AnthropicToolChoice {
  if (choice === "none") return { type: "none" };
  if (choice === "required") return { type: "any" };
  if (typeof choice === "object") return { type: "tool", name: choice.function.name };
  return { type: "auto" };
}

/** Warnings for the parameters Anthropic cannot honour; nothing is emulated behind the caller's back. */
function parameterWarnings(body: ChatRequest): string[] {
  const warnings = unsupportedWarnings(body, UNSUPPORTED, "Anthropic");
  if (body.n !== undefined && body.n !== null && body.n > 1) warnings.push('Anthropic returns a single choice; "n" was not sent');
  if (body.logprobs) warnings.push('Anthropic does not support "logprobs"; it was not sent');
  if (body.response_format && body.response_format.type !== "text") {
    warnings.push(`Anthropic has no JSON mode; "response_format" (${body.response_format.type}) was not sent`);
  }
  return warnings;
}

/** An OpenAI chat request as an Anthropic Messages request, with warnings for what could not be said. */
export function convertRequest(request: ChatRequest, model: string): { body: AnthropicMessagesRequest; warnings: string[] } {
  const warnings = parameterWarnings(request);
  const body = functionToolsOnly(request, "Anthropic", warnings);
  const { system, messages } = convertMessages(body.messages ?? [], warnings);
  const outgoing: AnthropicMessagesRequest = {
    model,
    max_tokens: body.max_completion_tokens ?? body.max_tokens ?? DEFAULT_MAX_TOKENS,
    messages,
  };
  if (system) outgoing.system = system;
  if (body.temperature !== undefined && body.temperature !== null) {
    if (body.temperature > 1) warnings.push(`Anthropic accepts a temperature up to 1; ${body.temperature} was sent as 1`);
    outgoing.temperature = Math.min(body.temperature, 1);
  }
  if (body.top_p !== undefined && body.top_p !== null) outgoing.top_p = body.top_p;
  if (body.stop !== undefined && body.stop !== null) {
    const stops = (Array.isArray(body.stop) ? body.stop : [body.stop]).filter((stop) => stop !== "");
    if (stops.length) outgoing.stop_sequences = stops;
  }
  if (body.tools?.length) {
    outgoing.tools = body.tools.map(convertTool);
    const choice = convertToolChoice(body.tool_choice ?? "auto");
    if (body.parallel_tool_calls === false && choice.type !== "none") choice.disable_parallel_tool_use = true;
    if (body.tool_choice !== undefined || choice.disable_parallel_tool_use) outgoing.tool_choice = choice;
  }
  if (body.user) outgoing.metadata = { user_id: body.user };
  if (body.stream) outgoing.stream = true;
  return { body: outgoing, warnings };
}
