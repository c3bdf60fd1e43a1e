import type { ChatChunk, ChatCompletion, ChatRequest, EmbeddingsResponse, Usage } from "../../chat-types.ts";
import {
  API_KEY_FIELD,
  asNumber,
  asRecord,
  FULL_CAPABILITIES,
  frameJson,
  functionFault,
  genericError,
  isRecord,
  joinUrl,
  unsupportedWarnings,
} from "../../common.ts";
import type {
  CallContext,
  Capabilities,
  CredentialField,
  DecodedFrames,
  Localized,
  ProviderSpec,
  StreamDecoder,
  StreamFrame,
  UpstreamRequest,
} from "../../spec.ts";
import { chunkTemplates } from "./chunk-template.ts";
import { type StreamOpenings, streamOpenings } from "./openings.ts";
import { rawJsonBody } from "./raw-body.ts";

export interface CompatibleOptions {
  id: string;
  names: Localized;
  defaultBaseUrl: string;
  /** Path prefix of the API under the origin: `/v1` for most, `/v4` for Zhipu, … */
  apiPrefix?: string;
  credentialSchema?: CredentialField[];
  capabilities?: Partial<Capabilities>;
  /** Request fields the upstream rejects or ignores; dropped with a warning. */
  unsupported?: readonly string[];
  /** Extra headers from credential fields (OpenRouter's attribution headers, say). */
  headers?: (context: CallContext) => Record<string, string>;
  /** Last adjustments to the outgoing body. */
  adjustBody?: (body: Record<string, unknown>, warnings: string[]) => void;
}

/** Usage as OpenAI reports it, with the cache fields some compatible providers name differently. */
export function normalizeUsage(raw: unknown): Usage | undefined {
  const usage = asRecord(raw);
  const prompt = asNumber(usage.prompt_tokens);
  const completion = asNumber(usage.completion_tokens);
  if (prompt === undefined && completion === undefined) return undefined;
  const details = asRecord(usage.prompt_tokens_details);
  const cached = asNumber(usage.prompt_cache_hit_tokens) ?? asNumber(details.cached_tokens) ?? asNumber(usage.cached_tokens);
  const reasoning = asNumber(asRecord(usage.completion_tokens_details).reasoning_tokens);
  const result: Usage = {
    prompt_tokens: prompt ?? 0,
    completion_tokens: completion ?? 0,
    total_tokens: asNumber(usage.total_tokens) ?? (prompt ?? 0) + (completion ?? 0),
  };
  if (cached !== undefined) result.prompt_tokens_details = { cached_tokens: cached };
  if (reasoning !== undefined) result.completion_tokens_details = { reasoning_tokens: reasoning };
  return result;
}

/** What keeps a body from being a chat completion every reader of one can read, if anything does. */
function completionFault(body: Record<string, unknown>): string | undefined {
  if (!Array.isArray(body.choices)) return "it has no choices";
  for (const choice of body.choices as unknown[]) {
    const message = isRecord(choice) ? choice.message : undefined;
    if (!isRecord(message)) return "a choice has no message";
    const calls = message.tool_calls;
    if (calls == null) continue;
    // (A call of another kind, OpenAI's custom tools say, is the client's to read.)
    if (!Array.isArray(calls)) return "its tool calls are not a list";
    for (const call of calls) {
      const fault = isRecord(call) ? functionFault(call, "call") : "a tool call is not an object";
      if (fault) return fault;
    }
  }
  return undefined;
}

/**
 * An OpenAI chat completion body, with its usage normalised. A body that is not one (no choices, a
 * choice without a message, a tool call without its function) is refused with an error, as a
 * malformed answer the caller may try elsewhere.
 */
export function compatibleResponse(raw: unknown): ChatCompletion {
  const fault = completionFault(asRecord(raw));
  if (fault) throw new Error(`not a chat completion: ${fault}`);
  const body = asRecord(raw) as unknown as ChatCompletion;
  const usage = normalizeUsage(asRecord(raw).usage);
  return { ...body, object: "chat.completion", ...(usage ? { usage } : {}) };
}

