import type { AnthropicErrorBody } from "../../providers/anthropic/api-types.ts";
import { errorTypeOfStatus } from "../../providers/anthropic/errors.ts";

/** An error in Anthropic's shape, its type chosen by the HTTP status (503 and 529 read as overloaded). */
export function anthropicErrorBody(status: number, message: string): AnthropicErrorBody {
  return { type: "error", error: { type: errorTypeOfStatus(status), message } };
}
