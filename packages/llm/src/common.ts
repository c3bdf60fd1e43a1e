import { randomBytes } from "node:crypto";
import type { ChatRequest } from "./chat-types.ts";
import type { Capabilities, CredentialField, DecodedFrames, Localized, UpstreamErrorInfo } from "./spec.ts";

export const nowSeconds = () => Math.floor(Date.now() / 1000);

export const completionId = (prefix = "chatcmpl") => `${prefix}-${randomBytes(12).toString("base64url")}`;

export const toolCallId = () => `call_${randomBytes(12).toString("base64url")}`;

/** Bases kept by a `keptUrls`, and keys kept for one base (a bound, not a size any deployment reaches). */
const BASES_KEPT = 1000;
const KEYS_KEPT = 100;

/**
 * URLs made from a channel's base and a key (a path, say), each made once: a channel's calls make the
 * same few URLs on every request, and answering the same string again also spares the upstream client
 * hashing a new string to find what it parsed of it (1.1 µs a call against 0.06 in a loop).
 */
export function keptUrls(make: (base: string, key: string) => string): (base: string, key: string) => string {
  const kept = new Map<string, Map<string, string>>();
  return (base, key) => {
    let byKey = kept.get(base);
    let url = byKey?.get(key);
    if (url !== undefined) return url;
    url = make(base, key);
    if (!byKey) {
      if (kept.size >= BASES_KEPT) kept.clear();
      byKey = new Map();
      kept.set(base, byKey);
    }
    if (byKey.size >= KEYS_KEPT) byKey.clear();
    byKey.set(key, url);
    return url;
  };
}

/** Joins an origin and a path with exactly one slash between (kept: see `keptUrls`). */
export const joinUrl = keptUrls((base, path) => `${base.replace(/\/+$/, "")}/${path.replace(/^\/+/, "")}`);

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Whether a value is a JSON object (not null, not an array). */
export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export const asRecord = (value: unknown): Record<string, unknown> => (isRecord(value) ? value : {});

export const asString = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

export const asNumber = (value: unknown): number | undefined => (typeof value === "number" && Number.isFinite(value) ? value : undefined);

/** The error type OpenAI clients expect for an HTTP status. */
export function errorTypeForStatus(status: number): string {
  if (status === 400 || status === 404 || status === 413 || status === 422) return "invalid_request_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 429) return "rate_limit_error";
  if (status >= 500) return "api_error";
  return "invalid_request_error";
}

/** Reads `{error: {message, type, code}}` or `{error: "…"}` or `{message}` bodies; falls back to the text. */
export function genericError(status: number, body: string): UpstreamErrorInfo {
  const parsed = asRecord(parseJson(body));
  const error = parsed.error;
  if (typeof error === "string") return { message: error, type: errorTypeForStatus(status) };
  const record = asRecord(error);
  const message = asString(record.message) ?? asString(parsed.message) ?? (body.slice(0, 500) || `upstream answered ${status}`);
  const code = record.code ?? parsed.code;
  return {
    message,
    type: asString(record.type) ?? errorTypeForStatus(status),
    code: typeof code === "string" || typeof code === "number" ? String(code) : null,
  };
}

export const API_KEY_FIELD: CredentialField = {
  name: "api_key",
  type: "secret",
  required: true,
  placeholder: "sk-...",
  label: { en: "API key", "zh-CN": "API 密钥" },
  help: { en: "The key issued by the provider.", "zh-CN": "服务商签发的密钥。" },
};

export const FULL_CAPABILITIES: Capabilities = {
  chat: true,
  embeddings: true,
  tools: true,
  vision: true,
  jsonMode: true,
  modelListing: true,
  streamUsage: true,
  openAIFormat: false,
};

export const names = (en: string, zh: string): Localized => ({ en, "zh-CN": zh });

/** The prompt's sampling settings that a provider ignores, as warnings. */
export function unsupportedWarnings(body: Record<string, unknown>, fields: readonly string[], provider: string): string[] {
  return fields
    .filter((field) => body[field] !== undefined && body[field] !== null)
    .map((field) => `${provider} does not support "${field}"; it was not sent`);
}

/** Whether a tool, tool call or tool choice is a function's (a missing type is): the one kind every adapter translates. */
export const isFunctionKind = (item: unknown): boolean => {
  const type = (item as { type?: unknown } | null)?.type;
  return type === undefined || type === "function";
};

/**
 * What keeps a function tool (`"tool"`: its name) or function tool call (`"call"`: its name and its
 * arguments as JSON text) from being one every adapter can read; undefined when nothing does, and
 * for tools and calls of other kinds, which are not read as functions.
 */
export function functionFault(item: unknown, kind: "tool" | "call"): string | undefined {
  if (!isFunctionKind(item)) return undefined;
  const fn = asRecord(asRecord(item).function);
  if (typeof fn.name === "string" && (kind === "tool" || typeof fn.arguments === "string")) return undefined;
  return kind === "call"
    ? "a function tool call needs function.name and function.arguments as strings"
    : "a function tool needs function.name as a string";
}

/**
 * The request with only function tools, tool calls and tool choice, for an adapter whose provider
 * knows no other kind (OpenAI's custom tools, a provider's built-in search): the others are left
 * out, each kind with a warning. The request itself when it has none.
 */
export function functionToolsOnly(body: ChatRequest, provider: string, warnings: string[]): ChatRequest {
  const tools = body.tools?.filter(isFunctionKind);
  const choice = typeof body.tool_choice === "object" && !isFunctionKind(body.tool_choice) ? undefined : body.tool_choice;
  const callsKept = body.messages.every((message) => !message.tool_calls || message.tool_calls.every(isFunctionKind));
  if (tools?.length === body.tools?.length && choice === body.tool_choice && callsKept) return body;
  if (tools?.length !== body.tools?.length) warnings.push(`${provider} supports function tools only; the others were not sent`);
  if (choice !== body.tool_choice) warnings.push(`${provider} supports function tools only; "tool_choice" was not sent`);
  if (!callsKept) warnings.push(`${provider} supports function tools only; the other tool calls of earlier turns were not sent`);
  const messages = callsKept
    ? body.messages
    : body.messages.map((message) =>
        message.tool_calls ? { ...message, tool_calls: message.tool_calls.filter(isFunctionKind) } : message,
      );
  const narrowed: ChatRequest = { ...body, messages, tools: tools ?? [] };
  if (!body.tools) delete narrowed.tools;
  if (choice === undefined) delete narrowed.tool_choice;
  return narrowed;
}

/** Bytes as a Buffer over the same memory (no copy). */
export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** An upstream request's JSON body as a value (undefined without a body); it may be text or its UTF-8 bytes. */
export function requestJson(request: { body?: string | Uint8Array }): unknown {
  const body = request.body;
  if (body === undefined) return undefined;
  return JSON.parse(typeof body === "string" ? body : asBuffer(body).toString("utf8"));
}

/** The JSON of one stream frame, or what to answer when there is none (empty) or it is malformed. */
export function frameJson(frame: { data: string }): { ok: true; value: unknown } | { ok: false; result: DecodedFrames } {
  // JSON.parse allows the surrounding white space; only a failed parse needs a closer look.
  const value = parseJson(frame.data);
  if (value === undefined) {
    if (!frame.data.trim()) return { ok: false, result: { chunks: [] } };
    return {
      ok: false,
      result: { chunks: [], error: { status: 502, message: "malformed stream frame from upstream", type: "api_error" } },
    };
  }
  return { ok: true, value };
}
