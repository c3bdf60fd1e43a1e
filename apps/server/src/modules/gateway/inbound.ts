import type { ChatChunk, ChatCompletion, Usage } from "@lyss/llm";
import { errorTypeForStatus, sseData } from "@lyss/llm";

/** How one client protocol shapes answers, stream events and errors. */
export interface InboundProtocol {
  name: string;
  errorBody(status: number, message: string, code?: string | null, type?: string): unknown;
  completion(completion: ChatCompletion, model: string): unknown;
  streamEncoder(model: string, includeUsage: boolean): StreamEncoder;
}

export interface StreamEncoder {
  chunk(chunk: ChatChunk): string;
  /** The closing events, given the usage of the whole answer. */
  end(usage: Usage | undefined): string;
  error(status: number, message: string): string;
}

/** The OpenAI chat protocol: answers pass through with the public model name. */
export const openAIInbound: InboundProtocol = {
  name: "openai",
  errorBody: (status, message, code = null, type) => ({
    error: { message, type: type ?? errorTypeForStatus(status), param: null, code },
  }),
  completion: (completion, model) => ({ ...completion, model }),
  streamEncoder(model, includeUsage) {
    let usageSent = false;
    return {
      chunk(chunk) {
        if (chunk.choices.length === 0 && !chunk.usage) return "";
        if (chunk.choices.length === 0) {
          if (!includeUsage) return "";
          usageSent = true;
          return sseData({ ...chunk, model });
        }
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