/** Decodes one frame of an OpenAI chat stream: a chunk, `[DONE]`, or an error object. */
export function decodeCompatibleFrame(frame: StreamFrame): DecodedFrames {
  if (frame.data.length < 16 && frame.data.trim() === "[DONE]") return { chunks: [], done: true };
  const json = frameJson(frame);
  if (!json.ok) return json.result;
  const record = asRecord(json.value);
  if (record.error) {
    const info = genericError(500, frame.data);
    const status = asNumber(asRecord(record.error).status) ?? asNumber(asRecord(record.error).code) ?? 500;
    return { chunks: [], error: { ...info, status: status >= 400 && status < 600 ? status : 500 } };
  }
  const chunk = record as unknown as ChatChunk;
  // Some providers put usage inside the choice of the last chunk.
  const choiceUsage = chunk.choices?.[0] ? (chunk.choices[0] as unknown as Record<string, unknown>).usage : undefined;
  if (record.object === "chat.completion.chunk" && Array.isArray(chunk.choices) && record.usage == null && choiceUsage == null) {
    // Already in OpenAI's format, as most chunks of a stream are: no copy, and the text can go out as it came.
    return { chunks: [chunk], raw: frame.data };
  }
  const usage = normalizeUsage(record.usage ?? choiceUsage);
  return { chunks: [{ ...chunk, object: "chat.completion.chunk", choices: chunk.choices ?? [], usage: usage ?? null }] };
}

/** The openings of this process's OpenAI-format streams (see `streamOpenings`). */
const openings = streamOpenings();

/**
 * An OpenAI-format stream: frames that fit the last plain text chunk's template skip the parse, and so
 * does a first frame that opens the stream as a recent stream's did (with its own id and time).
 */
export function compatibleStreamDecoder(kept: StreamOpenings = openings): StreamDecoder {
  const templates = chunkTemplates();
  let first = true;
  return {
    decode(frame: StreamFrame, notText?: boolean): DecodedFrames {
      const chunk = templates.match(frame.data, notText);
      if (chunk) return { chunks: [chunk], raw: frame.data };
      const opening = first;
      first = false;
      const known = opening ? kept.match(frame.data) : undefined;
      if (known) {
        templates.resume(known.state);
        return { chunks: [known.chunk], raw: frame.data };
      }
      const decoded = decodeCompatibleFrame(frame);
      const parsed = decoded.raw !== undefined ? decoded.chunks[0] : undefined;
      if (parsed) {
        templates.learn(frame.data, parsed);
        const state = opening ? templates.state() : undefined;
        if (state) kept.remember(frame.data, parsed, state);
      }
      return decoded;
    },
    textOf: templates.textOf,
    textChunk: templates.current,
    flush: () => [],
  };
}

/** Whether an item of an embeddings answer holds its vector (numbers, or base64 text). */
const isEmbedding = (item: unknown) => isRecord(item) && (Array.isArray(item.embedding) || typeof item.embedding === "string");

/**
 * An OpenAI embeddings body, with its usage filled in. A body without its `data` list of embeddings
 * is refused with an error, as a malformed answer the caller may try elsewhere.
 */
export function compatibleEmbeddingsResponse(raw: unknown): EmbeddingsResponse {
  const data = asRecord(raw).data;
  if (!Array.isArray(data) || !data.every(isEmbedding)) throw new Error("not an embeddings answer: no data list of embeddings");
  const body = asRecord(raw) as unknown as EmbeddingsResponse;
  const usage = asRecord(body.usage);
  const prompt = asNumber(usage.prompt_tokens) ?? 0;
  return { ...body, object: "list", usage: { prompt_tokens: prompt, total_tokens: asNumber(usage.total_tokens) ?? prompt } };
}

