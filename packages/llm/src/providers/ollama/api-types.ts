/** The parts of Ollama's native API (`/api/chat`, `/api/embed`, `/api/tags`) that Lyss uses. */

export interface OllamaToolCall {
  id?: string;
  function: { index?: number; name: string; arguments: Record<string, unknown> };
}

export interface OllamaMessage {
  role: "system" | "user" | "assistant" | "tool";
  content: string;
  /** Base64 images, without a `data:` prefix. */
  images?: string[];
  tool_calls?: OllamaToolCall[];
  /** The tool a `tool` message answers. */
  tool_name?: string;
  thinking?: string;
}

export interface OllamaOptions {
  temperature?: number;
  top_p?: number;
  num_predict?: number;
  stop?: string[];
  seed?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
}

export interface OllamaChatRequest {
  model: string;
  messages: OllamaMessage[];
  stream: boolean;
  options?: OllamaOptions;
  /** `"json"`, or a JSON schema the answer must follow. */
  format?: "json" | Record<string, unknown>;
  tools?: unknown[];
  think?: boolean;
}

/** A whole answer, or (streamed) one line of it; the last line has `done: true` and the counts. */
export interface OllamaChatResponse {
  model?: string;
  created_at?: string;
  message?: Partial<OllamaMessage>;
  done?: boolean;
  done_reason?: "stop" | "length" | "load" | "unload" | string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}
