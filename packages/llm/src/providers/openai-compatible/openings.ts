import type { ChatChunk } from "../../chat-types.ts";
import { NEEDS_DECODING, onlyAt, PADDING_KEY, paddingBetween, paddingOf, type TemplateState, withPadding } from "./chunk-template.ts";

/** Openings kept: about one per upstream model in use. */
const KEPT = 8;

const ID_KEY = '"id":"';
const CREATED_KEY = '"created":';
/** A creation time as JSON spells a whole number (no leading zero), short enough to be exact. */
const WHOLE_NUMBER = /^(?:0|[1-9][0-9]{0,14})$/;

/** An opening role chunk's text cut around its id's and creation time's values, and what it came to. */
interface Opening {
  /** The text before the id's value (`{"id":"`, as a rule). */
  before: string;
  /** From the id's closing quote to the creation time's first digit. */
  between: string;
  /** From the creation time's last digit on (to the padding's value, when the chunk has one). */
  after: string;
  /** From the padding value's closing quote on, when the chunk has one (OpenAI's, `"obfuscation":"…"`). */
  trailer: string | undefined;
  /** How long the text up to the creation time's end was: the template's texts begin with it. */
  lead: number;
  chunk: ChatChunk;
  state: TemplateState;
}

const copyChunk = (chunk: ChatChunk, id: string, created: number): ChatChunk => ({
  ...chunk,
  id,
  created,
  choices: chunk.choices.map((choice) => ({ ...choice, delta: { ...choice.delta } })),
});

/** Where the digits that start at `start` end. */
function digitsEnd(text: string, start: number): number {
  let end = start;
  while (text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
  return end;
}

/**
 * The openings of the OpenAI-format streams seen lately. Streams of one upstream and model open with
 * the same role chunk but for its id and creation time: `{"id":"…","object":"chat.completion.chunk",
 * "created":…,"model":"…","choices":[{"index":0,"delta":{"role":"assistant","content":""},…}]}`. A
 * first frame that is a kept opening's text with another id (a JSON string body without escapes) and
 * another creation time (a whole number) is that opening with these two values: its chunk and its
 * template come from the kept one, with no parse and nothing learned again.
 */
export function streamOpenings() {
  const kept: Opening[] = [];
  return {
    /** The chunk and the decoder's template of a first frame that is a kept opening with another id and time. */
    match(data: string): { chunk: ChatChunk; state: TemplateState } | undefined {
      for (const opening of kept) {
        const idStart = opening.before.length;
        if (data.slice(0, idStart) !== opening.before) continue;
        const idEnd = data.indexOf('"', idStart);
        const timeStart = idEnd + opening.between.length;
        if (idEnd < 0 || data.slice(idEnd, timeStart) !== opening.between) continue;
        const timeEnd = digitsEnd(data, timeStart);
        const padding = opening.trailer === undefined ? undefined : paddingBetween(data.slice(timeEnd), opening.after, opening.trailer);
        if (opening.trailer === undefined ? data.slice(timeEnd) !== opening.after : padding === undefined) continue;
        const id = data.slice(idStart, idEnd);
        const time = data.slice(timeStart, timeEnd);
        if (NEEDS_DECODING.test(id) || !WHOLE_NUMBER.test(time)) continue;
        const created = Number(time);
        const lead = data.slice(0, timeEnd);
        const state = opening.state;
        return {
          chunk: withPadding(copyChunk(opening.chunk, id, created), padding),
          state: {
            ...state,
            template: { ...state.template, id, created },
            prefix: lead + state.prefix.slice(opening.lead),
            head: lead + state.head.slice(opening.lead),
          },
        };
      }
      return undefined;
    },

    /**
     * Keeps a stream's first frame, a role chunk whose text the decoder learned its template from. Its
     * text has no escapes (the template needs none): every key spelled once in it is the chunk's own.
     */
    remember(data: string, chunk: ChatChunk, state: TemplateState) {
      if (chunk.choices[0]?.delta.role === undefined || data.includes("\\")) return;
      const idKey = onlyAt(data, ID_KEY);
      const timeKey = onlyAt(data, CREATED_KEY);
      if (idKey < 0 || timeKey < idKey) return;
      const idStart = idKey + ID_KEY.length;
      const idEnd = data.indexOf('"', idStart);
      const timeStart = timeKey + CREATED_KEY.length;
      const timeEnd = digitsEnd(data, timeStart);
      if (idEnd > timeKey || data.slice(idStart, idEnd) !== chunk.id || String(chunk.created) !== data.slice(timeStart, timeEnd)) return;
      const lead = data.slice(0, timeEnd);
      if (!state.prefix.startsWith(lead) || !state.head.startsWith(lead)) return;
      // A padding (text that differs in every frame) is kept apart, as the template keeps it.
      let after = data.slice(timeEnd);
      let trailer: string | undefined;
      const padding = paddingOf(chunk);
      if (padding !== undefined) {
        const key = onlyAt(after, PADDING_KEY);
        const start = key + PADDING_KEY.length;
        if (state.trailer === undefined || key < 0 || after.slice(start, start + padding.length + 1) !== `${padding}"`) return;
        trailer = after.slice(start + padding.length);
        after = after.slice(0, start);
      }
      if (kept.length >= KEPT) kept.pop();
      kept.unshift({
        before: data.slice(0, idStart),
        between: data.slice(idEnd, timeStart),
        after,
        trailer,
        lead: timeEnd,
        chunk: copyChunk(chunk, chunk.id, chunk.created),
        state,
      });
    },
  };
}

export type StreamOpenings = ReturnType<typeof streamOpenings>;