/** The ids of an OpenAI `/models` listing. */
export function compatibleModelIds(raw: unknown): string[] {
  const data = asRecord(raw).data;
  return (Array.isArray(data) ? data : []).map((item) => asRecord(item).id).filter((id): id is string => typeof id === "string");
}

function authHeaders(context: CallContext, extra?: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json", ...extra, ...context.extraHeaders };
  const key = context.credentials.api_key;
  if (key !== undefined && key !== "") headers.authorization = `Bearer ${key}`;
  return headers;
}

/** A provider that speaks the OpenAI API, written as its differences from OpenAI. */
export function openAICompatible(options: CompatibleOptions): ProviderSpec {
  const prefix = options.apiPrefix ?? "/v1";
  const capabilities = { ...FULL_CAPABILITIES, openAIFormat: true, ...options.capabilities };
  const unsupported = options.unsupported ?? [];
  // Each path under the prefix spelled once, not on every call.
  const paths = { chat: `${prefix}/chat/completions`, embeddings: `${prefix}/embeddings`, models: `${prefix}/models` };
  const url = (context: CallContext, path: keyof typeof paths) => joinUrl(context.baseUrl, paths[path]);
  const headers = (context: CallContext) => authHeaders(context, options.headers?.(context));

  return {
    id: options.id,
    names: options.names,
    defaultBaseUrl: options.defaultBaseUrl,
    credentialSchema: options.credentialSchema ?? [API_KEY_FIELD],
    capabilities,
    streamFormat: "sse",
    chat: {
      request(body: ChatRequest, context: CallContext) {
        const warnings = unsupportedWarnings(body, unsupported, options.names.en);
        const includeUsage = Boolean(body.stream && capabilities.streamUsage);
        const dropsTools = Boolean(body.tools?.length && !capabilities.tools);
        const dropsFormat = Boolean(body.response_format && body.response_format.type !== "text" && !capabilities.jsonMode);
        // The client's own bytes go on when nothing but `stream_options` would change.
        const unchanged =
          !options.adjustBody &&
          !dropsTools &&
          !dropsFormat &&
          !unsupported.some((field) => (body as Record<string, unknown>)[field] !== undefined);
        const request: UpstreamRequest = {
          method: "POST",
          url: url(context, "chat"),
          headers: headers(context),
          body: unchanged ? rawJsonBody(body, context.rawBody, context.model, includeUsage) : undefined,
        };
        if (request.body) return { request, warnings };
        const outgoing: Record<string, unknown> = { ...body, model: context.model };
        for (const field of unsupported) delete outgoing[field];
        if (includeUsage) {
          outgoing.stream_options = body.stream_options
            ? { ...asRecord(body.stream_options), include_usage: true }
            : { include_usage: true };
        } else if (!body.stream) {
          delete outgoing.stream_options;
        }
        if (dropsTools) {
          warnings.push(`${options.names.en} does not support tools; they were not sent`);
          delete outgoing.tools;
          delete outgoing.tool_choice;
        }
        if (dropsFormat) {
          warnings.push(`${options.names.en} does not support response_format; it was not sent`);
          delete outgoing.response_format;
        }
        options.adjustBody?.(outgoing, warnings);
        request.body = JSON.stringify(outgoing);
        return { request, warnings };
      },
      response: compatibleResponse,
      stream: () => compatibleStreamDecoder(),
    },
    embeddings: capabilities.embeddings
      ? {
          request(body, context) {
            return {
              request: {
                method: "POST",
                url: url(context, "embeddings"),
                headers: headers(context),
                body: rawJsonBody(body, context.rawBody, context.model, false) ?? JSON.stringify({ ...body, model: context.model }),
              },
              warnings: [],
            };
          },
          response: compatibleEmbeddingsResponse,
        }
      : undefined,
    models: capabilities.modelListing
      ? {
          request: (context) => ({ method: "GET", url: url(context, "models"), headers: headers(context) }),
          response: compatibleModelIds,
        }
      : undefined,
    error: genericError,
  };
}
