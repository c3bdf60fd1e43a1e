import { z } from "zod";

/** Inbound bodies are loose: clients send many fields, and unknown ones pass through to the upstream. */
export const ZChatBody = z.looseObject({
  model: z.string().min(1).max(200),
  messages: z
    .array(
      z.looseObject({
        role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
      }),
    )
    .min(1)
    .max(10_000),
  stream: z.boolean().nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
});

export const ZEmbeddingsBody = z.looseObject({
  model: z.string().min(1).max(200),
  input: z.union([z.string(), z.array(z.string()).min(1).max(4096), z.array(z.number()), z.array(z.array(z.number()))]),
});

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
