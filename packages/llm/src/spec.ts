import type { ChatChunk, ChatCompletion, ChatRequest, EmbeddingsRequest, EmbeddingsResponse } from "./chat-types.ts";

export type Locale = "en" | "zh-CN";
export type Localized = Record<Locale, string>;

/** One field of a provider's credential form; the console renders its forms from these. */
export interface CredentialField {
  name: string;
  type: "secret" | "text" | "select" | "number";
  required: boolean;
  default?: string | number;
  placeholder?: string;
  options?: { value: string; label: Localized }[];
  label: Localized;
  help?: Localized;
}

export interface Capabilities {
  chat: boolean;
  embeddings: boolean;
  tools: boolean;
  vision: boolean;
  jsonMode: boolean;
  modelListing: boolean;
  /** Reports usage in the final streamed chunk when asked. */
  streamUsage: boolean;
  /**
   * Answers in OpenAI's format as they come: a relay speaking OpenAI to its client may pass an answer
   * through (with the public model name put in) instead of serialising the translated one again.
   */
  openAIFormat: boolean;
}

export type Credentials = Record<string, string | number | undefined>;

/** What an adapter needs to address one channel's upstream. */
export interface CallContext {
  /** The channel's origin, without a trailing slash (and without a trailing /v1). */
  baseUrl: string;
  credentials: Credentials;
  /** The upstream model name (after the channel's model mapping). */
  model: string;
  extraHeaders?: Record<string, string>;
  /**
   * The client's own JSON text of a chat or embeddings request in OpenAI's format, as it came, when the
   * request is that text as parsed and names the upstream model itself (no mapping): an adapter that
   * would send the same JSON may send these bytes (with what it must add spliced in) instead of
   * serialising the request again.
   */
  rawBody?: Uint8Array;
}

export interface UpstreamRequest {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  /** JSON text, or its UTF-8 bytes (a client's own body passed on). */
  body?: string | Uint8Array;
}

/** One frame of an upstream stream: an SSE event, or one NDJSON line (as `data`). */
export interface StreamFrame {
  event?: string;
  data: string;
}

/** The frames completed by one piece of an upstream body. */
export interface FrameBatch {
  frames: StreamFrame[];
  /**
   * The piece's own bytes, when they are exactly its frames written as `data: <data>\n\n`, one after
   * another, in ASCII (as upstreams send them): frame i starts after the `data.length + 8` bytes of the
   * frames before it. A relay sends the frames it passes on unchanged as these bytes, without encoding
   * them again.
   */
  bytes?: Uint8Array;
}

export interface UpstreamErrorInfo {
  message: string;
  /** The error's type in OpenAI's vocabulary (`invalid_request_error`, `rate_limit_error`, …). */
  type: string;
  code?: string | null;
}

export interface DecodedFrames {
  chunks: ChatChunk[];
  /** An error reported inside the stream (an error event, or an error object instead of a chunk). */
  error?: UpstreamErrorInfo & { status: number };
  /** The upstream said the stream is complete. */
  done?: boolean;
  /**
   * The frame's JSON text, when `chunks` is the one chunk that text already spells in OpenAI's format
   * (nothing was added or normalised): a relay answering in OpenAI's format may send it as it came
   * instead of serialising the chunk again.
   */
  raw?: string;
}

/** Turns one upstream stream into OpenAI chunks; one instance per request, it may keep state. */
export interface StreamDecoder {
  /**
   * `notText`: the caller found `textOf` undefined for this frame already (against the current
   * template), so the decoder need not compare it again.
   */
  decode(frame: StreamFrame, notText?: boolean): DecodedFrames;
  /**
   * For a frame that is the stream's last plain text chunk (`textChunk`) again with other text (same
   * id, model, choice and fields, only the delta's one text field differs): that text, with no chunk
   * built for it. Undefined for any other frame, which `decode` reads. Lets a relay pass such frames
   * on as they came at little more than the cost of comparing them.
   */
  textOf?(data: string): string | undefined;
  textChunk?(): ChatChunk | undefined;
  /** Chunks still owed when the upstream ends (a final usage chunk, say). */
  flush(): ChatChunk[];
}

export interface TranslatedRequest {
  request: UpstreamRequest;
  /** Parameters the provider cannot honour, said to the caller instead of dropped in silence. */
  warnings: string[];
}

export interface ProviderSpec {
  id: string;
  names: Localized;
  defaultBaseUrl: string;
  credentialSchema: CredentialField[];
  capabilities: Capabilities;
  /** Whether a stream is server-sent events or newline-delimited JSON. */
  streamFormat: "sse" | "ndjson";
  chat: {
    /** The upstream request; the model it names is `context.model`, whatever `body.model` says (the public name). */
    request(body: ChatRequest, context: CallContext): TranslatedRequest;
    response(body: unknown, context: CallContext): ChatCompletion;
    stream(context: CallContext, request: ChatRequest): StreamDecoder;
  };
  embeddings?: {
    request(body: EmbeddingsRequest, context: CallContext): TranslatedRequest;
    response(body: unknown, context: CallContext): EmbeddingsResponse;
  };
  /** How to list the upstream's models; also used to validate credentials. */
  models?: {
    request(context: CallContext): UpstreamRequest;
    response(body: unknown): string[];
  };
  /** Reads an upstream error body into a message and type. */
  error(status: number, body: string): UpstreamErrorInfo;
}
