import type { ChatChunk } from "../../chat-types.ts";

type TextField = "content" | "reasoning_content";

/**
 * What a stream's decoder has learned: the template chunk, its text before and after the delta's
 * string, and that text split around the delta for the finishing chunk (`reasonAt` -1: none). When
 * the chunk carries a padding that changes with every frame (`"obfuscation":"…"`), `suffix` ends
 * where the padding's value starts and `trailer` is the text from its closing quote on.
 */
export interface TemplateState {
  template: ChatChunk;
  field: TextField;
  prefix: string;
  suffix: string;
  trailer: string | undefined;
  head: string;
  tail: string;
  reasonAt: number;
  learned: number;
}

const TEXT_FIELDS: readonly TextField[] = ["content", "reasoning_content"];

/** Characters that make a JSON string body need decoding (or make it no string body at all). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what JSON requires escaped.
export const NEEDS_DECODING = /["\\\u0000-\u001f]/;

/** After this many templates that did not last, a stream is decoded frame by frame to its end. */
const MAX_LEARNED = 4;

/** How many times `part` occurs in `text`, counted up to two. */
function occurrences(text: string, part: string): number {
  const first = text.indexOf(part);
  if (first < 0) return 0;
  return text.indexOf(part, first + part.length) < 0 ? 1 : 2;
}

/** The chunk's one choice, when it has one, with a delta, no finish and no usage. */
function openChoice(chunk: ChatChunk): ChatChunk["choices"][number] | undefined {
  if (chunk.usage != null || chunk.choices.length !== 1) return undefined;
  const choice = chunk.choices[0];
  return choice && choice.finish_reason === null && choice.delta ? choice : undefined;
}

/** The delta's one text field, when the chunk is a plain text chunk: one choice, no finish, no usage. */
function textField(chunk: ChatChunk): TextField | undefined {
  const choice = openChoice(chunk);
  if (!choice) return undefined;
  const keys = Object.keys(choice.delta);
  const field = keys.length === 1 ? TEXT_FIELDS.find((name) => name === keys[0]) : undefined;
  return field && typeof choice.delta[field] === "string" ? field : undefined;
}

/** Where `part` occurs in `text` when it occurs once; -1 otherwise. */
export function onlyAt(text: string, part: string): number {
  return occurrences(text, part) === 1 ? text.indexOf(part) : -1;
}

