import { functionFault } from "@lyss/llm";
import { z } from "zod";

const PLAIN_KEY = /^[a-z0-9_]*$/;

/**
 * A key of `record` that another of its keys equals but for letter case (as Go's JSON decoding, which
 * OpenAI-compatible servers written in Go use, compares them: the last wins there). Such a body would
 * be read upstream otherwise than Lyss reads it (another model, no usage reported), so it is refused.
 */
function caseTwin(record: unknown): string | undefined {
  if (typeof record !== "object" || record === null) return undefined;
  let folded: Set<string> | undefined;
  for (const key of Object.keys(record)) {
    if (PLAIN_KEY.test(key)) continue;
    // (U+017F, the long s, is an s to Go; the Kelvin sign lowers to k here.)
    const fold = key.toLowerCase().replace(/\u017f/g, "s");
    if (fold in record || folded?.has(fold)) return key;
    folded ??= new Set();
    folded.add(fold);
  }
  return undefined;
}

/** Refuses a body (and its `stream_options`) with keys alike but for letter case. */
function distinctKeys(body: Record<string, unknown>, context: z.RefinementCtx) {
  const twin = caseTwin(body) ?? caseTwin(body.stream_options);
  if (twin !== undefined) {
    context.addIssue({ code: "custom", message: `the field "${twin}" differs from another only in letter case`, path: [twin] });
  }
}

/**
 * A content part: its type, and for the two types every adapter translates, the field it reads (a
 * `text` part's text, an `image_url` part's URL). Other types pass on to the upstream as they came.
 */
const ZContentPart = z.looseObject({ type: z.string() }).superRefine((part, context) => {
  if (part.type === "text" && typeof part.text !== "string") {
    context.addIssue({ code: "custom", message: "a text part needs its text as a string", path: ["text"] });
  }
  if (part.type === "image_url" && typeof (part.image_url as { url?: unknown } | null | undefined)?.url !== "string") {
    context.addIssue({ code: "custom", message: "an image_url part needs image_url.url as a string", path: ["image_url"] });
  }
});

/**
 * A function tool or tool call with what adapters read of it (`functionFault`). Other kinds (OpenAI's
 * custom tools, a provider's built-in search) pass on as they came; an adapter whose provider has none
 * leaves them out.
 */
const functionShaped = (kind: "tool" | "call") => (item: unknown, context: z.RefinementCtx) => {
  const fault = functionFault(item, kind);
  if (fault) context.addIssue({ code: "custom", message: fault, path: ["function"] });
};

/**
 * Inbound bodies are loose: clients send many fields, and unknown ones pass through to the upstream.
 * What an adapter translates is checked for its shape, so a body no provider could be sent is a 400
 * in the client's protocol, never an error halfway through a call.
 */
export const ZChatBody = z
  .looseObject({
    model: z.string().min(1).max(200),
    messages: z
      .array(
        z.looseObject({
          role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
          content: z.union([z.string(), z.array(ZContentPart)]).nullish(),
          tool_calls: z.array(z.looseObject({}).superRefine(functionShaped("call"))).nullish(),
        }),
      )
      .min(1)
      .max(10_000),
    stream: z.boolean().nullish(),
    max_tokens: z.number().int().min(1).nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    stop: z.union([z.string(), z.array(z.string())]).nullish(),
    tools: z.array(z.looseObject({}).superRefine(functionShaped("tool"))).nullish(),
  })
  .superRefine(distinctKeys);

export const ZEmbeddingsBody = z
  .looseObject({
    model: z.string().min(1).max(200),
    input: z.union([z.string(), z.array(z.string()).min(1).max(4096), z.array(z.number()), z.array(z.array(z.number()))]),
  })
  .superRefine(distinctKeys);

export const ZModelObject = z.object({ id: z.string(), object: z.literal("model"), created: z.number(), owned_by: z.string() });

export const ZModelList = z.object({ object: z.literal("list"), data: z.array(ZModelObject) });

export const ZOpenAIError = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
});

export const ZModelHealth = z.object({
  object: z.literal("list"),
  data: z.array(
    z.object({
      model: z.string(),
      healthy: z.boolean(),
      channels: z.array(z.record(z.string(), z.unknown())),
    }),
  ),
});

export const ZMessagesBody = z.looseObject({
  model: z.string().min(1).max(200),
  max_tokens: z.number().int().min(1),
  messages: z
    .array(
      z.looseObject({ role: z.enum(["user", "assistant"]), content: z.union([z.string(), z.array(z.looseObject({ type: z.string() }))]) }),
    )
    .min(1)
    .max(10_000),
  stream: z.boolean().nullish(),
});

export const ZAnthropicError = z.object({ type: z.literal("error"), error: z.object({ type: z.string(), message: z.string() }) });
