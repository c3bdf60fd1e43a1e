import type { ChatChunk } from "../../chat-types.ts";

type TextField = "content" | "reasoning_content";
const TEXT_FIELDS: readonly TextField[] = ["content", "reasoning_content"];

/** Characters that make a JSON string body need decoding (or make it no string body at all). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON requires escaped.
const NEEDS_DECODING = /["\\\u0000-\u001f]/;

/** After this many templates that did not last, a stream is decoded frame by frame to its end. */
const MAX_LEARNED = 4;

/** The delta's one text field, when the chunk is a plain text chunk: one choice, no finish, no usage. */
function textField(chunk: ChatChunk): TextField | undefined {
  if (chunk.usage != null || chunk.choices.length !== 1) return undefined;
  const choice = chunk.choices[0];
  if (!choice || choice.finish_reason !== null || !choice.delta) return undefined;
  const keys = Object.keys(choice.delta);
  const field = keys.length === 1 ? TEXT_FIELDS.find((name) => name === keys[0]) : undefined;
  return field && typeof choice.delta[field] === "string" ? field : undefined;
}

/** Where the string value of `"<field>":` starts (just inside its opening quote), if `field` appears once. */
function valueStart(data: string, field: TextField): number {
  const key = `"${field}"`;
  const at = data.indexOf(key);
  if (at < 0 || data.indexOf(key, at + 1) >= 0) return -1;
  let index = at + key.length;
  while (data[index] === " ") index++;
  if (data[index++] !== ":") return -1;
  while (data[index] === " ") index++;
  return data[index] === '"' ? index + 1 : -1;
}

/** Where the JSON string whose body starts at `start` closes. */
function valueEnd(data: string, start: number): number {
  for (let index = start; index < data.length; index++) {
    const code = data.charCodeAt(index);
    if (code === 92) index++;
    else if (code === 34) return index;
  }
  return -1;
}

/**
 * Whether the string between `before` and `after` is the delta's text. With no backslash around it,
 * every key is spelled as it is and no string holds a quote, so the one `"<field>":` in the text, which
 * `valueStart` found, is the delta's own key (the parsed chunk has it). Otherwise (an escape somewhere
 * else in the chunk, rare) the text is parsed again with another string in that place, and must change
 * just the delta's text.
 */
function located(before: string, after: string, field: TextField): boolean {
  if (!before.includes("\\") && !after.includes("\\")) return true;
  try {
    const probe = JSON.parse(`${before}\\u0001${after}`) as ChatChunk;
    return probe.choices?.[0]?.delta?.[field] === "\u0001";
  } catch {
    return false;
  }
}

/**
 * Most frames of an OpenAI-format stream differ from the one before only in the text of the delta:
 * same id, model, created and shape. Once a parsed frame is a plain text chunk, its text around the
 * delta's string is kept as a template; a later frame that is the same text around a valid JSON string
 * body is that chunk with this text, and needs no parse. Any other frame is parsed as usual.
 */
export function chunkTemplates() {
  let prefix = "";
  let suffix = "";
  let template: ChatChunk | undefined;
  let field: TextField = "content";
  let learned = 0;

  /** The delta's text of a frame that fits the current template. */
  function textOf(data: string): string | undefined {
    const end = data.length - suffix.length;
    // (Sliced equality: quicker in V8 than startsWith and endsWith.)
    if (!template || end < prefix.length || data.slice(0, prefix.length) !== prefix || data.slice(end) !== suffix) return undefined;
    const body = data.slice(prefix.length, end);
    if (!NEEDS_DECODING.test(body)) return body;
    try {
      return JSON.parse(`"${body}"`) as string;
    } catch {
      return undefined;
    }
  }

  return {
    textOf,

    /** The plain text chunk frames are compared with; its delta's one field is where their text goes. */
    current: (): ChatChunk | undefined => template,

    /** The chunk a frame is, when it fits the current template. */
    match(data: string): ChatChunk | undefined {
      const text = textOf(data);
      if (text === undefined || !template) return undefined;
      const choice = template.choices[0] as ChatChunk["choices"][number];
      const delta = field === "content" ? { content: text } : { reasoning_content: text };
      return { ...template, choices: [{ ...choice, delta }] };
    },

    /** Keeps a parsed frame as the template when it is a plain text chunk whose text can be located. */
    learn(data: string, chunk: ChatChunk) {
      if (learned >= MAX_LEARNED) return;
      const name = textField(chunk);
      if (!name) return;
      const start = valueStart(data, name);
      const end = start < 0 ? -1 : valueEnd(data, start);
      if (end < 0) return;
      learned++;
      const before = data.slice(0, start);
      const after = data.slice(end);
      if (!located(before, after, name)) return;
      prefix = before;
      suffix = after;
      field = name;
      template = chunk;
    },
  };
}