/** Where the string value of `"<field>":` starts (just inside its opening quote), if `field` appears once. */
function valueStart(data: string, field: TextField): number {
  const key = `"${field}"`;
  const at = onlyAt(data, key);
  if (at < 0) return -1;
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

const DELTA_KEY = '"delta":';
/**
 * A chunk's field of random characters that differs in every frame: OpenAI pads each streamed delta
 * with one (`stream_options.include_obfuscation`, on by default), against side channels on the size.
 */
export const PADDING_KEY = '"obfuscation":"';

/** The chunk's padding, when it has one. */
export const paddingOf = (chunk: ChatChunk): string | undefined => {
  const value = (chunk as { obfuscation?: unknown }).obfuscation;
  return typeof value === "string" ? value : undefined;
};

/**
 * The padding of a text that should be `head`, a padding's value (no quote, backslash or control character in it), then
 * `trailer`; undefined when the text is not that.
 */
export function paddingBetween(text: string, head: string, trailer: string): string | undefined {
  const end = text.length - trailer.length;
  if (end < head.length || text.slice(0, head.length) !== head || text.slice(end) !== trailer) return undefined;
  const value = text.slice(head.length, end);
  return NEEDS_DECODING.test(value) ? undefined : value;
}

/** The chunk with the padding of its own frame. */
export const withPadding = (chunk: ChatChunk, padding: string | undefined): ChatChunk =>
  padding === undefined ? chunk : ({ ...chunk, obfuscation: padding } as ChatChunk);

/**
 * Where the chunk's padding value sits in `after` (the text after the delta's string), when it is
 * there once and is the chunk's own: checked by parsing the text again with another value there.
 */
function paddingIn(before: string, after: string, padding: string): { start: number; end: number } | undefined {
  if (after.includes("\\") || before.includes("\\")) return undefined;
  const key = onlyAt(after, PADDING_KEY);
  if (key < 0) return undefined;
  const start = key + PADDING_KEY.length;
  const end = after.indexOf('"', start);
  if (end < 0 || after.slice(start, end) !== padding) return undefined;
  try {
    const probe = JSON.parse(`${before}${after.slice(0, start)}\\u0001${after.slice(end)}`) as { obfuscation?: unknown };
    return probe.obfuscation === "\u0001" ? { start, end } : undefined;
  } catch {
    return undefined;
  }
}
const FINISH_KEY = '"finish_reason":';
/** A finish reason as providers spell it ("stop", "length", "tool_calls", "content_filter", …). */
const PLAIN_REASON = /^[a-z_]{1,40}$/;

/** Whether `part` occurs once in the two texts together. */
const onceIn = (before: string, after: string, part: string) => occurrences(before, part) + occurrences(after, part) === 1;

/** Where the object that starts at `start` closes, in JSON text without escapes or nested objects or arrays. */
function flatObjectEnd(data: string, start: number): number {
  let quoted = false;
  for (let index = start + 1; index < data.length; index++) {
    const code = data.charCodeAt(index);
    if (code === 34) quoted = !quoted;
    else if (!quoted && code === 125) return index;
    else if (!quoted && (code === 123 || code === 91)) return -1;
  }
  return -1;
}

/** The role chunk's delta, when it is the role, empty text and nothing but plain values. */
function openingDelta(chunk: ChatChunk): boolean {
  const choice = openChoice(chunk);
  if (choice?.delta.content !== "" || !choice.delta.role) return false;
  return Object.values(choice.delta).every((value) => value === null || typeof value !== "object");
}

/**
 * Most frames of an OpenAI-format stream differ from the one before only in the text of the delta:
 * same id, model, created and shape. Once a parsed frame is a plain text chunk, its text around the
 * delta's string is kept as a template; a later frame that is the same text around a valid JSON string
 * body is that chunk with this text, and needs no parse. Any other frame is parsed as usual.
 *
 * Two more frames of a stream are read off the template when their text has no escapes: the first text
 * chunk, when it is the opening role chunk's text with `{"content":"…"}` as its delta (the role chunk
 * gives the template), and the finishing chunk, when it is the template's text with `{}` as its delta
 * and a plain reason in place of its `"finish_reason":null`.
 */
export function chunkTemplates() {
  let prefix = "";
  let suffix = "";
  let trailer: string | undefined;
  // The padding of the frame `textOf` matched last.
  let padding = "";
  let template: ChatChunk | undefined;
  let field: TextField = "content";
  let learned = 0;
  // The template's text before its delta (to `"delta":`) and after it, and where the finish reason's
  // key ends in `tail` (-1: no finishing chunk is read off this template).
  let head = "";
  let tail = "";
  let reasonAt = -1;

  /** Takes the text around the delta's string as the template, and splits it around the delta when it can. */
  function adopt(before: string, after: string, name: TextField, chunk: ChatChunk) {
    prefix = before;
    suffix = after;
    trailer = undefined;
    const padded = paddingOf(chunk);
    const at = padded === undefined ? undefined : paddingIn(before, after, padded);
    if (at) {
      suffix = after.slice(0, at.start);
      trailer = after.slice(at.end);
    }
    field = name;
    template = chunk;
    reasonAt = -1;
    const opening = `${DELTA_KEY}{"${name}":"`;
    if (!before.endsWith(opening) || !after.startsWith('"}') || before.includes("\\") || after.includes("\\")) return;
    // Without escapes every quote is a string's edge, so a key spelled once is the one the chunk has.
    if (!onceIn(before, after, '"delta"') || !onceIn(before, after, '"finish_reason"')) return;
    head = before.slice(0, before.length - opening.length + DELTA_KEY.length);
    // (To the padding's value, when the chunk has one: `finishOf` reads the trailer apart.)
    tail = (trailer === undefined ? after : suffix).slice(2);
    const key = tail.indexOf(`${FINISH_KEY}null`);
    if (key >= 0 && chunk.choices[0]?.finish_reason === null) reasonAt = key + FINISH_KEY.length;
  }

  /** The finishing chunk a frame is: the template with `{}` as its delta and a plain reason. */
  function finishOf(data: string): ChatChunk | undefined {
    if (reasonAt < 0 || !template) return undefined;
    const start = head.length + 2 + reasonAt;
    if (data.charCodeAt(start) !== 34 || data.slice(0, head.length) !== head || data.slice(head.length, head.length + 2) !== "{}")
      return undefined;
    if (data.slice(head.length + 2, start) !== tail.slice(0, reasonAt)) return undefined;
    const close = data.indexOf('"', start + 1);
    const reason = close < 0 ? "" : data.slice(start + 1, close);
    if (!PLAIN_REASON.test(reason)) return undefined;
    const rest = data.slice(close + 1);
    const expected = tail.slice(reasonAt + 4);
    const padded = trailer === undefined ? undefined : paddingBetween(rest, expected, trailer);
    if (trailer === undefined ? rest !== expected : padded === undefined) return undefined;
    const choice = template.choices[0] as ChatChunk["choices"][number];
    const finish = reason as ChatChunk["choices"][number]["finish_reason"];
    return withPadding({ ...template, choices: [{ ...choice, delta: {}, finish_reason: finish }] }, padded);
  }

  /** Takes the opening role chunk's text, with `{"content":"…"}` for its delta, as the template. */
  function learnOpening(data: string, chunk: ChatChunk) {
    const key = data.indexOf(DELTA_KEY);
    if (key < 0 || data.includes("\\") || occurrences(data, '"delta"') !== 1) return;
    const start = key + DELTA_KEY.length;
    const end = data.charCodeAt(start) === 123 ? flatObjectEnd(data, start) : -1;
    if (end < 0) return;
    learned++;
    const choice = chunk.choices[0] as ChatChunk["choices"][number];
    adopt(`${data.slice(0, start)}{"content":"`, `"}${data.slice(end + 1)}`, "content", {
      ...chunk,
      choices: [{ ...choice, delta: { content: "" } }],
    });
  }

  /** Where the delta's string ends in a frame that fits the current template (and its padding, if any); -1 otherwise. */
  function textEnd(data: string): number {
    if (trailer === undefined) {
      const end = data.length - suffix.length;
      // (Sliced equality: quicker in V8 than startsWith and endsWith.)
      if (end < prefix.length || data.slice(0, prefix.length) !== prefix || data.slice(end) !== suffix) return -1;
      return end;
    }
    // The padding's value holds no quote: its opening quote is the last one before the trailer.
    const close = data.length - trailer.length;
    if (close < prefix.length + suffix.length || data.slice(close) !== trailer) return -1;
    const open = data.lastIndexOf('"', close - 1);
    const end = open + 1 - suffix.length;
    if (end < prefix.length || data.slice(0, prefix.length) !== prefix || data.slice(end, open + 1) !== suffix) return -1;
    const value = data.slice(open + 1, close);
    if (NEEDS_DECODING.test(value)) return -1;
    padding = value;
    return end;
  }

  /** The delta's text of a frame that fits the current template. */
  function textOf(data: string): string | undefined {
    const end = template ? textEnd(data) : -1;
    if (end < 0) return undefined;
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

    /** What has been learned so far; undefined before a template. */
    state: (): TemplateState | undefined =>
      template ? { template, field, prefix, suffix, trailer, head, tail, reasonAt, learned } : undefined,

    /** Goes on from what another stream's decoder learned (an opening like this stream's). */
    resume(state: TemplateState) {
      ({ template, field, prefix, suffix, trailer, head, tail, reasonAt, learned } = state);
    },

    /** The plain text chunk frames are compared with; its delta's one field is where their text goes. */
    current: (): ChatChunk | undefined => template,

    /**
     * The chunk a frame is, when it fits the current template (or is its finishing chunk); `notText`:
     * `textOf` answered undefined for it already.
     */
    match(data: string, notText = false): ChatChunk | undefined {
      const text = notText ? undefined : textOf(data);
      if (text === undefined || !template) return finishOf(data);
      const choice = template.choices[0] as ChatChunk["choices"][number];
      const delta = field === "content" ? { content: text } : { reasoning_content: text };
      const choices = [{ ...choice, delta }];
      // (One copy of the template either way: the padding put in as it is copied.)
      return trailer === undefined ? { ...template, choices } : ({ ...template, choices, obfuscation: padding } as ChatChunk);
    },

    /** Keeps a parsed frame as the template when it is a plain text chunk whose text can be located. */
    learn(data: string, chunk: ChatChunk) {
      if (learned >= MAX_LEARNED) return;
      const name = textField(chunk);
      if (!name) {
        if (!template && openingDelta(chunk)) learnOpening(data, chunk);
        return;
      }
      const start = valueStart(data, name);
      const end = start < 0 ? -1 : valueEnd(data, start);
      if (end < 0) return;
      learned++;
      const before = data.slice(0, start);
      const after = data.slice(end);
      if (!located(before, after, name)) return;
      adopt(before, after, name, chunk);
    },
  };
}
