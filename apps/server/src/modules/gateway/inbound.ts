import type { ChatChunk, ChatCompletion, Usage } from "@lyss/llm";
import { errorTypeForStatus, sseData } from "@lyss/llm";

/** How one client protocol shapes answers, stream events and errors. */
export interface InboundProtocol {
  name: string;
  errorBody(status: number, message: string, code?: string | null, type?: string): unknown;
  completion(completion: ChatCompletion, model: string): unknown;
  /**
   * An upstream answer already in this protocol's format, as text with the public model name put in;
   * undefined when it cannot be passed through that way (then `completion` serialises it).
   */
  passThrough?(text: string, upstreamModel: string | undefined, model: string): string | undefined;
  streamEncoder(model: string, includeUsage: boolean): StreamEncoder;
}

export interface StreamEncoder {
  /** One chunk; `raw` is its JSON text as the upstream sent it, when that is already OpenAI's format. */
  chunk(chunk: ChatChunk, raw?: string): string;
  /**
   * Whether `chunk(chunk, raw)` is exactly `data: <raw>\n\n` for a chunk whose JSON text as the
   * upstream sent it is `raw`: then the frame goes to the client as the upstream's own bytes.
   */
  asIs?(chunk: ChatChunk): boolean;
  /** The closing events, given the usage of the whole answer. */
  end(usage: Usage | undefined): string;
  error(status: number, message: string): string;
}

/** `"model":"<name>"` as JSON spells it. */
const modelField = (upstreamModel: string) => `"model":${JSON.stringify(upstreamModel)}`;

/** A stream's chunks all name the same model: its field is spelled once per stream. */
function modelFields() {
  let model: string | undefined;
  let field = "";
  return (upstreamModel: string) => {
    if (upstreamModel !== model) {
      model = upstreamModel;
      field = modelField(upstreamModel);
    }
    return field;
  };
}

/**
 * The chunk's JSON text with its `"model":"…"` replaced by the public name; undefined when the text
 * does not spell the field that way (then the chunk is serialised again).
 */
function withModel(
  raw: string,
  upstreamModel: string | undefined,
  model: string,
  publicName: string,
  fieldOf: (upstreamModel: string) => string = modelField,
): string | undefined {
  if (upstreamModel === model) return raw;
  if (typeof upstreamModel !== "string") return undefined;
  const field = fieldOf(upstreamModel);
  const at = raw.indexOf(field);
  if (at < 0) return undefined;
  return `${raw.slice(0, at)}"model":${publicName}${raw.slice(at + field.length)}`;
}

/** The OpenAI chat protocol: answers pass through with the public model name. */
export const openAIInbound: InboundProtocol = {
  name: "openai",
  errorBody: (status, message, code = null, type) => ({
    error: { message, type: type ?? errorTypeForStatus(status), param: null, code },
  }),
  completion: (completion, model) => ({ ...completion, model }),
  passThrough: (text, upstreamModel, model) => withModel(text, upstreamModel, model, JSON.stringify(model)),
  streamEncoder(model, includeUsage) {
    let usageSent = false;
    const publicName = JSON.stringify(model);
    const fieldOf = modelFields();
    return {
      // A chunk with choices under the public name passes through as it came (see `chunk`).
      asIs: (chunk) => chunk.choices.length > 0 && chunk.model === model,
      chunk(chunk, raw) {
        if (chunk.choices.length === 0 && !chunk.usage) return "";
        if (chunk.choices.length === 0) {
          if (!includeUsage) return "";
          usageSent = true;
          return sseData({ ...chunk, model });
        }
        // Passed through as it came, with the public model name put in (no second serialisation).
        const renamed = raw === undefined ? undefined : withModel(raw, chunk.model, model, publicName, fieldOf);
        if (renamed !== undefined) return `data: ${renamed}\n\n`;
        // Usage arrives once, in its own chunk; JSON leaves out the undefined one.
        return sseData({ ...chunk, model, usage: includeUsage ? null : undefined });
      },
      end(usage) {
        const tail =
          includeUsage && !usageSent && usage
            ? sseData({
                id: "chatcmpl-usage",
                object: "chat.completion.chunk",
                created: Math.floor(Date.now() / 1000),
                model,
                choices: [],
                usage,
              })
            : "";
        return `${tail}data: [DONE]\n\n`;
      },
      error: (status, message) => sseData({ error: { message, type: errorTypeForStatus(status), param: null, code: null } }),
    };
  },
};
